/**
 * The candidate's test-taking page (`/take/{session_id}#token=cst_...`): welcome, monitoring
 * notice and consent, start, the workspace, submission. One `<main>`; each screen replaces its
 * content and moves the focus to the screen's heading.
 */

import { Api, ApiError, monitoringList, scopeWords, type ConsentScopes, type Notice, type Workspace } from "./api";
import { h, sleep } from "./dom";
import { paragraphs } from "./markdown";
import { sessionIdFromPath, takeToken } from "./token";
import { openWorkspace } from "./workspace";

const root = document.getElementById("app") as HTMLElement;

/** Replaces the page's content with a screen whose first heading takes the focus. */
export function show(screen: string, ...content: HTMLElement[]): void {
  root.dataset.screen = screen;
  root.className = `screen screen-${screen}`;
  root.replaceChildren(...content);
  const heading = root.querySelector("h1");
  if (heading) {
    heading.tabIndex = -1;
    heading.focus({ preventScroll: false });
  }
  document.title = `${heading?.textContent ?? "Assessment"} · Clarity`;
}

function card(...content: Array<HTMLElement | null>): HTMLElement {
  return h("div", { class: "card" }, h("p", { class: "brand", "aria-hidden": "true" }, "Clarity"), ...content);
}

/** A page that only explains (errors, the end). */
export function message(screen: string, title: string, ...lines: string[]): void {
  show(screen, card(h("h1", {}, title), ...lines.map((l) => h("p", {}, l))));
}

/** The token no longer works. */
export function authProblem(err: ApiError): void {
  const text: Record<string, string> = {
    session_token_expired: "The link to this assessment has expired.",
    session_token_revoked: "The link to this assessment was withdrawn by the organiser.",
  };
  message(
    "auth",
    "This link no longer works",
    text[err.code] ?? "This assessment link is not valid, or it was opened without its full address.",
    "Please contact the person who invited you to ask for a new link. Any work already sent is kept.",
  );
}

/** The end: the work was received, or the session had ended already. */
export function confirmation(kind: "submitted" | "timeup" | "ended", detail?: string): void {
  const titles = {
    submitted: "Your work was submitted",
    timeup: "Time is up — your work was submitted",
    ended: "This assessment has ended",
  };
  const text = {
    submitted: "Thank you. The team that invited you will review your work and contact you about the next steps.",
    timeup: "The time limit was reached while the page was open, so your work was submitted automatically. Thank you.",
    ended: "This session is closed: it was submitted, or its time limit passed. Whatever you had sent before the end is kept.",
  };
  show(
    "confirmation",
    card(
      h("h1", {}, titles[kind]),
      h("p", {}, text[kind]),
      detail ? h("p", { class: "muted" }, detail) : null,
      h("p", { class: "muted" }, "You can close this tab."),
    ),
  );
}

/** Shows an unexpected failure with a way to try again. */
export function failure(err: unknown, retry: () => void): void {
  if (err instanceof ApiError && err.isAuth) return authProblem(err);
  const text = err instanceof ApiError ? err.message : "Something went wrong on this page.";
  show(
    "error",
    card(
      h("h1", {}, "Something went wrong"),
      h("p", { role: "alert" }, text),
      h("p", {}, "Your work is kept. Try again; if the problem stays, contact the person who invited you."),
      h("div", { class: "actions" }, h("button", { type: "button", class: "primary", onclick: retry }, "Try again")),
    ),
  );
}

function formatName(format: string | undefined): string {
  return format === "live" ? "Live session (an interviewer joins you)" : format === "take_home" ? "Take-home" : format ?? "—";
}

function minutes(n: number): string {
  if (n < 60 || n % 60) return `${n} minutes`;
  return n === 60 ? "1 hour" : `${n / 60} hours`;
}

