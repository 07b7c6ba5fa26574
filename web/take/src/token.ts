/**
 * The candidate's session token travels only in the invitation link's fragment
 * (`/take/{session_id}#token=cst_...`), which browsers never send to a server. The page moves it
 * to `sessionStorage` (this tab only, gone when the tab closes) and takes it out of the address
 * bar, so it is not left in history, bookmarks or a screenshot of the page.
 */

/** The token in a fragment (`#token=cst_...`, possibly among other `&` parameters), or `null`. */
export function tokenFromFragment(hash: string): string | null {
  const raw = hash.startsWith("#") ? hash.slice(1) : hash;
  if (!raw) return null;
  for (const part of raw.split("&")) {
    const eq = part.indexOf("=");
    if (eq < 0 || part.slice(0, eq) !== "token") continue;
    let value: string;
    try {
      value = decodeURIComponent(part.slice(eq + 1));
    } catch {
      return null;
    }
    return isPlausibleToken(value) ? value : null;
  }
  return null;
}

/** A candidate session token's shape: `cst_` and URL-safe characters, no spaces. */
export function isPlausibleToken(value: string): boolean {
  return /^cst_[A-Za-z0-9_\-.~]{8,512}$/.test(value);
}

/** The session id in the page's path (`/take/{session_id}`), or `null`. */
export function sessionIdFromPath(pathname: string): string | null {
  const m = /^\/take\/([0-9a-fA-F-]{36})\/?$/.exec(pathname);
  return m ? m[1]!.toLowerCase() : null;
}

/** What `takeToken` needs from the browser (a subset, for tests). */
export interface TokenPlace {
  location: { hash: string; pathname: string; search: string };
  history: { replaceState(data: unknown, unused: string, url?: string): void };
  storage: { getItem(key: string): string | null; setItem(key: string, value: string): void };
}

export function storageKey(sessionId: string): string {
  return `clarity-take-token:${sessionId}`;
}

/**
 * The token for `sessionId`: from the fragment if there is one (stored, then removed from the
 * address bar), else from the tab's storage (a reload). `null` when neither has one.
 */
export function takeToken(sessionId: string, place: TokenPlace): string | null {
  const { location } = place;
  const fromLink = tokenFromFragment(location.hash);
  if (location.hash) {
    // Removed whatever it held: a malformed token must not stay in the address bar either.
    place.history.replaceState(null, "", location.pathname + location.search);
  }
  if (fromLink) {
    try {
      place.storage.setItem(storageKey(sessionId), fromLink);
    } catch {
      // Storage refused (a privacy mode): the token still works for this page's lifetime.
    }
    return fromLink;
  }
  try {
    const stored = place.storage.getItem(storageKey(sessionId));
    return stored && isPlausibleToken(stored) ? stored : null;
  } catch {
    return null;
  }
}
