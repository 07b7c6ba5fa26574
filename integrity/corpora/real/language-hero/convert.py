#!/usr/bin/env python3
"""Convert the Language Hero keylog corpus bundled with the PyPI package
``keylogging-analysis`` 0.0.1 (BSD-3-Clause; data file ``keylogging_analysis/data/
lh_default.csv``) into Clarity's labelled-session corpus format (see ../../FORMAT.md).

Language Hero is a conversational game in which learners of French chat, in writing, with
a bot. The corpus logs the content of the learner's input box after every input event,
with the time of the event (1 ms resolution), plus message sends and bot turns.

One Clarity session = one Language Hero dialogue (``session_id``): every learner message
is typed into one file, ``answer.txt``, one message per line.

What is real and what is not (details in README.md):
- real: the time of every input event, the text each one changed (so the key class:
  letter, digit, punctuation, whitespace, backspace), caret jumps inside a message, the
  pauses between messages (reading the bot's reply, thinking);
- derived: the key class is inferred from the text change (one event = one key press;
  a deletion is recorded as a Backspace press, a multi-character deletion as one
  Backspace on a selection);
- not real: key-up times (none in the data: ``up_ms`` is left out unless ``--key-up
  synth``), and the line break between messages, inserted as an ``other`` edit with no
  key press at the moment the message was sent (the game cleared its input box instead).
- dropped: events that changed nothing, and the game's own clearing of the box on send.

Python 3.11 standard library only; output is byte-for-byte deterministic for the same input
and arguments.
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import io
import json
import math
import random
import sys
import zipfile
from collections import defaultdict
from pathlib import Path

FILE = "answer.txt"
ID_PREFIX = "language-hero"
PROFILE = "chat_l2_french"
DATA_MEMBER = "keylogging_analysis/data/lh_default.csv"
TYPING, SENT = "0", "1"


def utf16_len(s: str) -> int:
    return sum(2 if ord(c) > 0xFFFF else 1 for c in s)


def char_class(c: str) -> str:
    if c == "\n":
        return "enter"
    if c.isspace():
        return "whitespace"
    if c.isalpha():
        return "letter"
    if c.isdigit():
        return "digit"
    if c.isprintable():
        return "punctuation"
    return "other"


def parse_time(s: str) -> dt.datetime:
    s = s.strip()
    for fmt in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S"):
        try:
            return dt.datetime.strptime(s, fmt)
        except ValueError:
            pass
    raise ValueError(f"bad key_time {s!r}")


def iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


def synth_hold(rng: random.Random) -> float:
    # Log-normal, median 95 ms, sigma 0.30, clipped to [35, 300] ms. NOT from this data.
    return float(min(300, max(35, round(math.exp(rng.gauss(math.log(95.0), 0.30))))))


def open_rows(src: Path):
    """Rows of lh_default.csv, from the CSV itself or from the package's wheel."""
    if src.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(src) as zf:
            data = zf.read(DATA_MEMBER).decode("utf-8-sig")
        return csv.DictReader(io.StringIO(data, newline=""))
    return csv.DictReader(open(src, encoding="utf-8-sig", newline=""))


def diff(prev: str, cur: str) -> tuple[int, str, str]:
    """(start, deleted_text, inserted_text) turning prev into cur."""
    p = 0
    n = min(len(prev), len(cur))
    while p < n and prev[p] == cur[p]:
        p += 1
    s = 0
    while s < n - p and prev[len(prev) - 1 - s] == cur[len(cur) - 1 - s]:
        s += 1
    return p, prev[p:len(prev) - s], cur[p:len(cur) - s]


