/**
 * One telemetry request and what its answer means for the queue.
 *
 * The answers (`api/src/routes/telemetry.rs`, `api/src/auth.rs`, `docs/schemas/openapi.json`):
 * - 200 `IngestResult`: every event up to `last_seq` is acknowledged (`duplicates` were already);
 * - 401 `unauthenticated` / `session_token_expired` / `session_token_revoked`, 403: the token no
 *   longer works: stop;
 * - 409 `session_not_in_progress` (ended, past the deadline): stop; `sequence_gap`
 *   (`details.expected_seq`): the server misses events this client no longer has: stop;
 * - 413 `batch_too_large`: send fewer events at once; other 413 codes (one event too large, the
 *   session's caps): stop;
 * - 429 `rate_limited`: retry after `Retry-After`;
 * - 408, 5xx (503 `broker_unavailable`, `timeout`), no answer at all: retry with backoff;
 * - any other 4xx (400, 404, 415, 422 `invalid_events`): the batch can never succeed: stop.
 */

import type { ErrorBody, IngestResult, TelemetryEvent } from "./wire";
import { telemetryPath } from "./wire";

/** What a stop or failure was: the HTTP status and the server's error, when there was one. */
export interface Problem {
  /** 0 when no HTTP answer arrived. */
  status: number;
  code: string;
  message: string;
  details?: unknown;
}

/** What to do after one request. */
export type Outcome =
  | { kind: "acked"; result: IngestResult; serverDateMs: number | null }
  | { kind: "retry"; problem: Problem; offline: boolean; retryAfter: string | null }
  | { kind: "shrink"; problem: Problem }
  | { kind: "stop"; problem: Problem };

/** Where and how batches are sent. */
export interface TransportOptions {
  /** Origin (and path prefix) of the Clarity API; `""` for the page's own origin. */
  baseUrl: string;
  sessionId: string;
  /** The candidate session token (`cst_...`), sent as `Authorization: Bearer`. */
  token: string;
  fetch: typeof fetch;
  /** Longest wait for an answer before the request counts as lost (35 s: past the server's 30 s limit). */
  timeoutMs: number;
}

/** The body of a batch, and its size in bytes. */
export function encodeBatch(events: readonly TelemetryEvent[]): string {
  return JSON.stringify({ events });
}

/** Sends one batch. `keepalive` lets it outlive the page (at most 64 KiB of body in flight). */
export async function sendBatch(
  options: TransportOptions,
  body: string,
  keepalive = false,
): Promise<Outcome> {
  const controller = typeof AbortController === "function" ? new AbortController() : null;
  const timer = controller ? setTimeout(() => controller.abort(), options.timeoutMs) : null;
  let response: Response;
  try {
    response = await options.fetch(options.baseUrl + telemetryPath(options.sessionId), {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Authorization: `Bearer ${options.token}`,
      },
      body,
      keepalive,
      // The token is a header, never a cookie or a URL: nothing ambient to send.
      credentials: "omit",
      cache: "no-store",
      ...(controller ? { signal: controller.signal } : {}),
    });
  } catch (error) {
    if (timer) clearTimeout(timer);
    const aborted = controller?.signal.aborted ?? false;
    return {
      kind: "retry",
      offline: !aborted,
      retryAfter: null,
      problem: {
        status: 0,
        code: aborted ? "timeout" : "network_error",
        message: aborted ? `no answer within ${options.timeoutMs} ms` : String(error),
      },
    };
  }
  try {
    return await classify(response);
  } finally {
    if (timer) clearTimeout(timer);
  }
}

async function classify(response: Response): Promise<Outcome> {
  const text = await response.text().catch(() => "");
  if (response.ok) {
    const result = parseJson(text) as Partial<IngestResult> | null;
    if (result && typeof result.last_seq === "number" && typeof result.accepted === "number") {
      const date = response.headers.get("Date");
      const serverDateMs = date ? Date.parse(date) : NaN;
      return {
        kind: "acked",
        result: { accepted: result.accepted, duplicates: result.duplicates ?? 0, last_seq: result.last_seq },
        serverDateMs: Number.isNaN(serverDateMs) ? null : serverDateMs,
      };
    }
    // Not Clarity's answer (a captive portal, a proxy): nothing is known to be acknowledged.
    return {
      kind: "retry",
      offline: false,
      retryAfter: null,
      problem: { status: response.status, code: "unexpected_response", message: "a 2xx answer without an IngestResult" },
    };
  }
  const body = parseJson(text) as Partial<ErrorBody> | null;
  const problem: Problem = {
    status: response.status,
    code: body?.error?.code ?? `http_${response.status}`,
    message: body?.error?.message ?? (text.slice(0, 200) || response.statusText),
    ...(body?.error?.details !== undefined ? { details: body.error.details } : {}),
  };
  const status = response.status;
  if (status === 429) {
    return { kind: "retry", offline: false, retryAfter: response.headers.get("Retry-After"), problem };
  }
  if (status === 408 || status >= 500) {
    return { kind: "retry", offline: false, retryAfter: response.headers.get("Retry-After"), problem };
  }
  if (status === 413) {
    // Only these are about something other than the request's size (a proxy's 413 without
    // Clarity's body is about size too).
    return PERMANENT_413.has(problem.code) ? { kind: "stop", problem } : { kind: "shrink", problem };
  }
  return { kind: "stop", problem };
}

/** 413 codes that a smaller batch does not help: one event too large, the session's caps. */
const PERMANENT_413 = new Set([
  "event_too_large",
  "session_event_limit",
  "session_byte_limit",
  "workspace_too_large",
  "workspace_too_many_files",
]);

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
