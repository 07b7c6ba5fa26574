/**
 * The workspace: the editor, the file tree, the task, the countdown, the connection state and
 * the submission. The capture library is opened here, after the start, exactly as its README
 * says; autosave *is* the telemetry (there is no separate save).
 */

import type { Transaction } from "@codemirror/state";
import { attach, claimSession } from "../../capture/src/browser";
import { Capture, type CaptureStatus } from "../../capture/src/capture";
import { IndexedDbStorage } from "../../capture/src/indexeddb";
import { applyEvents } from "../../capture/src/text";
import { captureTransaction } from "../../capture/src/codemirror";
import { ApiError, scopeWords, type Api, type ConsentScopes, type Resume, type RunStatus, type Workspace } from "./api";
import { dueWarning, extensionMinutes, formatRemaining, remainingMs, resetWarnings, spokenRemaining } from "./clock";
import { h, sleep } from "./dom";
import { Editor } from "./editor";
import { nameProblem, splitPath, treeOrder } from "./files";
import { faceMonitored, startFaceChecks } from "./face";
import { renderMarkdown } from "./markdown";
import { authProblem, confirmation, failure, forgetScope, show } from "./screens";

const REFRESH_MS = 30_000;
/** How often a run in progress is asked after. */
const RUN_POLL_MS = 700;

/** `GET /resume`, waiting while the server catches up (503 `resume_not_ready`) or is unreachable. */
async function resumeWhenReady(api: Api, say: (text: string) => void): Promise<Resume> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await api.resume();
    } catch (err) {
      if (!(err instanceof ApiError) || !(err.status === 503 || err.status === 0 || err.status === 502 || err.status === 504)) throw err;
      const wait = Math.min(30_000, err.retryAfterMs ?? 1000 * 2 ** Math.min(attempt, 4));
      say(
        err.status === 0
          ? `The server cannot be reached. Trying again in ${Math.ceil(wait / 1000)} s…`
          : `The server is catching up with your latest work. Trying again in ${Math.ceil(wait / 1000)} s…`,
      );
      await sleep(wait);
    }
  }
}

function starterFiles(ws: Workspace): Map<string, string> {
  const files = new Map<string, string>();
  for (const task of ws.assessment?.tasks ?? []) for (const f of task.starter_files ?? []) files.set(f.path, f.content);
  return files;
}

function connectionText(s: CaptureStatus): string {
  switch (s.state) {
    case "online":
      return s.pending > 0 ? "Online: saving…" : "Online: all saved";
    case "retrying":
      return "Retrying: work kept on this device";
    case "offline":
      return "Offline: work kept on this device";
    case "stopped":
      if (s.problem?.status === 401 || s.problem?.status === 403) return "Stopped: link no longer works";
      if (s.problem?.status === 409) return "Stopped: session closed";
      return `Stopped: ${s.problem?.message ?? "sending stopped"}`;
  }
}

/** What a change of connection state means, announced once. */
function connectionNews(s: CaptureStatus): string {
  switch (s.state) {
    case "online":
      return "Back online. Your work is being saved.";
    case "retrying":
      return "Connection problem. Keep working: your work is kept on this device and sent when the connection is back.";
    case "offline":
      return "You are offline. Keep working: your work is kept on this device and sent when you reconnect.";
    case "stopped":
      return `Saving stopped: ${s.problem?.message ?? "the server refused the work"}.`;
  }
}

