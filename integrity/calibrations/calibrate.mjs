#!/usr/bin/env node
/**
 * Calibration scores for the candidate page's on-device face model (web/take/src/face.ts and
 * face-engine.ts): `@vladmandic/face-api` 1.7.15, TinyFaceDetector (inputSize 224, scoreThreshold
 * 0.3) + 68-point landmarks + faceRecognitionNet, similarity = clamp(1 − euclidean distance, 0, 1).
 *
 * Images: the Face Research Lab London Set (102 people, a neutral and a smiling frontal photograph
 * each; DeBruine & Jones 2017, CC BY 4.0) and the CC0 "lisa"/"zoom" sets (eight photographs of one
 * person), all as shipped in github.com/debruine/webmorphR.stim. See README.md beside this file.
 *
 * Run it from a scratch directory in which the pinned packages are installed (README.md):
 *
 *   node /path/to/calibrate.mjs --stim /path/to/webmorphR.stim [--models DIR] [--out FILE]
 *        [--frame 320x240|native] [--impostors 2000] [--seed 20261208] [--descriptors CACHE.json]
 *
 * --descriptors keeps every image's detections and descriptor in CACHE.json (scratch) and reuses
 * them on the next run when the image's SHA-256, the frame mode and the backend are the same.
 *
 * Packages are resolved from the current directory, not from this file's directory.
 */

import { createHash } from "node:crypto";
import { readFileSync, readdirSync, writeFileSync, existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(process.cwd(), "package.json"));

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

const MODEL_ID = "face-api.js/faceRecognitionNet";
const MODEL_VERSION = "1.7.15";
/** face-engine.ts: `new faceapi.TinyFaceDetectorOptions({ inputSize: 224, scoreThreshold: 0.3 })`. */
const DETECTOR = { inputSize: 224, scoreThreshold: 0.3 };
/** face.ts MIN_REFERENCE_QUALITY and integrity/src/face.rs MIN_QUALITY. */
const MIN_QUALITY = 0.5;
/** face.ts asks the camera for `{ width: { ideal: 320 }, height: { ideal: 240 } }`. */
const FRAME = { width: 320, height: 240 };
const PAD_VALUE = 128;
/** integrity/src/face.rs */
const TARGET_FALSE_NON_MATCH_RATE = 0.01;
const MIN_CALIBRATION_PAIRS = 200;
const MAX_FALSE_MATCH_RATE = 0.5;

function parseArgs(argv) {
  const opts = {
    stim: null,
    models: resolve(here, "../../api/assets/take/models"),
    out: resolve(here, `face-api-${MODEL_VERSION}.json`),
    frame: "320x240",
    impostors: 2000,
    seed: 20261208,
    backend: "cpu",
    descriptors: null,
  };
  for (let i = 2; i < argv.length; i++) {
    const key = argv[i].replace(/^--/, "");
    const value = argv[++i];
    if (!(key in opts) || value === undefined) throw new Error(`unknown or incomplete option --${key}`);
    opts[key] = ["impostors", "seed"].includes(key) ? Number(value) : value;
  }
  if (!opts.stim) throw new Error("--stim /path/to/webmorphR.stim is required");
  if (!["320x240", "native"].includes(opts.frame)) throw new Error("--frame is 320x240 or native");
  if (!["cpu", "wasm"].includes(opts.backend)) throw new Error("--backend is cpu or wasm");
  return opts;
}

// ---------------------------------------------------------------------------------------------
// The data set
// ---------------------------------------------------------------------------------------------

/** [{ identity, file (relative to the stim checkout), set }] */
function listImages(stim) {
  const jpgs = (dir) =>
    readdirSync(join(stim, dir))
      .filter((f) => f.endsWith(".jpg") && !f.startsWith("."))
      .sort()
      .map((f) => `${dir}/${f}`);
  const images = [];
  for (const file of jpgs("inst/neutral_front")) images.push({ identity: `london-${file.match(/(\d{3})_03\.jpg$/)[1]}`, file, set: "london/neutral_front" });
  for (const file of jpgs("inst/smiling_front")) images.push({ identity: `london-${file.match(/(\d{3})_08\.jpg$/)[1]}`, file, set: "london/smiling_front" });
  for (const file of jpgs("inst/lisa")) images.push({ identity: "lisa", file, set: "lisa" });
  for (const file of jpgs("inst/zoom")) images.push({ identity: "lisa", file, set: "zoom" });
  return images;
}

const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");

// ---------------------------------------------------------------------------------------------
// Images → camera-like frames
// ---------------------------------------------------------------------------------------------