def convert_session(sid: str, rows: list[dict], key_up: str, seed: int, stats: dict) -> dict:
    rows.sort(key=lambda r: (r["_t"], int(r["key_id"])))
    t_start = rows[0]["_t"]
    session_id = f"{ID_PREFIX}-{sid}"
    rng = random.Random(int(hashlib.sha256(f"{seed}:{session_id}".encode()).hexdigest()[:16], 16))

    out: list[tuple[float, dict]] = []
    text = ""          # the whole answer.txt
    line_start = 0     # where the current message's line begins (python index)
    box = ""           # the current message as the learner sees it
    caret = 0          # caret, python index into text
    last_ms = 0.0
    by_msg_sent: dict[str, dt.datetime] = {}
    for r in rows:
        if r["event_for_message_type"] == SENT:
            by_msg_sent.setdefault(r["message_id"], r["_t"])

    def ms_of(t: dt.datetime) -> float:
        nonlocal last_ms
        ms = max(last_ms, round((t - t_start).total_seconds() * 1000.0, 3))
        last_ms = ms
        return ms

    def p16(i: int) -> int:
        return utf16_len(text[:i])

    for r in rows:
        kind = r["event_for_message_type"]
        if kind == SENT:
            if box:
                ms = ms_of(r["_t"])
                pos = len(text)
                out.append((ms, {"type": "edit", "file": FILE, "position": p16(pos),
                                 "deleted": 0, "inserted": "\n", "origin": "other"}))
                text += "\n"
                line_start = len(text)
                caret = line_start
                box = ""
                stats["messages"] += 1
            continue
        if kind != TYPING:
            continue
        cur = r["content"] or ""
        sent_at = by_msg_sent.get(r["message_id"])
        if cur == "" and box and sent_at is not None and abs((sent_at - r["_t"]).total_seconds()) <= 0.05:
            stats["dropped_clear"] += 1  # the game clearing the input box on send
            continue
        if cur == box:
            stats["dropped_nochange"] += 1
            continue
        start, deleted, inserted = diff(box, cur)
        ms = ms_of(r["_t"])
        abs_start = line_start + start
        if inserted and len(inserted) > 1 and not deleted:
            # Several characters at once with no key: paste or autocomplete.
            out.append((ms, {"type": "edit", "file": FILE, "position": p16(abs_start),
                             "deleted": 0, "inserted": inserted, "origin": "paste"}))
            stats["pastes"] += 1
        else:
            if inserted:
                kc = char_class(inserted[-1])
                want_caret = abs_start  # typing (over a selection) starts at its start
            else:
                kc = "backspace"
                want_caret = abs_start + len(deleted)  # Backspace acts left of the caret
            if deleted and len(deleted) > 1:
                want_caret = abs_start  # a selection: the caret is on it
            if want_caret != caret:
                out.append((ms, {"type": "cursor", "file": FILE, "position": p16(want_caret),
                                 "selection_end": (p16(abs_start + len(deleted))
                                                   if len(deleted) > 1 else None)}))
            ks = {"type": "keystroke", "down_ms": ms}
            if key_up == "synth":
                ks["up_ms"] = round(ms + synth_hold(rng), 3)
            ks["key_class"] = kc
            out.append((ms, ks))
            out.append((ms, {"type": "edit", "file": FILE, "position": p16(abs_start),
                             "deleted": utf16_len(deleted), "inserted": inserted,
                             "origin": "typed"}))
            stats["keys"] += 1
        text = text[:abs_start] + inserted + text[abs_start + len(deleted):]
        caret = abs_start + len(inserted)
        box = cur

    events = []
    for n, (ms, data) in enumerate(out, 1):
        events.append({"seq": n, "ts": iso(t_start + dt.timedelta(milliseconds=ms)), "data": data})
    return {
        "id": session_id,
        "class": "honest",
        "profile": PROFILE,
        "assessment": "none",
        "source": None,
        "consent": {"keystroke_dynamics": True, "face_continuity": True},
        "started_at": iso(t_start),
        "starter_files": [{"path": FILE, "content": ""}],
        "events": events,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", required=True, type=Path,
                    help="keylogging_analysis-0.0.1-py3-none-any.whl, or lh_default.csv")
    ap.add_argument("--out", required=True, type=Path, help="output corpus directory")
    ap.add_argument("--key-up", choices=("omit", "synth"), default="omit",
                    help="omit (default; the data has no key-ups) or synth (seeded holds)")
    ap.add_argument("--seed", type=int, default=0, help="seed for --key-up synth")
    ap.add_argument("--min-keys", type=int, default=300,
                    help="keep sessions with at least this many key presses (default 300)")
    ap.add_argument("--per-user", type=int, default=0,
                    help="keep at most this many sessions per learner (0 = all)")
    ap.add_argument("--max-keys-total", type=int, default=0,
                    help="stop adding sessions past this many key presses in all (0 = no cap)")
    args = ap.parse_args(argv)

    sessions: dict[str, list[dict]] = defaultdict(list)
    user_of: dict[str, str] = {}
    for r in open_rows(args.src):
        r["_t"] = parse_time(r["key_time"])
        sessions[r["session_id"]].append(r)
        user_of.setdefault(r["session_id"], r.get("USER_ID") or r.get("username") or "")

    args.out.mkdir(parents=True, exist_ok=True)
    totals = defaultdict(int)
    per_user: dict[str, int] = defaultdict(int)
    with open(args.out / "sessions.jsonl", "w", encoding="utf-8", newline="\n") as fh:
        for sid in sorted(sessions, key=lambda s: int(s) if s.isdigit() else s):
            user = user_of[sid]
            if args.per_user and per_user.get(user, 0) >= args.per_user:
                continue
            stats: dict[str, int] = defaultdict(int)
            session = convert_session(sid, sessions[sid], args.key_up, args.seed, stats)
            if stats["keys"] < args.min_keys:
                continue
            if args.max_keys_total and totals["keys"] + stats["keys"] > args.max_keys_total:
                break
            per_user[user] += 1
            fh.write(json.dumps(session, ensure_ascii=False, separators=(",", ":")) + "\n")
            totals["sessions"] += 1
            for k, v in stats.items():
                totals[k] += v
    totals["learners"] = len(per_user)
    print(json.dumps(dict(sorted(totals.items()))), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