export async function openWorkspace(api: Api, initial: Workspace, scopes: ConsentScopes): Promise<void> {
  const loading = h("p", { role: "status", "data-testid": "loading-status" }, "Opening your workspace…");
  show("loading", h("div", { class: "card" }, h("h1", {}, "Opening your workspace…"), loading));

  if (!(await claimSession(api.sessionId))) {
    return show(
      "elsewhere",
      h(
        "div",
        { class: "card" },
        h("h1", {}, "This assessment is open in another tab"),
        h("p", {}, "Only one tab can hold the assessment at a time, so that nothing you type is lost. Close the other tab, then reload this page."),
        h("div", { class: "actions" }, h("button", { type: "button", class: "primary", onclick: () => location.reload() }, "Reload")),
      ),
    );
  }

  let resume: Resume;
  let ws = initial;
  try {
    resume = await resumeWhenReady(api, (t) => (loading.textContent = t));
    if (!ws.assessment) ws = await api.workspace();
  } catch (err) {
    if (err instanceof ApiError && err.isFinished) return confirmation("ended");
    return failure(err, () => location.reload());
  }
  if (resume.status !== "in_progress") return confirmation("ended");

  const { storage, persistent } = await IndexedDbStorage.openOrMemory();
  const serverFiles = new Map(resume.files.map((f) => [f.path, f.content] as const));
  const refusals = h("p", { class: "error", role: "alert", "data-testid": "refusal" });
  const capture = await Capture.open({
    sessionId: api.sessionId,
    token: api.token,
    storage,
    serverAckedSeq: resume.acked_seq,
    files: serverFiles,
    scopes,
    clockOffsetMs: api.clock.ms,
    onRefused: (kind, r) => (refusals.textContent = `A change was not recorded (${kind}): ${r.message}`),
  });

  // What the candidate had: the server's files plus what is still queued on this device.
  const pending = capture.pendingEvents();
  const firstOpen = resume.acked_seq === 0 && pending.length === 0;
  let files: Map<string, string>;
  if (firstOpen) {
    files = starterFiles(ws);
    // The server knows only files created in the telemetry: announce every starter file first.
    for (const [path, content] of files) capture.fileCreated(path, content);
  } else {
    try {
      files = applyEvents(serverFiles, pending);
    } catch (err) {
      capture.close();
      return failure(new ApiError(0, "resume_mismatch", `Your saved work could not be restored: ${String(err)}`), () => location.reload());
    }
  }

  new WorkspaceView(api, ws, resume, capture, files, scopes, persistent, refusals).mount();
}

class WorkspaceView {
  private readonly editor: Editor;
  private readonly editorHost = h("div", { class: "cm-host" });
  private readonly tree = h("ul", { class: "tree", "aria-label": "Files", "data-testid": "file-tree" });
  private readonly fileForm = h("div", { class: "file-form" });
  private readonly fileHeading = h("h2", { class: "pane-h", id: "editor-h", "data-testid": "current-file" });
  private readonly timer = h("span", { class: "timer-value", "data-testid": "countdown" });
  private readonly timerBox = h("div", { class: "timer", role: "timer", "aria-labelledby": "timer-label" });
  private readonly extra = h("span", { class: "extra", "data-testid": "extra-time" });
  private readonly conn = h("div", { class: "conn", "data-testid": "connection" });
  private readonly live = h("div", { class: "sr-only", "aria-live": "polite", "data-testid": "announcements" });
  private readonly alert = h("div", { class: "banner", role: "alert", "data-testid": "alert" });
  private readonly scopeList = h("div", { class: "scopes" });
  private readonly faceBox = h("div", { class: "face" });
  private stopFace: () => void = () => {};
  private readonly dialog = h("dialog", { class: "confirm", "aria-labelledby": "confirm-h", "data-testid": "submit-dialog" });
  private readonly submitButton = h("button", { type: "button", class: "primary", "data-testid": "submit" }, "Submit…");
  private readonly runButton = h("button", { type: "button", "data-testid": "run-tests", "aria-describedby": "run-h" }, "Run tests");
  private readonly runStatus = h("p", { class: "run-status", role: "status", "aria-live": "polite", "data-testid": "run-status" });
  private readonly runResults = h("div", { class: "run-results", "data-testid": "run-results", role: "region", tabindex: "0", "aria-label": "Test results and output" });
  private running = false;
  private deadline: string | null;
  private readonly warned = new Set<number>();
  private timers: number[] = [];
  private detach: () => void = () => {};
  private submitting = false;
  private done = false;
  private lastState: string | null = null;