/** RGB (Uint8, w×h×3) from a JPEG. */
function decodeJpeg(buf) {
  const jpeg = require("jpeg-js");
  const img = jpeg.decode(buf, { useTArray: true, formatAsRGBA: true, maxMemoryUsageInMB: 1024 });
  const rgb = new Uint8Array(img.width * img.height * 3);
  for (let i = 0, j = 0; i < img.data.length; i += 4, j += 3) {
    rgb[j] = img.data[i];
    rgb[j + 1] = img.data[i + 1];
    rgb[j + 2] = img.data[i + 2];
  }
  return { width: img.width, height: img.height, data: rgb };
}

/** Area-average (box filter with exact pixel coverage) downscale, as a sensor of lower resolution would. */
function resizeArea(src, width, height) {
  const sx = src.width / width;
  const sy = src.height / height;
  const out = new Uint8Array(width * height * 3);
  const spans = (n, s, limit) => {
    const list = [];
    for (let o = 0; o < n; o++) {
      const a = o * s;
      const b = Math.min((o + 1) * s, limit);
      const parts = [];
      for (let p = Math.floor(a); p < Math.ceil(b); p++) {
        const w = Math.min(b, p + 1) - Math.max(a, p);
        if (w > 0) parts.push([p, w]);
      }
      list.push(parts);
    }
    return list;
  };
  const xs = spans(width, sx, src.width);
  const ys = spans(height, sy, src.height);
  for (let oy = 0; oy < height; oy++) {
    for (let ox = 0; ox < width; ox++) {
      let r = 0, g = 0, b = 0, wsum = 0;
      for (const [py, wy] of ys[oy]) {
        for (const [px, wx] of xs[ox]) {
          const w = wx * wy;
          const k = (py * src.width + px) * 3;
          r += src.data[k] * w;
          g += src.data[k + 1] * w;
          b += src.data[k + 2] * w;
          wsum += w;
        }
      }
      const k = (oy * width + ox) * 3;
      out[k] = Math.round(r / wsum);
      out[k + 1] = Math.round(g / wsum);
      out[k + 2] = Math.round(b / wsum);
    }
  }
  return { width, height, data: out };
}

/**
 * The frame the model sees. "320x240": the photograph scaled down (never up) to fit the 320×240
 * frame the page asks the camera for, centred, the rest mid-grey. "native": the photograph as is.
 */
function toFrame(img, mode) {
  if (mode === "native") return img;
  const scale = Math.min(1, FRAME.width / img.width, FRAME.height / img.height);
  const w = Math.round(img.width * scale);
  const h = Math.round(img.height * scale);
  const small = scale < 1 ? resizeArea(img, w, h) : img;
  const frame = new Uint8Array(FRAME.width * FRAME.height * 3).fill(PAD_VALUE);
  const x0 = Math.floor((FRAME.width - w) / 2);
  const y0 = Math.floor((FRAME.height - h) / 2);
  for (let y = 0; y < h; y++) {
    frame.set(small.data.subarray(y * w * 3, (y + 1) * w * 3), ((y0 + y) * FRAME.width + x0) * 3);
  }
  return { width: FRAME.width, height: FRAME.height, data: frame };
}

// ---------------------------------------------------------------------------------------------
// Scores, exactly as the page and the server compute them
// ---------------------------------------------------------------------------------------------

/** face.ts `distance` */
function distance(a, b) {
  if (a.length !== b.length) throw new Error(`descriptors differ in length (${a.length} vs ${b.length})`);
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    sum += d * d;
  }
  return Math.sqrt(sum);
}

/** face.ts `similarityFromDistance` */
function similarityFromDistance(d) {
  if (!Number.isFinite(d)) return 0;
  return Math.min(1, Math.max(0, 1 - d));
}

const round4 = (x) => Math.round(x * 10_000) / 10_000;

/** integrity/src/face.rs `calibrate`, without its refusals (they are reported instead). */
function faceRsCalibration(genuine, impostor) {
  const sorted = [...genuine].sort((a, b) => a - b);
  const k = Math.floor(TARGET_FALSE_NON_MATCH_RATE * sorted.length);
  const threshold = sorted[Math.min(k, sorted.length - 1)];
  const below = sorted.filter((v) => v < threshold).length;
  const passing = impostor.filter((v) => v >= threshold).length;
  const falseMatchRate = passing / impostor.length;
  const refusal =
    genuine.length < MIN_CALIBRATION_PAIRS || impostor.length < MIN_CALIBRATION_PAIRS
      ? `TooFewPairs { genuine: ${genuine.length}, impostor: ${impostor.length} } (face.rs needs ${MIN_CALIBRATION_PAIRS} of each)`
      : falseMatchRate >= MAX_FALSE_MATCH_RATE
        ? `NotSeparable { false_match_rate: ${falseMatchRate} }`
        : null;
  return {
    threshold: Math.floor(threshold * 10_000) / 10_000,
    k,
    false_non_match_rate: below / sorted.length,
    false_match_rate: falseMatchRate,
    impostors_at_or_above: passing,
    genuine_pairs: genuine.length,
    impostor_pairs: impostor.length,
    face_rs_would_accept: refusal === null,
    face_rs_refusal: refusal,
  };
}

