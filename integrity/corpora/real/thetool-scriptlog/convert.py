#!/usr/bin/env python3
"""Convert the ScriptLog keystroke logs shipped with THEtool (github.com/mulasik/wta, MIT
licence) into Clarity's labelled-session corpus format (see ../../FORMAT.md).

Input: the IDFX (ScriptLog XML) files under ``data/THEcorpus/`` and ``data/video_corpus/``
of a checkout of mulasik/wta (pass the checkout, or any directory holding the .idfx files,
as ``--src``). Output: ``<out>/sessions.jsonl``, one ``honest`` session per IDFX file.

What is real and what is not (details in README.md):
- real: every key press the writer made, its key, and its key-down time (ScriptLog,
  Windows, 1 ms resolution), the text edits it caused (replayed on the document, checked
  against the final texts shipped with the corpus when ``--check`` is given), caret jumps
  (inferred from the logged caret position of the next key);
- not real: key-up times. ScriptLog wrote ``endTime = startTime + 5`` for every key, so
  the logs carry no hold times. By default ``up_ms`` is left out (the format's "key-up never
  seen"); ``--key-up synth`` draws holds from a fixed log-normal instead (seeded);
  ``--key-up source`` copies ScriptLog's constant 5 ms (only to show that artefact).
- modifier keys (Shift, AltGr, Ctrl) were not logged by ScriptLog and are not synthesised.

Python 3.11 standard library only; output is byte-for-byte deterministic for the same input
and arguments.
"""
from __future__ import annotations

import argparse
import datetime as dt
import difflib
import hashlib
import json
import math
import random
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

FILE = "answer.txt"
FILLER = "\u2591"  # stands for text that reached the document without a logged key
PASTE_MIN = 20  # unlogged insertions this long are labelled 'paste', shorter ones 'other'
ID_PREFIX = "thetool-scriptlog"

NAV_KEYS = {
    "VK_LEFT", "VK_RIGHT", "VK_UP", "VK_DOWN", "VK_HOME", "VK_END", "VK_PRIOR", "VK_NEXT",
}
MOD_KEYS = {
    "VK_SHIFT", "VK_LSHIFT", "VK_RSHIFT", "VK_CONTROL", "VK_LCONTROL", "VK_RCONTROL",
    "VK_MENU", "VK_LMENU", "VK_RMENU", "VK_CAPITAL", "VK_LWIN", "VK_RWIN",
}
# Which sub-corpus a file comes from -> profile (the task the writers did).
PROFILES = {
    "THEcorpus": "composition_blog_post_de",
    "video_corpus": "composition_video_comment_de",
}
_CTRL_REF = re.compile(r"&#x([0-9a-fA-F]+);|&#([0-9]+);")


def _sanitize(raw: bytes) -> bytes:
    """IDFX files hold XML-1.0-illegal character references (&#x8; for backspace) and,
    in one file, stray bytes before the XML declaration. Map control characters to the
    private-use area (U+E000 + code) so the parser accepts them."""
    text = raw.decode("utf-8-sig", errors="replace")
    start = text.find("<?xml")
    if start < 0:
        start = text.find("<log")
    text = text[max(start, 0):]

    def fix(m: re.Match) -> str:
        code = int(m.group(1), 16) if m.group(1) else int(m.group(2))
        if code in (9, 10, 13) or code >= 32:
            return m.group(0)
        return "&#x%X;" % (0xE000 + code)

    return _CTRL_REF.sub(fix, text).encode("utf-8")


def utf16_len(s: str) -> int:
    return sum(2 if ord(c) > 0xFFFF else 1 for c in s)


def key_class(vk: str, value: str) -> str:
    if vk == "VK_BACK":
        return "backspace"
    if vk == "VK_DELETE":
        return "delete"
    if vk == "VK_RETURN":
        return "enter"
    if vk in ("VK_SPACE", "VK_TAB"):
        return "whitespace"
    if vk in NAV_KEYS:
        return "navigation"
    if vk in MOD_KEYS:
        return "modifier"
    if len(value) == 1:
        c = value
        if c.isalpha():
            return "letter"
        if c.isdigit():
            return "digit"
        if c.isspace():
            return "whitespace"
        if c.isprintable():
            return "punctuation"
    if re.fullmatch(r"VK_[A-Z]", vk):
        return "letter"
    if re.fullmatch(r"VK_[0-9]|VK_NUMPAD[0-9]", vk):
        return "digit"
    if vk.startswith("VK_OEM"):
        return "punctuation"
    return "other"


