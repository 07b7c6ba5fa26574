/**
 * The on-device face model, bundled on its own into `take-face.js` (ESM) and imported by
 * `face.ts` only when face checks start: candidates without face-continuity consent never
 * download it. `@vladmandic/face-api` (pinned in web/package.json) with tfjs inside; the three
 * models it needs are served by the API itself from `/take/assets/models/` (copied from the npm
 * package at build time): nothing is fetched from another origin.
 *
 * The tfjs backend is WebGL, else the CPU; never the WebAssembly one (it would need
 * `'wasm-unsafe-eval'` in the page's CSP and its .wasm files).
 */

import * as faceapi from "clarity-face-api";
import type { Detection, FaceEngine } from "./face";

async function pickBackend(): Promise<string> {
  const tf = faceapi.tf as unknown as { setBackend(name: string): Promise<boolean>; ready(): Promise<void>; getBackend(): string };
  for (const name of ["webgl", "cpu"]) {
    try {
      if (await tf.setBackend(name)) {
        await tf.ready();
        return tf.getBackend();
      }
    } catch {
      /* try the next one */
    }
  }
  throw new Error("no tfjs backend could start (webgl, cpu)");
}

export async function createEngine(modelsUrl: string): Promise<FaceEngine> {
  const backend = await pickBackend();
  await Promise.all([
    faceapi.nets.tinyFaceDetector.loadFromUri(modelsUrl),
    faceapi.nets.faceLandmark68Net.loadFromUri(modelsUrl),
    faceapi.nets.faceRecognitionNet.loadFromUri(modelsUrl),
  ]);
  const options = new faceapi.TinyFaceDetectorOptions({ inputSize: 224, scoreThreshold: 0.3 });
  return {
    backend,
    async detect(video: HTMLVideoElement): Promise<Detection[]> {
      const found = await faceapi.detectAllFaces(video, options).withFaceLandmarks().withFaceDescriptors();
      return found.map((f) => ({ score: f.detection.score, descriptor: f.descriptor }));
    },
  };
}
