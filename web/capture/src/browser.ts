/**
 * The page's side: keyboard, focus, visibility and network listeners that feed a [`Capture`].
 * Edits come from the editor's adapter (`codemirror.ts`), not from here.
 */

import type { Capture } from "./capture";

/** Where to listen. */
export interface AttachOptions {
  /**
   * The element whose key presses are captured (the editor's root), listened to in the capture
   * phase so that a key press is numbered before the editor turns it into an edit.
   */
  keyTarget: EventTarget;
  /** The window (`window` by default). */
  window?: Window;
  /** The document (`document` by default). */
  document?: Document;
}

/**
 * Attaches `capture` to the page and returns a function that detaches it. Tab-aways are
 * recorded from the window's focus and the document's visibility (whichever changes first; a
 * second signal of the same change is not recorded twice). On `pagehide` and on becoming hidden
 * the queue is stored and sent with `keepalive` (on `pagehide` also spilled synchronously, as the
 * page may go before storage finishes); `online` retries at once.
 */
export function attach(capture: Capture, options: AttachOptions): () => void {
  const win = options.window ?? window;
  const doc = options.document ?? document;
  let away = doc.visibilityState === "hidden" || !doc.hasFocus();

  const lost = () => {
    if (away) return;
    away = true;
    capture.focusLost();
  };
  const regained = () => {
    if (!away) return;
    away = false;
    capture.focusRegained();
  };
  const onKeyDown = (e: Event) => capture.keyDown(e as KeyboardEvent);
  const onKeyUp = (e: Event) => capture.keyUp(e as KeyboardEvent);
  const onVisibility = () => {
    if (doc.visibilityState === "hidden") {
      lost();
      capture.flushOnHide();
    } else if (doc.hasFocus()) {
      regained();
    }
  };
  const onPageHide = () => capture.flushOnHide(undefined, true);
  const onOnline = () => capture.retryNow();

  const listeners: Array<[EventTarget, string, (e: Event) => void, boolean]> = [
    [options.keyTarget, "keydown", onKeyDown, true],
    // Key-ups anywhere: a key pressed in the editor may come up elsewhere (Tab moves the focus
    // before its key-up); only keys pressed in the editor are open, others are ignored.
    [win, "keyup", onKeyUp, true],
    [win, "blur", lost, false],
    [win, "focus", regained, false],
    [doc, "visibilitychange", onVisibility, false],
    [win, "pagehide", onPageHide, false],
    [win, "online", onOnline, false],
  ];
  for (const [target, type, f, capture] of listeners) target.addEventListener(type, f, { capture });
  return () => {
    for (const [target, type, f, capture] of listeners) target.removeEventListener(type, f, { capture });
  };
}

/**
 * Claims the session for this tab: `true` once no other tab of this browser holds it (the claim
 * lasts until the page goes away), `false` if another still holds it after `waitMs` (a reload
 * waits for the page it replaces to let go). Two tabs capturing one session would number the
 * same `seq` from the same storage: the page should refuse the second tab. `true` where the
 * browser has no Web Locks.
 */
export async function claimSession(
  sessionId: string,
  waitMs = 3000,
  locks: LockManager | undefined = globalThis.navigator?.locks,
): Promise<boolean> {
  if (!locks) return true;
  return new Promise<boolean>((resolve) => {
    locks
      .request(`clarity-capture:${sessionId}`, { signal: AbortSignal.timeout(waitMs) }, () => {
        resolve(true);
        // Held for the page's lifetime: the browser releases it when the page is gone.
        return new Promise<never>(() => {});
      })
      .catch(() => resolve(false));
  });
}