def typed_text(vk: str, value: str) -> str:
    """The text a key press inserts when no selection is replaced ('' for none)."""
    if vk == "VK_RETURN":
        return "\n"
    if vk == "VK_TAB":
        return "\t"
    if vk in NAV_KEYS or vk in MOD_KEYS or vk in ("VK_BACK", "VK_DELETE"):
        return ""
    if len(value) == 1 and (value.isprintable() or value == " ") and not (0xE000 <= ord(value) < 0xE020):
        return value
    return ""


def parse_created(value: str | None) -> dt.datetime | None:
    """'22/03/01 16:53:20.637' (yy/mm/dd, the recording PC's local time)."""
    if not value:
        return None
    for fmt in ("%y/%m/%d %H:%M:%S.%f", "%y/%m/%d %H:%M:%S"):
        try:
            return dt.datetime.strptime(value.strip(), fmt)
        except ValueError:
            pass
    return None


def iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


def synth_hold(rng: random.Random) -> float:
    # Log-normal, median 95 ms, sigma 0.30, clipped to [35, 300] ms: a typical hold
    # distribution for touch typists on a desktop keyboard. NOT from this data.
    return float(min(300, max(35, round(math.exp(rng.gauss(math.log(95.0), 0.30))))))


def convert_file(path: Path, sub: str, key_up: str, seed: int, stats: dict) -> tuple[dict, str]:
    root = ET.fromstring(_sanitize(path.read_bytes()))
    meta = {e.findtext("key"): e.findtext("value") for e in root.findall("./meta/entry")}
    events = root.findall("./event")

    created = parse_created(meta.get("__LogCreationDate")) or dt.datetime(2000, 1, 1)
    rel0 = meta.get("__LogRelativeCreationDate")
    first_key = next((int(e.find("./part[@type='winlog']/startTime").text) for e in events
                      if e.get("type") == "keyboard"), 0)
    t0 = int(rel0) if rel0 and rel0.isdigit() and int(rel0) <= first_key else first_key - 1000

    sid = f"{ID_PREFIX}-{sub}-{path.stem}"
    rng = random.Random(int(hashlib.sha256(f"{seed}:{sid}".encode()).hexdigest()[:16], 16))

    text = ""
    caret = 0
    i = 0
    # A leading 'insert' event is the document as it stood when logging started (the
    # writer continuing an earlier session): it becomes the starter file.
    if events and events[0].get("type") == "insert":
        part = events[0].find("./part[@type='wordlog']")
        before = part.findtext("before") or ""
        after = part.findtext("after") or ""
        text = before + after
        caret = len(before)
        i = 1
    starter = text

    out: list[dict] = []
    last_ms = 0

    def emit(ms: float, data: dict) -> None:
        out.append({"ms": ms, "data": data})

    def pos16(p: int) -> int:
        return utf16_len(text[:p])

    def apply(start: int, end: int, new: str, ms: float, origin: str) -> None:
        nonlocal text, caret
        start = max(0, min(start, len(text)))
        end = max(start, min(end, len(text)))
        if end == start and not new:
            return
        emit(ms, {"type": "edit", "file": FILE, "position": pos16(start),
                  "deleted": utf16_len(text[start:end]), "inserted": new, "origin": origin})
        text = text[:start] + new + text[end:]
        caret = start + len(new)

    while i < len(events):
        ev = events[i]
        kind = ev.get("type")
        if kind == "keyboard":
            wl = ev.find("./part[@type='wordlog']")
            kl = ev.find("./part[@type='winlog']")
            vk = kl.findtext("key") or "NONE"
            value = kl.findtext("value") or ""
            down = int(kl.findtext("startTime")) - t0
            up_src = int(kl.findtext("endTime") or kl.findtext("startTime")) - t0
            down = max(down, last_ms)
            last_prev = last_ms
            last_ms = down
            logged = int(wl.findtext("position") or caret)
            # ScriptLog's documentLength is the length before the key plus one. A longer
            # document than the replay means text arrived without a logged key (pasted
            # title or quotation, or a short autocorrection). Its content was not logged:
            # it is filled with FILLER characters, ending at the caret of this key.
            dl = wl.findtext("documentLength")
            if dl is not None and dl.strip().isdigit():
                missing = int(dl) - 1 - len(text)
                if missing > 0:
                    at = max(0, min(logged - missing, len(text)))
                    apply(at, at, FILLER * missing, (last_prev + down) // 2,
                          "paste" if missing >= PASTE_MIN else "other")
                    stats["unlogged_chars"] += missing
                    stats["other_edits"] += 1
            if logged > len(text):
                stats["position_clamped"] += 1
                logged = len(text)
            if logged != caret:
                emit(down, {"type": "cursor", "file": FILE, "position": pos16(logged),
                            "selection_end": None})
                caret = logged
            ks = {"type": "keystroke", "down_ms": float(down)}
            if key_up == "synth":
                ks["up_ms"] = float(down) + synth_hold(rng)
            elif key_up == "source":
                ks["up_ms"] = float(max(up_src, down))
            ks["key_class"] = key_class(vk, value)
            emit(down, ks)
            stats["keys"] += 1
            nxt = events[i + 1] if i + 1 < len(events) else None
            if nxt is not None and nxt.get("type") == "replacement":
                # The key replaced a selection (typing over it, or Backspace/Delete on it).
                rp = nxt.find("./part[@type='wordlog']")
                apply(int(rp.findtext("start")), int(rp.findtext("end")),
                      rp.findtext("newtext") or "", down, "typed")
                i += 2
                continue
            if vk == "VK_BACK":
                if caret > 0:
                    apply(caret - 1, caret, "", down, "typed")
            elif vk == "VK_DELETE":
                if caret < len(text):
                    apply(caret, caret + 1, "", down, "typed")
            else:
                ins = typed_text(vk, value)
                if ins:
                    apply(caret, caret, ins, down, "typed")
            i += 1
            continue
        # Not caused by a logged key press (cut, spell-checker, ...): an 'other' edit.
        wl = ev.find("./part[@type='wordlog']")
        if kind == "replacement" and wl is not None:
            apply(int(wl.findtext("start")), int(wl.findtext("end")),
                  wl.findtext("newtext") or "", last_ms, "other")
            stats["other_edits"] += 1
        elif kind == "insert" and wl is not None:
            p = int(wl.findtext("position") or caret)
            apply(p, p, wl.findtext("after") or "", last_ms, "other")
            stats["other_edits"] += 1
        i += 1

    events_json = []
    for n, e in enumerate(out, 1):
        ts = created + dt.timedelta(milliseconds=e["ms"])
        events_json.append({"seq": n, "ts": iso(ts), "data": e["data"]})
    session = {
        "id": sid,
        "class": "honest",
        "profile": PROFILES.get(sub, "composition_de"),
        "assessment": "none",
        "source": None,
        "consent": {"keystroke_dynamics": True, "face_continuity": True},
        "started_at": iso(created),
        "starter_files": [{"path": FILE, "content": starter}],
        "events": events_json,
    }
    return session, text