  constructor(
    private readonly api: Api,
    private ws: Workspace,
    resume: Resume,
    private readonly capture: Capture,
    files: Map<string, string>,
    private scopes: ConsentScopes,
    private readonly persistent: boolean,
    private readonly refusals: HTMLElement,
  ) {
    this.deadline = resume.deadline ?? ws.deadline;
    this.editor = new Editor(this.editorHost, (file, tr) => this.onTransaction(file, tr));
    this.editor.load(files);
  }

  private onTransaction(file: string, tr: Transaction): void {
    if (this.done) return;
    captureTransaction(this.capture, file, tr);
  }

  mount(): void {
    const title = this.ws.assessment?.title ?? "Assessment";
    const header = h(
      "header",
      { class: "bar" },
      h("div", { class: "bar-title" }, h("p", { class: "brand", "aria-hidden": "true" }, "Clarity"), h("h1", {}, title)),
      this.timerBox,
      this.conn,
      this.submitButton,
    );
    this.timerBox.append(h("span", { id: "timer-label", class: "timer-label" }, "Time left"), this.timer, this.extra);
    this.submitButton.addEventListener("click", () => this.confirmSubmit());

    const tasks = this.ws.assessment?.tasks ?? [];
    const task = h(
      "section",
      { class: "task", "aria-labelledby": "task-h", "data-testid": "task" },
      h("h2", { id: "task-h", class: "pane-h" }, tasks.length > 1 ? "Tasks" : "Task"),
      h(
        "div",
        { class: "prompt", tabindex: "0", "aria-label": "Task description" },
        tasks.map((t) => h("article", {}, h("h3", {}, t.title), renderMarkdown(document, t.prompt, 4))),
      ),
    );

    const aside = h(
      "aside",
      { class: "side", "aria-label": "Files and monitoring" },
      h("section", { "aria-labelledby": "files-h" }, h("h2", { id: "files-h", class: "pane-h" }, "Files"), this.tree, this.fileActions(), this.fileForm),
      h("section", { "aria-labelledby": "mon-h", class: "mon" }, h("h2", { id: "mon-h", class: "pane-h" }, "Monitoring"), this.scopeList, this.faceBox),
    );

    const runPane = h(
      "section",
      { class: "runs", "aria-labelledby": "run-h", "data-testid": "runs" },
      h("div", { class: "row" }, h("h2", { id: "run-h", class: "pane-h" }, "Tests"), this.runButton),
      h("p", { class: "hint" }, "Runs the task's visible tests on the server, on your work as saved. Reviewers see every run."),
      this.runStatus,
      this.runResults,
    );
    this.runButton.addEventListener("click", () => void this.runTests());
    const editorPane = h(
      "section",
      { class: "editor-pane", "aria-labelledby": "editor-h" },
      this.fileHeading,
      this.editorHost,
      h("p", { class: "hint" }, "Tab indents. Esc, then Tab, moves on from the editor. Your work is saved as you type."),
      runPane,
    );

    if (!this.persistent) {
      this.alert.textContent =
        "This browser is not keeping a copy of your work on this device (a private window?). Stay online and do not reload until you submit.";
    }
    show("workspace", h("div", { class: "ws" }, header, this.alert, this.refusals, h("div", { class: "panes" }, aside, editorPane, task)), this.live, this.dialog);

    this.renderTree();
    this.renderScopes();
    // Read-only view for the browser test (tests/browser/take.spec.mjs): what the editor holds.
    // The candidate's own work, already in their page; nothing to hide from them.
    (window as unknown as { __clarityTake?: unknown }).__clarityTake = {
      files: () => Object.fromEntries(this.editor.files()),
      current: () => this.editor.current,
      // The capture path's own cost per event and the traffic it made (measurements only).
      overhead: () => this.capture.overhead(),
      traffic: () => this.capture.traffic(),
    };
    this.detach = attach(this.capture, { keyTarget: this.editorHost });
    this.capture.status.subscribe((s) => this.onStatus(s));
    this.tick();
    this.timers.push(window.setInterval(() => this.tick(), 1000));
    this.timers.push(window.setInterval(() => void this.refresh(), REFRESH_MS));
    if (this.ws.extra_time_minutes) this.extra.textContent = `includes ${this.ws.extra_time_minutes} min extra time`;
    this.startFace();
  }

