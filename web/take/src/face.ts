/**
 * Face continuity (only with the candidate's `face_continuity` consent): the on-device check
 * that the same person stays at the keyboard, reported with `capture.faceCheck(...)`.
 *
 * NOT IMPLEMENTED, and not called by the page yet: another step builds it (the camera, the
 * on-device model, its id and version). Until then no face check is sent — this module must never
 * report a made-up similarity.
 */

import type { Capture } from "../../capture/src/capture";

export interface FaceCheckOptions {
  /** ms between two checks. */
  intervalMs?: number;
  /** Where the camera preview (if any) goes. */
  container?: HTMLElement;
}

/**
 * Starts periodic face checks and returns a function that stops them.
 * TODO: camera permission, an on-device model, `capture.faceCheck({ similarity, model_id,
 * model_version, face_count, quality })`; stop on `capture.setScopes({ face_continuity: false })`.
 */
export function startFaceChecks(_capture: Capture, _opts: FaceCheckOptions = {}): () => void {
  throw new Error("face continuity checks are not implemented yet");
}
