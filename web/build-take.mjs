// Bundles the candidate page (web/take/) into api/assets/take/: take.js and take.css (esbuild,
// minified, no source map, no timestamps: the same sources give the same bytes), and take.html
// from the hand-written shell web/take/take.html with each asset's content hash in its URL.
// Face continuity: take-face.js (face-api with tfjs, an ES module that take.js imports only when
// face checks start; its hashed URL is baked into take.js) and the three models it needs in
// models/, copied from the pinned @vladmandic/face-api package.
// The output is committed so that `cargo build` never needs Node.
//
//   node web/build-take.mjs            # writes api/assets/take/
//   node web/build-take.mjs OUT_DIR    # writes elsewhere (scripts/web.sh's freshness check)
import { build } from "esbuild";
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";

const web = new URL(".", import.meta.url).pathname;
const out = resolve(process.argv[2] ?? join(web, "../api/assets/take"));
mkdirSync(out, { recursive: true });

const common = {
  bundle: true,
  minify: true,
  sourcemap: false,
  legalComments: "none",
  charset: "utf8",
  logLevel: "warning",
  write: false,
};
const hash = (bytes) => createHash("sha256").update(bytes).digest("hex").slice(0, 16);
const face = await build({
  ...common,
  entryPoints: [join(web, "take/src/face-engine.ts")],
  format: "esm",
  target: ["chrome110", "firefox115", "safari16"],
  absWorkingDir: web,
  alias: { "clarity-face-api": "@vladmandic/face-api" },
  outfile: join(out, "take-face.js"),
});
const faceText = face.outputFiles[0].contents;
const js = await build({
  ...common,
  entryPoints: [join(web, "take/src/main.ts")],
  define: { __FACE_JS__: JSON.stringify(`/take/assets/take-face.js?v=${hash(faceText)}`) },
  format: "iife",
  target: ["chrome110", "firefox115", "safari16"],
  outfile: join(out, "take.js"),
});
const css = await build({
  ...common,
  entryPoints: [join(web, "take/src/take.css")],
  outfile: join(out, "take.css"),
});
const jsText = js.outputFiles[0].contents;
const cssText = css.outputFiles[0].contents;
const html = readFileSync(join(web, "take/take.html"), "utf8")
  .replace("{{JS_HASH}}", hash(jsText))
  .replace("{{CSS_HASH}}", hash(cssText));
writeFileSync(join(out, "take.js"), jsText);
writeFileSync(join(out, "take.css"), cssText);
writeFileSync(join(out, "take.html"), html);
writeFileSync(join(out, "take-face.js"), faceText);

// The models: only the three face checks use (api/src/routes/take.rs serves exactly these).
export const MODEL_FILES = [
  "tiny_face_detector_model-weights_manifest.json",
  "tiny_face_detector_model.bin",
  "face_landmark_68_model-weights_manifest.json",
  "face_landmark_68_model.bin",
  "face_recognition_model-weights_manifest.json",
  "face_recognition_model.bin",
];
mkdirSync(join(out, "models"), { recursive: true });
for (const f of MODEL_FILES) copyFileSync(join(web, "node_modules/@vladmandic/face-api/model", f), join(out, "models", f));