  /** Face checks: only with the candidate's consent, on an assessment that monitors faces. */
  private startFace(): void {
    if (!this.scopes.face_continuity || !faceMonitored(this.ws.assessment?.monitoring)) return;
    // The browser test shortens the cadence (tests/browser/take.spec.mjs, MODE=face).
    const testInterval = (window as unknown as { __clarityFaceIntervalMs?: unknown }).__clarityFaceIntervalMs;
    this.stopFace = startFaceChecks(this.capture, {
      container: this.faceBox,
      say: (text) => this.say(text),
      ...(typeof testInterval === "number" ? { intervalMs: testInterval } : {}),
    });
  }

  // ---- the file tree ---------------------------------------------------------------------

  private renderTree(): void {
    const current = this.editor.current;
    this.tree.replaceChildren(
      ...treeOrder(this.editor.paths()).map((path) => {
        const { folder, name } = splitPath(path);
        return h(
          "li",
          {},
          h(
            "button",
            {
              type: "button",
              class: "file",
              "data-path": path,
              "data-testid": "file",
              "aria-current": path === current ? "true" : undefined,
              onclick: () => this.openFile(path),
            },
            folder ? h("span", { class: "folder" }, folder) : null,
            name,
          ),
        );
      }),
    );
    this.fileHeading.textContent = current ?? "No file open";
  }

  private openFile(path: string): void {
    this.editor.open(path);
    this.renderTree();
    this.editor.focus();
  }

  private fileActions(): HTMLElement {
    return h(
      "div",
      { class: "file-actions" },
      h("button", { type: "button", "data-testid": "new-file", onclick: () => this.nameForm("create") }, "New file"),
      h("button", { type: "button", "data-testid": "rename-file", onclick: () => this.nameForm("rename") }, "Rename"),
      h("button", { type: "button", "data-testid": "delete-file", onclick: () => this.deleteForm() }, "Delete"),
    );
  }

  private closeForm(focus?: HTMLElement | null): void {
    this.fileForm.replaceChildren();
    (focus ?? this.tree.querySelector<HTMLElement>('[aria-current="true"]'))?.focus();
  }

  private nameForm(mode: "create" | "rename"): void {
    if (this.done) return;
    const from = this.editor.current;
    if (mode === "rename" && from === null) return;
    const input = h("input", {
      id: "file-name",
      type: "text",
      autocomplete: "off",
      spellcheck: "false",
      "aria-describedby": "file-error",
      "data-testid": "file-name",
      value: mode === "rename" ? from ?? "" : "",
    });
    const error = h("p", { id: "file-error", class: "error", role: "alert" });
    const form = h(
      "form",
      {
        novalidate: true,
        onsubmit: (e: Event) => {
          e.preventDefault();
          const name = input.value;
          const problem = nameProblem(name, this.editor.paths(), mode === "rename" ? from ?? undefined : undefined);
          if (problem) {
            error.textContent = problem;
            input.setAttribute("aria-invalid", "true");
            input.focus();
            return;
          }
          const ok = mode === "create" ? this.capture.fileCreated(name, "") : this.capture.fileRenamed(from!, name);
          if (!ok) {
            error.textContent = "That name cannot be used.";
            return;
          }
          if (mode === "create") this.editor.create(name, "");
          else this.editor.rename(from!, name);
          this.editor.open(name);
          this.closeForm(null);
          this.renderTree();
          this.say(mode === "create" ? `Created ${name}.` : `Renamed ${from} to ${name}.`);
          this.editor.focus();
        },
        onkeydown: (e: Event) => {
          if ((e as KeyboardEvent).key === "Escape") this.closeForm();
        },
      },
      h("label", { for: "file-name" }, mode === "create" ? "New file name (folders with “/”)" : `New name for ${from}`),
      input,
      error,
      h(
        "div",
        { class: "row" },
        h("button", { type: "submit", class: "primary small", "data-testid": "file-ok" }, mode === "create" ? "Create" : "Rename"),
        h("button", { type: "button", class: "small", onclick: () => this.closeForm() }, "Cancel"),
      ),
    );
    this.fileForm.replaceChildren(form);
    input.focus();
    if (mode === "rename") input.select();
  }

