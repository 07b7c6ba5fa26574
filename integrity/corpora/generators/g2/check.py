#!/usr/bin/env python3
"""Self-check of a g2 corpus: re-reads it, replays every session's file operations on its starter
files (UTF-16 positions), checks numbering, clocks and the rules of FORMAT.md, and prints per-class
and per-profile statistics.

    python3 check.py /tmp/g2-corpus
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from collections import Counter, defaultdict
from datetime import datetime

CLASSES = {"honest", "constant_interval", "uniform_jitter", "iid_human_like", "humanized_bot",
           "replayed_timing", "whole_paste", "transcription", "face_swap"}
KEY_CLASSES = {"letter", "digit", "whitespace", "punctuation", "enter", "backspace", "delete", "navigation",
               "modifier", "other"}
ORIGINS = {"typed", "paste", "drop", "autocomplete", "undo", "redo", "other"}
ASSESSMENTS = {"rest-api-design", "database-schema-optimization", "distributed-cache-strategy",
               "microservice-orchestration", "bug-hunt", "async-task-queue", "rate-limiting", "none"}


def units(s: str) -> str:
    if all(ord(c) < 0x10000 for c in s):
        return s
    out = []
    for c in s:
        o = ord(c)
        if o >= 0x10000:
            o -= 0x10000
            out.append(chr(0xD800 + (o >> 10)))
            out.append(chr(0xDC00 + (o & 0x3FF)))
        else:
            out.append(c)
    return "".join(out)


def parse_ts(s: str) -> float:
    assert s.endswith("Z"), s
    return datetime.fromisoformat(s[:-1] + "+00:00").timestamp() * 1000.0


def check_session(s: dict, models: set, errors: list, notes: Counter) -> dict:
    sid = s.get("id", "?")

    def err(msg):
        errors.append(f"{sid}: {msg}")

    for k in ("id", "class", "profile", "assessment", "source", "consent", "started_at", "starter_files", "events"):
        if k not in s:
            err(f"missing {k}")
    if not sid.startswith("g2-"):
        err("id without the generator prefix")
    if s["class"] not in CLASSES:
        err(f"bad class {s['class']}")
    if s["assessment"] not in ASSESSMENTS:
        err(f"bad assessment {s['assessment']}")
    c = s["consent"]
    if set(c) != {"keystroke_dynamics", "face_continuity"}:
        err("bad consent")
    start = parse_ts(s["started_at"])
    files = {f["path"]: units(f["content"]) for f in s["starter_files"]}
    last_seq = 0
    last_ts = start
    keys = 0
    last_kind = None
    typed_after_key = 0
    typed_other = 0
    faces = 0
    mono_resets = 0
    prev_down = None
    grids = Counter()
    for ev in s["events"]:
        seq = ev["seq"]
        if seq != last_seq + 1:
            err(f"seq {seq} after {last_seq}")
        last_seq = seq
        ts = parse_ts(ev["ts"])
        if ts < last_ts:
            err(f"ts goes back at seq {seq}")
        if ts < start:
            err(f"ts before started_at at seq {seq}")
        last_ts = ts
        d = ev["data"]
        t = d["type"]
        if t == "keystroke":
            keys += 1
            if not c["keystroke_dynamics"]:
                err("keystroke without consent")
            dm = d["down_ms"]
            if not isinstance(dm, (int, float)) or dm < 0:
                err(f"bad down_ms at {seq}")
            if "up_ms" in d and d["up_ms"] < dm:
                err(f"up before down at {seq}")
            if d["key_class"] not in KEY_CLASSES:
                err(f"bad key_class at {seq}")
            if set(d) - {"type", "down_ms", "up_ms", "key_class"}:
                err(f"extra keystroke fields at {seq}")
            if prev_down is not None and dm < prev_down:
                mono_resets += 1
            prev_down = dm
            frac = round(dm % 1, 3)
            grids["int" if frac == 0 else "0.1" if round(dm * 10) == dm * 10 else "fine"] += 1
        elif t == "edit":
            f = d["file"]
            if f not in files:
                err(f"edit of missing file {f} at {seq}")
                continue
            txt = files[f]
            p, n, ins = d["position"], d["deleted"], units(d["inserted"])
            if not (isinstance(p, int) and isinstance(n, int) and p >= 0 and n >= 0 and p + n <= len(txt)):
                err(f"edit out of range at {seq}: {p}+{n} > {len(txt)}")
                continue
            if d["origin"] not in ORIGINS:
                err(f"bad origin at {seq}")
            if d["origin"] == "typed":
                if last_kind in ("keystroke", "edit"):
                    typed_after_key += 1
                else:
                    typed_other += 1
            files[f] = txt[:p] + ins + txt[p + n:]
        elif t == "file_created":
            if d["file"] in files:
                err(f"file_created of existing {d['file']}")
            files[d["file"]] = units(d.get("content", ""))
        elif t == "file_renamed":
            if d["file"] not in files or d["new_file"] in files:
                err(f"bad rename at {seq}")
            else:
                files[d["new_file"]] = files.pop(d["file"])
        elif t == "file_deleted":
            if d["file"] not in files:
                err(f"delete of missing file at {seq}")
            else:
                del files[d["file"]]
        elif t == "cursor":
            f = d["file"]
            if f not in files:
                err(f"cursor in missing file at {seq}")
            else:
                L = len(files[f])
                if not (0 <= d["position"] <= L) or ("selection_end" in d and not (0 <= d["selection_end"] <= L)):
                    err(f"cursor out of range at {seq}")
        elif t == "code_run":
            for k in ("command", "exit_code", "duration_ms"):
                if k not in d:
                    err(f"code_run without {k}")
        elif t == "face_check":
            faces += 1
            if not c["face_continuity"]:
                err("face check without consent")
            if not (0 <= d["similarity"] <= 1 and 0 <= d["quality"] <= 1):
                err(f"face check out of range at {seq}")
            if d["model_id"] not in models:
                err(f"uncalibrated face model {d['model_id']}")
        elif t in ("focus_lost", "focus_regained"):
            pass
        else:
            err(f"unknown event type {t}")
        if t in ("keystroke", "edit"):
            last_kind = t
        elif t not in ("cursor",):
            last_kind = t
    if not (300 <= keys <= 6000):
        err(f"{keys} key presses (want 300..6000)")
    if s["class"] == "replayed_timing" and not s["source"]:
        err("replayed_timing without source")
    if s["class"] != "replayed_timing" and s["source"] is not None:
        err("source set on a non-replay session")
    notes["typed_edits_after_key"] += typed_after_key
    notes["typed_edits_after_other"] += typed_other
    notes["mono_resets"] += mono_resets
    return {"keys": keys, "events": len(s["events"]), "faces": faces, "files": files}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/g2-corpus"
    path = os.path.join(out, "sessions.jsonl")
    with open(os.path.join(out, "face_models.json"), encoding="utf-8") as fh:
        fm = json.load(fh)
    models = set()
    errors: list = []
    for m in fm:
        models.add(m["model_id"])
        if len(m["genuine"]) < 200 or len(m["impostor"]) < 200:
            errors.append(f"face model {m['model_id']}: fewer than 200 calibration scores")
    ids = set()
    honest_ids = set()
    sources = []
    per_class = defaultdict(list)
    per_profile = defaultdict(list)
    notes = Counter()
    used_models = set()
    nlines = 0
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            nlines += 1
            s = json.loads(line)
            if s["id"] in ids:
                errors.append(f"duplicate id {s['id']}")
            ids.add(s["id"])
            if s["class"] == "honest":
                honest_ids.add(s["id"])
            if s["source"]:
                sources.append((s["id"], s["source"]))
            r = check_session(s, models, errors, notes)
            for ev in s["events"]:
                if ev["data"]["type"] == "face_check":
                    used_models.add(ev["data"]["model_id"])
            per_class[s["class"]].append(r["keys"])
            per_profile[(s["class"], s["profile"])].append(r["keys"])
    for sid, src in sources:
        if src not in honest_ids:
            errors.append(f"{sid}: source {src} is not an honest session of this corpus")
    for m in used_models - models:
        errors.append(f"model {m} used but not calibrated")
    size = os.path.getsize(path)
    total = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    print(f"{nlines} sessions, sessions.jsonl {size / 1e6:.1f} MB, corpus {total / 1e6:.1f} MB")
    print(f"{'class':20s} {'n':>4s} {'keys min':>9s} {'median':>7s} {'max':>6s}")
    for cls in sorted(per_class):
        k = per_class[cls]
        print(f"{cls:20s} {len(k):4d} {min(k):9d} {int(statistics.median(k)):7d} {max(k):6d}")
    print()
    print(f"{'class / profile':56s} {'n':>4s} {'min':>6s} {'median':>7s} {'max':>6s}")
    for (cls, prof) in sorted(per_profile):
        k = per_profile[(cls, prof)]
        print(f"{cls + ' / ' + prof:56s} {len(k):4d} {min(k):6d} {int(statistics.median(k)):7d} {max(k):6d}")
    print()
    print("typed edits right after a keystroke:", notes["typed_edits_after_key"],
          "| after another event (emoji picker, IME, face check in between):", notes["typed_edits_after_other"])
    print("monotonic clock restarts (page reloads):", notes["mono_resets"])
    short = sum(1 for ks in per_class.values() for k in ks if k < 600)
    print(f"sessions under 600 key presses: {short}")
    if total > 200e6:
        errors.append(f"corpus is {total / 1e6:.1f} MB (limit 200 MB)")
    if errors:
        print(f"\n{len(errors)} ERRORS")
        for e in errors[:60]:
            print("  ", e)
        sys.exit(1)
    print("\nOK: all checks passed")


if __name__ == "__main__":
    main()