def find_inputs(src: Path) -> list[tuple[str, Path]]:
    found = []
    for p in sorted(src.rglob("*.idfx")):
        sub = next((part for part in p.parts if part in PROFILES), "other")
        found.append((sub, p))
    return found


def final_text_for(path: Path) -> Path | None:
    # data/<corpus>/de/X_il_N.idfx  <->  data/<corpus>/de/txt/X_ft_N.txt
    cand = path.parent / "txt" / path.name.replace("_il_", "_ft_").replace(".idfx", ".txt")
    return cand if cand.exists() else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", required=True, type=Path,
                    help="checkout of github.com/mulasik/wta (or a directory of .idfx files)")
    ap.add_argument("--out", required=True, type=Path, help="output corpus directory")
    ap.add_argument("--key-up", choices=("omit", "synth", "source"), default="omit",
                    help="key-up times: omit (default; the logs have none), synth "
                         "(seeded log-normal holds), source (ScriptLog's constant +5 ms)")
    ap.add_argument("--seed", type=int, default=0, help="seed for --key-up synth")
    ap.add_argument("--check", action="store_true",
                    help="compare each replayed text with the corpus's final text (stderr)")
    args = ap.parse_args(argv)

    inputs = find_inputs(args.src)
    if not inputs:
        print(f"no .idfx files under {args.src}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    totals = {"sessions": 0, "keys": 0, "position_clamped": 0, "other_edits": 0,
              "unlogged_chars": 0}
    with open(args.out / "sessions.jsonl", "w", encoding="utf-8", newline="\n") as fh:
        for sub, path in inputs:
            stats = {"keys": 0, "position_clamped": 0, "other_edits": 0, "unlogged_chars": 0}
            session, final = convert_file(path, sub, args.key_up, args.seed, stats)
            fh.write(json.dumps(session, ensure_ascii=False, separators=(",", ":")) + "\n")
            totals["sessions"] += 1
            for k in stats:
                totals[k] += stats[k]
            if args.check:
                ref = final_text_for(path)
                if ref is not None:
                    want = ref.read_text(encoding="utf-8-sig").replace("\r\n", "\n")
                    ratio = difflib.SequenceMatcher(None, final.strip(), want.strip(),
                                                    autojunk=False).ratio()
                    print(f"{session['id']}: keys={stats['keys']} replay~final={ratio:.4f}",
                          file=sys.stderr)
    print(json.dumps(totals), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