  private deleteForm(): void {
    if (this.done) return;
    const path = this.editor.current;
    if (path === null) return;
    const yes = h("button", { type: "button", class: "danger small", "data-testid": "delete-ok" }, "Delete");
    yes.addEventListener("click", () => {
      if (!this.capture.fileDeleted(path)) return;
      this.editor.remove(path);
      this.closeForm(null);
      this.renderTree();
      this.say(`Deleted ${path}.`);
      this.tree.querySelector<HTMLElement>("button")?.focus();
    });
    this.fileForm.replaceChildren(
      h(
        "div",
        { role: "group", "aria-labelledby": "delete-q" },
        h("p", { id: "delete-q" }, `Delete ${path}? This cannot be undone.`),
        h("div", { class: "row" }, yes, h("button", { type: "button", class: "small", onclick: () => this.closeForm() }, "Cancel")),
      ),
    );
    yes.focus();
  }

  // ---- consent withdrawal ----------------------------------------------------------------

  private renderScopes(): void {
    const granted = (Object.keys(this.scopes) as Array<keyof ConsentScopes>).filter((k) => this.scopes[k]);
    this.scopeList.replaceChildren(
      h("p", { class: "muted small-text" }, "Your edits, pastes and leaving the page are recorded for the reviewer."),
      granted.length === 0
        ? h("p", { class: "muted small-text" }, "No optional monitoring is on.")
        : h(
            "ul",
            { class: "granted" },
            granted.map((scope) =>
              h(
                "li",
                {},
                h("span", {}, scopeWords(scope).replace(/ \(.*\)$/, ""), " is on."),
                h(
                  "button",
                  { type: "button", class: "small", "data-testid": `withdraw-${scope}`, onclick: (e: Event) => void this.withdraw(scope, e.currentTarget as HTMLButtonElement) },
                  "Withdraw consent",
                ),
              ),
            ),
          ),
    );
  }

  private async withdraw(scope: keyof ConsentScopes, button: HTMLButtonElement): Promise<void> {
    button.disabled = true;
    try {
      await this.api.withdraw([scope]);
      this.capture.setScopes({ [scope]: false });
      if (scope === "face_continuity") this.stopFace();
      this.scopes = { ...this.scopes, [scope]: false };
      forgetScope(this.api.sessionId, this.scopes);
      this.renderScopes();
      this.say(`Consent withdrawn: ${scopeWords(scope).replace(/ \(.*\)$/, "")} has stopped.`);
      this.scopeList.querySelector<HTMLElement>("button")?.focus();
    } catch (err) {
      button.disabled = false;
      if (err instanceof ApiError && err.isAuth) return this.end(() => authProblem(err));
      this.say(`Withdrawal failed: ${err instanceof ApiError ? err.message : String(err)}. Try again.`);
    }
  }

  // ---- time ------------------------------------------------------------------------------

  private remaining(): number {
    return this.deadline ? remainingMs(this.deadline, Date.now(), this.api.clock.ms) : Number.POSITIVE_INFINITY;
  }

  private tick(): void {
    if (this.done) return;
    const ms = this.remaining();
    if (!Number.isFinite(ms)) {
      this.timer.textContent = "—";
      return;
    }
    this.timer.textContent = formatRemaining(ms);
    this.timerBox.setAttribute("aria-label", spokenRemaining(ms));
    this.timerBox.dataset.level = ms <= 2 * 60_000 ? "urgent" : ms <= 10 * 60_000 ? "soon" : "ok";
    const warn = dueWarning(ms, this.warned);
    if (warn !== null) this.say(`${warn} minutes left. Your work is submitted automatically when the time is up.`, true);
    if (ms <= 0) void this.submit(true);
  }