/** Mean, sample standard deviation, min/max and percentiles (linear interpolation between order statistics). */
function describe(values) {
  const s = [...values].sort((a, b) => a - b);
  const n = s.length;
  const mean = s.reduce((a, b) => a + b, 0) / n;
  const sd = Math.sqrt(s.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
  const q = (p) => {
    const h = (n - 1) * p;
    const lo = Math.floor(h);
    return s[lo] + (h - lo) * ((s[Math.min(lo + 1, n - 1)] ?? s[lo]) - s[lo]);
  };
  const pct = {};
  for (const p of [1, 5, 10, 25, 50, 75, 90, 95, 99]) pct[`p${p}`] = round4(q(p / 100));
  return { n, mean: round4(mean), sd: round4(sd), min: s[0], max: s[n - 1], ...pct };
}

/** mulberry32: a small deterministic PRNG for the impostor sample. */
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------

async function main() {
  const opts = parseArgs(process.argv);
  const stim = resolve(opts.stim);

  // face-api's Node build on plain tfjs (no native binary): the same face-api code and the same
  // tfjs 4.22 kernels as the browser bundle's; the CPU backend is the page's own fallback.
  const faceapi = require("@vladmandic/face-api/dist/face-api.node-wasm.js");
  const tf = faceapi.tf;
  await tf.setBackend(opts.backend);
  await tf.ready();
  const packageJson = JSON.parse(readFileSync(require.resolve("@vladmandic/face-api/package.json"), "utf8"));
  if (packageJson.version !== MODEL_VERSION) throw new Error(`@vladmandic/face-api ${packageJson.version} installed, ${MODEL_VERSION} expected`);

  // The page's model files, checked against the package's own copy.
  const modelFiles = readdirSync(opts.models).filter((f) => /\.(bin|json)$/.test(f)).sort();
  const packageModels = join(dirname(require.resolve("@vladmandic/face-api/package.json")), "model");
  const models = {};
  for (const f of modelFiles) {
    const digest = sha256(readFileSync(join(opts.models, f)));
    const same = existsSync(join(packageModels, f)) && sha256(readFileSync(join(packageModels, f))) === digest;
    models[f] = { sha256: digest, identical_to_npm_package: same };
  }
  await faceapi.nets.tinyFaceDetector.loadFromDisk(opts.models);
  await faceapi.nets.faceLandmark68Net.loadFromDisk(opts.models);
  await faceapi.nets.faceRecognitionNet.loadFromDisk(opts.models);
  const detectorOptions = new faceapi.TinyFaceDetectorOptions(DETECTOR);

  const images = listImages(stim);
  const cache = opts.descriptors && existsSync(opts.descriptors) ? JSON.parse(readFileSync(opts.descriptors, "utf8")) : {};
  const cacheKey = (img) => `${img.file}|${img.sha256}|${opts.frame}|${opts.backend}`;
  const started = Date.now();
  for (const [i, img] of images.entries()) {
    const buf = readFileSync(join(stim, img.file));
    img.sha256 = sha256(buf);
    const hit = cache[cacheKey(img)];
    if (hit) {
      Object.assign(img, hit, hit.descriptor ? { descriptor: Float32Array.from(hit.descriptor) } : {});
      continue;
    }
    const decoded = decodeJpeg(buf);
    img.size = [decoded.width, decoded.height];
    const frame = toFrame(decoded, opts.frame);
    img.frame = [frame.width, frame.height];
    // An int32 RGB tensor, as tf.browser.fromPixels gives the page for a video frame.
    const input = tf.tensor3d(Int32Array.from(frame.data), [frame.height, frame.width, 3], "int32");
    // face-engine.ts: detectAllFaces(video, options).withFaceLandmarks().withFaceDescriptors()
    const found = await faceapi.detectAllFaces(input, detectorOptions).withFaceLandmarks().withFaceDescriptors();
    input.dispose();
    img.faces = found.length;
    img.scores = found.map((f) => round4(f.detection.score));
    // What the server counts (face.rs): exactly one face, quality (the detection score) >= 0.5;
    // also what the page needs for its reference (face.ts frameOutcome).
    img.used = found.length === 1 && found[0].detection.score >= MIN_QUALITY;
    img.reason = found.length === 0 ? "no face" : found.length > 1 ? `${found.length} faces` : img.used ? null : `score ${round4(found[0].detection.score)} < ${MIN_QUALITY}`;
    if (img.used) img.descriptor = Float32Array.from(found[0].descriptor);
    const { size, frame: f, faces, scores, used: u, reason } = img;
    cache[cacheKey(img)] = { size, frame: f, faces, scores, used: u, reason, ...(u ? { descriptor: Array.from(img.descriptor) } : {}) };
    process.stderr.write(`\r${i + 1}/${images.length} ${img.file} faces=${img.faces} ${img.scores.join(",")}        `);
  }
  process.stderr.write(`\n${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  if (opts.descriptors) writeFileSync(opts.descriptors, JSON.stringify(cache));

  const used = images.filter((i) => i.used);
  // Genuine: every same-identity pair of usable images.
  const genuinePairs = [];
  const crossPairs = [];
  for (let a = 0; a < used.length; a++) {
    for (let b = a + 1; b < used.length; b++) {
      (used[a].identity === used[b].identity ? genuinePairs : crossPairs).push([a, b]);
    }
  }
  const sim = ([a, b]) => round4(similarityFromDistance(distance(used[a].descriptor, used[b].descriptor)));
  const genuine = genuinePairs.map(sim);
  // Impostor: a seeded sample (without replacement) of the different-identity pairs.
  const rand = mulberry32(opts.seed);
  const pool = crossPairs.slice();
  const count = Math.min(pool.length, Math.max(opts.impostors, genuine.length));
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(rand() * (pool.length - i));
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  const impostorPairs = pool.slice(0, count);
  const impostor = impostorPairs.map(sim);
  const allImpostor = crossPairs.map(sim);

  // By subset: London only (neutral vs smiling of the same person), the CC0 person only.
  const london = genuinePairs.filter(([a]) => used[a].identity.startsWith("london-")).map(sim);
  const lisa = genuinePairs.filter(([a]) => used[a].identity === "lisa").map(sim);

  // Harder impostors: London pairs of the same self-reported gender and ethnic group (london_info.csv).
  const info = {};
  const infoPath = join(stim, "data-raw/london_info.csv");
  if (existsSync(infoPath)) {
    for (const line of readFileSync(infoPath, "utf8").trim().split(/\r?\n/).slice(1)) {
      const [id, age, gender, eth] = line.split(",");
      info[`london-${id}`] = { age, gender, eth };
    }
  }
  const matched = ([a, b]) => {
    const x = info[used[a].identity];
    const y = info[used[b].identity];
    return x && y && x.gender === y.gender && x.eth === y.eth;
  };
  const matchedImpostor = crossPairs.filter(matched).map(sim);
  const label = ([a, b]) => ({ a: used[a].file, b: used[b].file, similarity: sim([a, b]) });
  const lowestGenuine = genuinePairs.map(label).sort((x, y) => x.similarity - y.similarity).slice(0, 10);
  const highestImpostor = crossPairs.map(label).sort((x, y) => y.similarity - x.similarity).slice(0, 10);

  const identities = new Set(used.map((i) => i.identity));
  const result = {
    model_id: MODEL_ID,
    model_version: MODEL_VERSION,
    genuine,
    impostor,
    source: {
      datasets: [
        {
          name: "Face Research Lab London Set (neutral_front and smiling_front), as shipped in webmorphR.stim",
          citation: "DeBruine, L., & Jones, B. (2017). Face Research Lab London Set (Version 5). figshare. https://doi.org/10.6084/m9.figshare.5047666.v5",
          license: "CC BY 4.0",
          license_text: "webmorphR.stim DESCRIPTION: \"License: CC BY 4.0\"; LICENSE.md: Creative Commons Attribution 4.0 International; README.md: \"CC-BY: DeBruine, L., & Jones, B. (2017). Face Research Lab London Set (Version 5). figshare. https://doi.org/10.6084/m9.figshare.5047666.v5\"",
          consent: "README.md: \"All individuals gave signed consent for their images to be \\\"used in lab-based and web-based studies in their original or altered forms and to illustrate research (e.g., in scientific journals, news media or presentations).\\\"\"",
          attribution_required: true,
        },
        {
          name: "webmorphR.stim \"lisa\" and \"zoom\" sets (eight photographs of one person)",
          license: "CC0",
          license_text: "webmorphR.stim README.md: \"CC-0: Four images of the same person with varying face size, position and rotation.\" and \"CC-0: Four images of the same person with varying head-to-camera distance (only very approximately 15, 30, 45 and 60 cm).\"",
          attribution_required: false,
        },
      ],
      repository: "https://github.com/debruine/webmorphR.stim",
      commit: "fa8b78fda2d659bb74ce62fcd99c4407551d2a77",
      identities: identities.size,
      images: { listed: images.length, used: used.length, excluded: images.length - used.length },
      pairs: {
        genuine: genuine.length,
        genuine_london_neutral_vs_smiling: london.length,
        genuine_cc0_person: lisa.length,
        impostor: impostor.length,
        impostor_population: crossPairs.length,
        impostor_sampling: `${impostor.length} distinct different-identity pairs drawn without replacement (partial Fisher–Yates, mulberry32 seed ${opts.seed}) from all ${crossPairs.length}`,
      },
      pipeline: {
        package: "@vladmandic/face-api@1.7.15 (dist/face-api.node-wasm.js: the face-api code of the browser bundle on @tensorflow/tfjs 4.22.0, the tfjs version the browser bundle embeds)",
        tfjs_backend: `${tf.getBackend()} (the page uses webgl, else cpu)`,
        versions: Object.fromEntries(["@vladmandic/face-api", "@tensorflow/tfjs", "@tensorflow/tfjs-core", "@tensorflow/tfjs-backend-cpu", "jpeg-js"].map((p) => [p, JSON.parse(readFileSync(require.resolve(`${p}/package.json`), "utf8")).version])),
        models,
        models_dir: relative(resolve(here, "../.."), resolve(opts.models)) || opts.models,
        detector: `TinyFaceDetectorOptions(${JSON.stringify(DETECTOR)}) then withFaceLandmarks() (68 points) then withFaceDescriptors() (faceRecognitionNet), as web/take/src/face-engine.ts`,
        input:
          opts.frame === "native"
            ? "the photograph at its own resolution, as an int32 RGB tensor"
            : `the photograph scaled down (area average) to fit the ${FRAME.width}x${FRAME.height} frame face.ts asks the camera for, centred on a mid-grey (${PAD_VALUE}) ${FRAME.width}x${FRAME.height} frame, as an int32 RGB tensor (what tf.browser.fromPixels gives the page)`,
        filter: `an image is used only when exactly one face is detected and its detection score (the page's quality) is >= ${MIN_QUALITY} (face.ts MIN_REFERENCE_QUALITY, face.rs MIN_QUALITY)`,
        similarity: "clamp(1 - euclidean distance between the two 128-d descriptors, 0, 1) (face.ts similarityFromDistance), rounded to 4 decimals",
      },
      face_rs_calibration: faceRsCalibration(genuine, impostor),
      face_rs_calibration_all_impostor_pairs: faceRsCalibration(genuine, allImpostor),
      face_rs_calibration_impostors_same_gender_and_ethnicity: matchedImpostor.length ? faceRsCalibration(genuine, matchedImpostor) : null,
      distributions: {
        genuine: describe(genuine),
        genuine_london_neutral_vs_smiling: describe(london),
        genuine_cc0_person: lisa.length > 1 ? describe(lisa) : null,
        impostor: describe(impostor),
        impostor_all_pairs: describe(allImpostor),
        impostor_same_gender_and_ethnicity: matchedImpostor.length > 1 ? describe(matchedImpostor) : null,
      },
      lowest_genuine_pairs: lowestGenuine,
      highest_impostor_pairs_of_all: highestImpostor,
      per_image: images.map((i) => ({ file: i.file, identity: i.identity, sha256: i.sha256, size: i.size, faces: i.faces, scores: i.scores, used: i.used, ...(i.reason ? { excluded: i.reason } : {}) })),
      script: "integrity/calibrations/calibrate.mjs",
    },
  };
  // Indented, with arrays of numbers kept on one line.
  const text = JSON.stringify(result, null, 1).replace(/\[\s*(-?[\d.e+-]+(?:,\s*-?[\d.e+-]+)*)\s*\]/g, (_, body) => `[${body.split(/,\s*/).join(",")}]`);
  writeFileSync(opts.out, text + "\n");
  const c = result.source.face_rs_calibration;
  console.log(JSON.stringify({ out: opts.out, identities: identities.size, images: result.source.images, pairs: result.source.pairs, calibration: c, distributions: result.source.distributions }, null, 1));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
