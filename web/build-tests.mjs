// Bundles each unit test (capture/test/*.test.ts) with esbuild into .build/test/*.test.mjs for
// Node's built-in test runner: `node build-tests.mjs && node --test .build/test/`.
import { build } from "esbuild";
import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";

const root = new URL(".", import.meta.url).pathname;
const dir = join(root, "capture/test");
const entryPoints = readdirSync(dir)
  .filter((f) => f.endsWith(".test.ts"))
  .map((f) => join(dir, f));
rmSync(join(root, ".build"), { recursive: true, force: true });
await build({
  entryPoints,
  outdir: join(root, ".build/test"),
  outExtension: { ".js": ".mjs" },
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  sourcemap: "inline",
  logLevel: "warning",
});