  private async refresh(): Promise<void> {
    if (this.done) return;
    let next: Workspace;
    try {
      next = await this.api.workspace();
    } catch (err) {
      if (err instanceof ApiError && err.isAuth) this.end(() => authProblem(err));
      return; // a failed refresh changes nothing; the next one tries again
    }
    if (next.status === "submitted" || next.status === "expired") {
      if (!this.submitting) this.end(() => confirmation("ended"));
      return;
    }
    const moved = extensionMinutes(this.deadline, next.deadline);
    if (next.deadline) this.deadline = next.deadline;
    this.ws = { ...this.ws, ...next, assessment: this.ws.assessment };
    if (moved > 0) {
      resetWarnings(this.remaining(), this.warned);
      const until = new Date(Date.parse(next.deadline!)).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      this.extra.textContent = `extra time granted: +${moved} min`;
      this.extra.dataset.fresh = "true";
      this.say(`Extra time granted: ${moved} more minutes. The new end is ${until}.`, true);
      this.tick();
    } else if (next.extra_time_minutes && !this.extra.textContent) {
      this.extra.textContent = `includes ${next.extra_time_minutes} min extra time`;
    }
  }

  // ---- connection ------------------------------------------------------------------------

  private onStatus(s: CaptureStatus): void {
    this.conn.dataset.state = s.state;
    this.conn.replaceChildren(h("span", { class: "dot", "aria-hidden": "true" }), h("span", {}, connectionText(s)));
    if (s.state !== this.lastState) {
      if (this.lastState !== null) this.say(connectionNews(s));
      this.lastState = s.state;
      if (s.state === "stopped" && s.problem?.status === 409) void this.refresh();
      if (s.state === "stopped" && (s.problem?.status === 401 || s.problem?.status === 403)) {
        const p = s.problem;
        this.end(() => authProblem(new ApiError(p.status, p.code, p.message)));
      }
    }
    if (s.storageError && this.persistent) {
      this.alert.textContent = "Your work can no longer be stored on this device. Stay online and do not reload until you submit.";
    }
  }

  private say(text: string, urgent = false): void {
    // Re-set so the same words twice are announced twice.
    this.live.setAttribute("aria-live", urgent ? "assertive" : "polite");
    this.live.textContent = "";
    window.setTimeout(() => (this.live.textContent = text), 50);
  }

  // ---- submission ------------------------------------------------------------------------

  private confirmSubmit(): void {
    if (this.submitting || this.done) return;
    const fileCount = this.editor.paths().length;
    const cancel = h("button", { type: "button", "data-testid": "submit-cancel" }, "Keep working");
    const ok = h("button", { type: "button", class: "primary", "data-testid": "submit-confirm" }, "Submit now");
    cancel.addEventListener("click", () => this.dialog.close());
    ok.addEventListener("click", () => {
      this.dialog.close();
      void this.submit(false);
    });
    this.dialog.replaceChildren(
      h("h2", { id: "confirm-h" }, "Submit your work?"),
      h("p", {}, `Your ${fileCount} file${fileCount === 1 ? "" : "s"} will be submitted as they are now. You cannot edit after submitting.`),
      h("div", { class: "row end" }, cancel, ok),
    );
    this.dialog.showModal();
    cancel.focus();
  }

  /** "Run tests": everything saved first (the server runs what it has), then the run, polled. */
  private async runTests(): Promise<void> {
    if (this.running || this.done) return;
    this.running = true;
    this.runButton.disabled = true;
    this.runStatus.textContent = "Saving your work…";
    try {
      await this.capture.flush();
      let run = await this.api.requestRun();
      this.runStatus.textContent = "Queued…";
      while (run.status !== "done" && !this.done) {
        await sleep(RUN_POLL_MS);
        run = await this.api.run(run.run_id);
        this.runStatus.textContent = run.status === "running" ? "Running the tests…" : "Queued…";
        if (run.live_output) this.showLive(run.live_output);
      }
      this.showRun(run);
    } catch (err) {
      this.runStatus.textContent =
        err instanceof ApiError && err.code === "run_in_progress"
          ? "A run is already in progress; its result will show here."
          : err instanceof ApiError && err.code === "runs_unavailable"
            ? "This assessment has no tests the server can run."
            : `The tests could not be run: ${err instanceof ApiError ? err.message : String(err)}`;
    } finally {
      this.running = false;
      this.runButton.disabled = this.done;
    }
  }

