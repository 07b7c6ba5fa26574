/**
 * The candidate API as the page uses it: every call carries the session token as
 * `Authorization: Bearer`, and every answer's `Date` header feeds the clock offset.
 */

import { ClockOffset, offsetSample } from "./clock";

export interface StarterFile {
  path: string;
  content: string;
}

export interface Task {
  title: string;
  prompt: string;
  starter_files?: StarterFile[];
}

export interface Assessment {
  title: string;
  format?: string;
  time_limit_minutes: number;
  tasks: Task[];
  /** What is monitored (shape tolerated: see `monitoringList`). */
  monitoring?: unknown;
  integrity_policy?: Record<string, boolean>;
}

export interface ConsentScopes {
  keystroke_dynamics: boolean;
  face_continuity: boolean;
}

export interface Workspace {
  session_id: string;
  status: string;
  deadline: string | null;
  started_at?: string | null;
  extra_time_minutes?: number;
  assessment: Assessment | null;
  /** The consent recorded, when the server reports it. */
  consent?: { scopes?: Partial<ConsentScopes> } | null;
}

export interface Notice {
  notice_id: string;
  content_sha256: string;
  title: string;
  body: string;
  optional_scopes: string[];
}

export interface Resume {
  acked_seq: number;
  files: StarterFile[];
  status: string;
  deadline: string | null;
}

/** One visible test of a run, as the runner reported it. */
export interface RunTest {
  name: string;
  passed: boolean;
  message?: string;
  duration_ms?: number;
}

/** A run of the visible tests (`POST /runs`, `GET /runs/{id}`). */
export interface RunStatus {
  run_id: string;
  status: "queued" | "running" | "done";
  passed: number | null;
  total: number | null;
  result: {
    ending: { kind: string; code?: number; signal?: number; message?: string };
    tests: RunTest[];
    results_error?: string;
    duration_ms: number;
    output: string;
    output_truncated: boolean;
  } | null;
  /** While it runs: what it has printed so far. */
  live_output?: string | null;
}

/** A refusal or failure: the HTTP status (0 without an answer) and the server's code. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfterMs: number | null = null,
  ) {
    super(message);
  }

  /** The token no longer works: only a new link helps. */
  get isAuth(): boolean {
    return this.status === 401 || this.status === 403;
  }

  /** The session is over on the server (its expiry or a submission stands). */
  get isFinished(): boolean {
    return this.status === 409 && ["session_finished", "deadline_passed", "session_not_in_progress"].includes(this.code);
  }
}

export class Api {
  readonly clock = new ClockOffset();

  constructor(
    readonly sessionId: string,
    readonly token: string,
    private readonly fetchImpl: typeof fetch = (i, init) => fetch(i, init),
  ) {}

  workspace(): Promise<Workspace> {
    return this.call("GET", "/workspace");
  }

  notice(): Promise<Notice> {
    return this.call("GET", "/notice");
  }

  consent(notice: Notice, scopes: ConsentScopes): Promise<Workspace> {
    return this.call("POST", "/consent", { notice_id: notice.notice_id, notice_sha256: notice.content_sha256, scopes });
  }

  withdraw(scopes: Array<keyof ConsentScopes>): Promise<unknown> {
    return this.call("POST", "/consent/withdraw", { scopes });
  }

  start(): Promise<Workspace> {
    return this.call("POST", "/start");
  }

  resume(): Promise<Resume> {
    return this.call("GET", "/resume");
  }

  /** Runs the visible tests on the workspace as the server has it. */
  requestRun(): Promise<RunStatus> {
    return this.call("POST", "/runs", {});
  }

  run(runId: string): Promise<RunStatus> {
    return this.call("GET", `/runs/${encodeURIComponent(runId)}`);
  }

  submit(files: StarterFile[]): Promise<Workspace> {
    return this.call("POST", "/submit", { files });
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { Authorization: `Bearer ${this.token}`, Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const sentAt = Date.now();
    let res: Response;
    try {
      res = await this.fetchImpl(`/v1/sessions/${encodeURIComponent(this.sessionId)}${path}`, {
        method,
        headers,
        body: body === undefined ? null : JSON.stringify(body),
        cache: "no-store",
        credentials: "omit",
        referrerPolicy: "no-referrer",
      });
    } catch {
      throw new ApiError(0, "network", "The server could not be reached. Check your connection.");
    }
    this.clock.add(offsetSample(res.headers.get("Date"), sentAt, Date.now()));
    const text = await res.text().catch(() => "");
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null;
    }
    if (!res.ok) {
      const err = (json as { error?: { code?: unknown; message?: unknown } } | null)?.error;
      throw new ApiError(
        res.status,
        typeof err?.code === "string" ? err.code : `http_${res.status}`,
        typeof err?.message === "string" ? err.message : `The server answered ${res.status}.`,
        retryAfterMs(res.headers.get("Retry-After")),
      );
    }
    return json as T;
  }
}

/** `Retry-After` (seconds or an HTTP date) in ms, or `null`. */
export function retryAfterMs(value: string | null, now = Date.now()): number | null {
  if (!value) return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

const SCOPE_WORDS: Record<string, string> = {
  keystroke_dynamics: "Typing rhythm (the timing of key presses, never which keys)",
  face_continuity: "Face continuity (your camera checks that the same person stays at the keyboard; images stay on your device)",
  paste_tracking: "Pasted text (what is pasted into the editor, and how much)",
  focus_tracking: "Leaving the page (when this tab loses focus or is hidden)",
  similarity: "Similarity of your final code to other submissions",
  edits: "Your edits in the editor (replayed for the reviewer)",
};

/** A scope key in plain words. */
export function scopeWords(scope: string): string {
  return SCOPE_WORDS[scope] ?? scope.replace(/_/g, " ");
}

/**
 * What is monitored, as plain sentences: `assessment.monitoring` as a list of keys, a list of
 * `{label|description|scope}` objects or a map of key → on/off; else the integrity policy.
 */
export function monitoringList(assessment: Pick<Assessment, "monitoring" | "integrity_policy">): string[] {
  const m = assessment.monitoring;
  const fromKeys = (keys: string[]) => keys.map(scopeWords);
  if (Array.isArray(m)) {
    return m.flatMap((item): string[] => {
      if (typeof item === "string") return [scopeWords(item)];
      if (item && typeof item === "object") {
        const o = item as Record<string, unknown>;
        for (const k of ["label", "description", "title"]) if (typeof o[k] === "string") return [o[k] as string];
        for (const k of ["scope", "key", "kind"]) if (typeof o[k] === "string") return [scopeWords(o[k] as string)];
      }
      return [];
    });
  }
  if (m && typeof m === "object") {
    return fromKeys(Object.entries(m as Record<string, unknown>).filter(([, on]) => on === true).map(([k]) => k));
  }
  const policy = assessment.integrity_policy;
  const base = ["Your edits in the editor, with their timing (replayed for the reviewer)"];
  if (!policy) return base;
  return base.concat(fromKeys(Object.keys(policy).filter((k) => policy[k] === true)));
}
