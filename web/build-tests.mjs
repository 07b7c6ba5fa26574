// Bundles each unit test (capture/test/*.test.ts, take/test/*.test.ts) with esbuild into
// .build/test/*.test.mjs for Node's built-in test runner: `node build-tests.mjs && node --test .build/test/`.
import { build } from "esbuild";
import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";

const root = new URL(".", import.meta.url).pathname;
// Each test keeps its name, prefixed by its folder for the candidate page's (`take-clock.test.mjs`).
const entryPoints = [
  ["capture/test", ""],
  ["take/test", "take-"],
].flatMap(([dir, prefix]) =>
  readdirSync(join(root, dir))
    .filter((f) => f.endsWith(".test.ts"))
    .map((f) => ({ in: join(root, dir, f), out: prefix + f.replace(/\.ts$/, "") })),
);
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