function welcome(api: Api, ws: Workspace): void {
  const a = ws.assessment;
  if (!a) return message("error", "This assessment is not available", "The assessment could not be loaded. Contact the person who invited you.");
  show(
    "welcome",
    card(
      h("h1", {}, a.title),
      h("p", { class: "lead" }, "Welcome. Read the details below, then continue to the monitoring notice."),
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, "Time limit"),
        h("dd", { "data-testid": "time-limit" }, minutes(a.time_limit_minutes)),
        h("dt", {}, "Format"),
        h("dd", {}, formatName(a.format)),
        h("dt", {}, "Tasks"),
        h("dd", {}, String(a.tasks.length)),
      ),
      h("h2", {}, "What is monitored"),
      h("ul", { class: "monitoring" }, monitoringList(a).map((m) => h("li", {}, m))),
      h(
        "p",
        {},
        "Monitoring only produces evidence for a human reviewer; nothing rejects you automatically. The clock starts only when you press Start.",
      ),
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", class: "primary", onclick: () => void noticeScreen(api, ws) }, "Continue to the monitoring notice"),
      ),
    ),
  );
}

async function noticeScreen(api: Api, ws: Workspace): Promise<void> {
  show("loading", card(h("h1", {}, "Loading the monitoring notice…")));
  let notice: Notice;
  try {
    notice = await api.notice();
  } catch (err) {
    return failure(err, () => void noticeScreen(api, ws));
  }
  const boxes = new Map<string, HTMLInputElement>();
  const scopeItems = notice.optional_scopes.map((scope) => {
    const input = h("input", { type: "checkbox", id: `scope-${scope}`, name: scope, "data-testid": `scope-${scope}` });
    boxes.set(scope, input);
    return h("div", { class: "check" }, input, h("label", { for: `scope-${scope}` }, `I agree to: ${scopeWords(scope)}`));
  });
  const ack = h("input", { type: "checkbox", id: "ack", required: true, "data-testid": "ack" });
  const error = h("p", { class: "error", role: "alert", id: "consent-error" });
  const button = h("button", { type: "submit", class: "primary", "data-testid": "consent" }, "I consent, continue");
  const form = h(
    "form",
    {
      novalidate: true,
      onsubmit: async (e: Event) => {
        e.preventDefault();
        if (!ack.checked) {
          error.textContent = "Please confirm that you have read the notice.";
          ack.setAttribute("aria-invalid", "true");
          ack.focus();
          return;
        }
        const scopes: ConsentScopes = {
          keystroke_dynamics: boxes.get("keystroke_dynamics")?.checked ?? false,
          face_continuity: boxes.get("face_continuity")?.checked ?? false,
        };
        button.disabled = true;
        error.textContent = "";
        try {
          const next = await api.consent(notice, scopes);
          rememberScopes(ws.session_id, scopes);
          startScreen(api, { ...ws, ...next, assessment: next.assessment ?? ws.assessment });
        } catch (err) {
          button.disabled = false;
          if (err instanceof ApiError && err.isAuth) return authProblem(err);
          if (err instanceof ApiError && err.code === "consent_already_recorded") return void boot();
          error.textContent = err instanceof ApiError ? err.message : String(err);
        }
      },
    },
    scopeItems.length
      ? h("fieldset", {}, h("legend", {}, "Optional monitoring (you can say no and still take the assessment)"), scopeItems)
      : null,
    h("div", { class: "check ack" }, ack, h("label", { for: "ack" }, "I have read the monitoring notice")),
    error,
    h("div", { class: "actions" }, button),
  );
  show(
    "notice",
    card(
      h("h1", {}, notice.title || "Monitoring notice"),
      h("div", { class: "notice-body", "data-testid": "notice-body", tabindex: "0", role: "region", "aria-label": "Monitoring notice text" }, paragraphs(notice.body).map((p) => h("p", {}, p))),
      form,
    ),
  );
}