  /** The output of the run in progress, as it comes. */
  private showLive(output: string): void {
    let pre = this.runResults.querySelector<HTMLElement>("pre.live");
    if (!pre) {
      pre = h("pre", { class: "live", "data-testid": "run-live", "aria-label": "Output so far" });
      this.runResults.replaceChildren(pre);
    }
    pre.textContent = output;
    pre.scrollTop = pre.scrollHeight;
  }

  private showRun(run: RunStatus): void {
    const r = run.result;
    if (!r) return;
    const ending =
      r.ending.kind === "timed_out"
        ? " The run took too long and was stopped."
        : r.ending.kind === "output_limit"
          ? " The run printed too much and was stopped."
          : r.ending.kind === "signalled"
            ? ` The run was killed (signal ${r.ending.signal ?? "?"}), e.g. for using too much memory or CPU time.`
            : r.ending.kind === "sandbox_error"
              ? " The server could not run the tests; try again."
              : "";
    const counts = r.tests.length > 0 ? `${run.passed ?? 0} of ${run.total ?? 0} tests passed.` : `No test results${r.results_error ? ` (${r.results_error})` : ""}.`;
    this.runStatus.textContent = `${counts}${ending} (${(r.duration_ms / 1000).toFixed(1)} s)`;
    const list = h(
      "ul",
      { class: "tests", "aria-label": "Test results" },
      r.tests.map((t) =>
        h(
          "li",
          { class: t.passed ? "pass" : "fail" },
          h("span", { class: "mark", "aria-hidden": "true" }, t.passed ? "✓" : "✗"),
          h("span", { class: "sr-only" }, t.passed ? "Passed: " : "Failed: "),
          h("span", { class: "test-name" }, t.name),
          !t.passed && t.message ? h("pre", { class: "test-msg" }, t.message) : null,
        ),
      ),
    );
    const output = h(
      "details",
      { class: "output" },
      h("summary", {}, r.output_truncated ? "Output (first 64 KiB)" : "Output"),
      h("pre", { "aria-label": "Test output" }, r.output),
    );
    this.runResults.replaceChildren(list, output);
  }

  private async submit(auto: boolean): Promise<void> {
    if (this.submitting || this.done) return;
    this.submitting = true;
    this.editor.setEditable(false);
    this.submitButton.disabled = true;
    this.say(auto ? "Time is up. Submitting your work…" : "Submitting your work…", true);
    const waiting = window.setTimeout(
      () => (this.alert.textContent = "Waiting for the connection to send your last changes. Your work is kept on this device; keep this page open."),
      3000,
    );
    // Everything captured must be acknowledged first: the server rebuilds the work from the log.
    // At the deadline, the server's expiry stands: do not wait for ever for a connection.
    const flushed = this.capture.flush();
    await (auto ? Promise.race([flushed, sleep(20_000)]) : flushed);
    window.clearTimeout(waiting);
    const files = [...this.editor.files()].map(([path, content]) => ({ path, content }));
    try {
      await this.api.submit(files);
      this.end(() => confirmation(auto ? "timeup" : "submitted", `${files.length} file${files.length === 1 ? "" : "s"} received.`));
    } catch (err) {
      if (err instanceof ApiError && err.isFinished) return this.end(() => confirmation(auto ? "timeup" : "ended"));
      if (err instanceof ApiError && err.isAuth) return this.end(() => authProblem(err));
      this.submitting = false;
      this.submitButton.disabled = false;
      if (!auto) this.editor.setEditable(true);
      this.alert.textContent = `Your work was not submitted: ${err instanceof ApiError ? err.message : String(err)} Your work is kept; try again.`;
      if (auto) window.setTimeout(() => void this.submit(true), 5000);
    }
  }

  /** Leaves the workspace: timers, listeners and sending stop (the queue stays stored). */
  private end(next: () => void): void {
    if (this.done) return;
    this.done = true;
    for (const t of this.timers) window.clearInterval(t);
    this.stopFace();
    this.detach();
    this.capture.close();
    this.editor.view.destroy();
    next();
  }
}

