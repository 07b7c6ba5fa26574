/**
 * The few parts of `@vladmandic/face-api` 1.7.15 that `face-engine.ts` uses. The package's own
 * declarations bring WebGPU types that clash with TypeScript's DOM library, so the module is
 * imported under an alias (`clarity-face-api`, mapped to the package by build-take.mjs) and typed
 * here.
 */
declare module "clarity-face-api" {
  export const tf: unknown;
  interface Net {
    loadFromUri(uri: string): Promise<void>;
  }
  export const nets: { tinyFaceDetector: Net; faceLandmark68Net: Net; faceRecognitionNet: Net };
  export class TinyFaceDetectorOptions {
    constructor(options: { inputSize?: number; scoreThreshold?: number });
  }
  interface Described {
    detection: { score: number };
    descriptor: Float32Array;
  }
  interface WithLandmarks {
    withFaceDescriptors(): Promise<Described[]>;
  }
  interface Detecting {
    withFaceLandmarks(): WithLandmarks;
  }
  export function detectAllFaces(input: HTMLVideoElement, options: TinyFaceDetectorOptions): Detecting;
}
