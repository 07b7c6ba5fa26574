import { test } from "node:test";
import assert from "node:assert/strict";
import { sessionIdFromPath, storageKey, takeToken, tokenFromFragment, type TokenPlace } from "../src/token";

const ID = "5e55a000-0000-4000-8000-000000000002";

function place(hash: string, stored: Record<string, string> = {}) {
  const replaced: string[] = [];
  const storage = new Map(Object.entries(stored));
  const p: TokenPlace = {
    location: { hash, pathname: `/take/${ID}`, search: "" },
    history: { replaceState: (_d, _u, url) => replaced.push(url ?? "") },
    storage: { getItem: (k) => storage.get(k) ?? null, setItem: (k, v) => void storage.set(k, v) },
  };
  return { p, replaced, storage };
}

test("the token is read from the fragment, among other parameters, and only when well formed", () => {
  assert.equal(tokenFromFragment("#token=cst_abcdefgh12345"), "cst_abcdefgh12345");
  assert.equal(tokenFromFragment("#lang=en&token=cst_abcdefgh12345"), "cst_abcdefgh12345");
  assert.equal(tokenFromFragment("#token=clk_abcdefgh12345"), null, "a staff key is not a session token");
  assert.equal(tokenFromFragment("#token=cst_<script>"), null);
  assert.equal(tokenFromFragment("#token=%E0%A4%A"), null, "bad percent-encoding");
  assert.equal(tokenFromFragment(""), null);
  assert.equal(tokenFromFragment("#tokens=cst_abcdefgh12345"), null);
});

test("a token in the link is moved to the tab's storage and removed from the address bar", () => {
  const { p, replaced, storage } = place("#token=cst_abcdefgh12345");
  assert.equal(takeToken(ID, p), "cst_abcdefgh12345");
  assert.deepEqual(replaced, [`/take/${ID}`]);
  assert.equal(storage.get(storageKey(ID)), "cst_abcdefgh12345");
});

test("a reload without a fragment uses the stored token; a malformed fragment is removed too", () => {
  const reload = place("", { [storageKey(ID)]: "cst_abcdefgh12345" });
  assert.equal(takeToken(ID, reload.p), "cst_abcdefgh12345");
  assert.deepEqual(reload.replaced, [], "nothing to remove");
  const bad = place("#token=oops");
  assert.equal(takeToken(ID, bad.p), null);
  assert.deepEqual(bad.replaced, [`/take/${ID}`]);
  const other = place("", { [storageKey("another")]: "cst_abcdefgh12345" });
  assert.equal(takeToken(ID, other.p), null, "a token is kept per session");
});

test("the session id comes from the page's path", () => {
  assert.equal(sessionIdFromPath(`/take/${ID}`), ID);
  assert.equal(sessionIdFromPath(`/take/${ID.toUpperCase()}/`), ID);
  assert.equal(sessionIdFromPath("/take/nope"), null);
  assert.equal(sessionIdFromPath(`/review/sessions/${ID}`), null);
});
