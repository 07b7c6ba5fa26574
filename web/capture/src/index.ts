/**
 * Clarity's capture library: what a candidate does in an editor, as numbered telemetry events,
 * stored in the browser until the server acknowledged them. See `web/capture/README.md`.
 */

export * from "./wire";
export { Capture, browserClock } from "./capture";
export type { CaptureOptions, CaptureStatus, Clock, ConnectionState, KeyLike, Scopes } from "./capture";
export { keyClass } from "./keys";
export {
  CM_ORIGINS,
  captureTransaction,
  cursorFromTransaction,
  editsFromTransaction,
  originOf,
  replacementsOf,
} from "./codemirror";
export type { CmChangeSet, CmSelection, CmSelectionRange, CmText, CmTransaction, TransactionSink } from "./codemirror";
export { MemoryStorage } from "./storage";
export type { QueueMeta, QueueStorage, StoredQueue } from "./storage";
export { IndexedDbStorage } from "./indexeddb";
export { attach, claimSession } from "./browser";
export type { AttachOptions } from "./browser";
export { applyEvents, diffReplacement, jsonBytes, splitText } from "./text";
export type { Replacement } from "./text";
export { checkData, checkPath, WorkspaceShape } from "./validate";
export type { Refusal } from "./validate";
export { backoffDelay, parseRetryAfter, retryAfterDelay } from "./backoff";
export type { BackoffOptions } from "./backoff";
export { Cell } from "./observable";
export type { Observable } from "./observable";
export type { OverheadSummary } from "./overhead";
export type { Outcome, Problem } from "./transport";