function startScreen(api: Api, ws: Workspace): void {
  const a = ws.assessment;
  const error = h("p", { class: "error", role: "alert" });
  const button = h(
    "button",
    {
      type: "button",
      class: "primary",
      "data-testid": "start",
      onclick: async () => {
        button.disabled = true;
        error.textContent = "";
        try {
          const started = await api.start();
          await openWorkspace(api, { ...ws, ...started, assessment: started.assessment ?? ws.assessment }, scopesOf(ws));
        } catch (err) {
          button.disabled = false;
          if (err instanceof ApiError && err.isAuth) return authProblem(err);
          if (err instanceof ApiError && err.code === "session_already_started") return void boot();
          if (err instanceof ApiError && err.isFinished) return confirmation("ended");
          error.textContent = err instanceof ApiError ? err.message : String(err);
        }
      },
    },
    "Start the assessment",
  );
  show(
    "start",
    card(
      h("h1", {}, "Ready to start"),
      h(
        "p",
        {},
        a ? `You will have ${minutes(a.time_limit_minutes)}. ` : "",
        "The clock starts when you press Start and keeps running if you close the page. Your work is saved as you type; there is no save button.",
      ),
      h(
        "ul",
        {},
        h("li", {}, "Use one tab: the assessment cannot be open in two tabs at once."),
        h("li", {}, "If your connection drops, keep working: your work is kept on this device and sent when you are back online."),
        h("li", {}, "In the editor, Tab indents. Press Esc, then Tab, to move on from the editor."),
      ),
      error,
      h("div", { class: "actions" }, button),
    ),
  );
}

function scopesKey(sessionId: string): string {
  return `clarity-take-scopes:${sessionId}`;
}

function rememberScopes(sessionId: string, scopes: ConsentScopes): void {
  try {
    sessionStorage.setItem(scopesKey(sessionId), JSON.stringify(scopes));
  } catch {
    /* not kept: the server's answer is used on the next load */
  }
}

/** The consent scopes: the server's when it reports them, else what this tab recorded, else none. */
export function scopesOf(ws: Workspace): ConsentScopes {
  const fromServer = ws.consent?.scopes;
  let local: Partial<ConsentScopes> = {};
  try {
    local = JSON.parse(sessionStorage.getItem(scopesKey(ws.session_id)) ?? "{}") as Partial<ConsentScopes>;
  } catch {
    local = {};
  }
  const src = fromServer ?? local;
  return { keystroke_dynamics: src.keystroke_dynamics === true, face_continuity: src.face_continuity === true };
}

export function forgetScope(sessionId: string, scopes: ConsentScopes): void {
  rememberScopes(sessionId, scopes);
}

/** Loads the session and shows the screen its state calls for. */
export async function boot(): Promise<void> {
  const sessionId = sessionIdFromPath(location.pathname);
  if (!sessionId) return message("error", "This address is not an assessment link", "Open the link from your invitation email.");
  const token = takeToken(sessionId, { location, history, storage: sessionStorage });
  if (!token) {
    return message(
      "auth",
      "Open your invitation link",
      "This page needs the full link from your invitation email (the part after “#” identifies you, and is never sent to the server as part of the address).",
      "Open the link again from the email, in this browser.",
    );
  }
  const api = new Api(sessionId, token);
  show("loading", card(h("h1", {}, "Loading your assessment…")));
  let ws: Workspace;
  for (let attempt = 0; ; attempt++) {
    try {
      ws = await api.workspace();
      break;
    } catch (err) {
      if (err instanceof ApiError && err.status === 0 && attempt < 5) {
        await sleep(1000 * (attempt + 1));
        continue;
      }
      if (err instanceof ApiError && err.status === 404) {
        return message("error", "Assessment not found", "This assessment does not exist or the link is incomplete. Contact the person who invited you.");
      }
      return failure(err, () => void boot());
    }
  }
  switch (ws.status) {
    case "invited":
    case "new":
      return welcome(api, ws);
    case "consented":
      return startScreen(api, ws);
    case "in_progress":
      return openWorkspace(api, ws, scopesOf(ws));
    case "submitted":
    case "expired":
      return confirmation("ended");
    default:
      return message("error", "This assessment is not available", `Its state is “${ws.status}”. Contact the person who invited you.`);
  }
}
