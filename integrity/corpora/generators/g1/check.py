#!/usr/bin/env python3
"""Re-reads a corpus and checks it against integrity/corpora/FORMAT.md: fields, seq and ts order,
key presses, edits replayed onto the starter files, face checks against face_models.json.
Prints per-class and per-profile counts, key presses (min / median / max), duration and size.

    python3 check.py /tmp/g1-corpus
"""

from __future__ import annotations

import json
import os
import re
import statistics
import sys
from collections import defaultdict
from datetime import datetime

CLASSES = {"honest", "constant_interval", "uniform_jitter", "iid_human_like", "humanized_bot", "replayed_timing",
           "whole_paste", "transcription", "face_swap"}
KEY_CLASSES = {"letter", "digit", "whitespace", "punctuation", "enter", "backspace", "delete", "navigation",
               "modifier", "other"}
ORIGINS = {"typed", "paste", "drop", "autocomplete", "undo", "redo", "other"}
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
STARTED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
SLUGS = {"rest-api-design", "database-schema-optimization", "distributed-cache-strategy", "microservice-orchestration",
         "bug-hunt", "async-task-queue", "rate-limiting", "none"}


def parse_ts(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() * 1000


def u16(s):
    return len(s.encode("utf-16-le")) // 2


class Bad(Exception):
    pass


def need(cond, msg):
    if not cond:
        raise Bad(msg)


def check_session(s, models, ids_classes):
    for k in ("id", "class", "profile", "assessment", "source", "consent", "started_at", "starter_files", "events"):
        need(k in s, f"missing {k}")
    need(s["id"].startswith("g1-"), "id prefix")
    need(s["class"] in CLASSES, f"class {s['class']}")
    need(isinstance(s["profile"], str) and s["profile"], "profile")
    need(s["assessment"] in SLUGS, "assessment")
    need(STARTED.match(s["started_at"]), "started_at format")
    if s["class"] == "replayed_timing":
        need(ids_classes.get(s["source"]) == "honest", "source must be an honest session of the corpus")
    else:
        need(s["source"] is None, "source must be null")
    need(s["consent"] == {"keystroke_dynamics": True, "face_continuity": True}, "consent")
    files = {}
    for f in s["starter_files"]:
        files[f["path"]] = f["content"]
    start = parse_ts(s["started_at"])
    last_ts = start
    last_down = -1.0
    prev = None
    keys = 0
    n_face = 0
    kinds = defaultdict(int)
    for i, e in enumerate(s["events"], 1):
        need(e["seq"] == i, f"seq {e['seq']} at {i}")
        need(TS.match(e["ts"]), f"ts format {e['ts']}")
        t = parse_ts(e["ts"])
        need(t >= last_ts, f"ts goes back at seq {i}")
        last_ts = t
        d = e["data"]
        ty = d["type"]
        kinds[ty] += 1
        if ty == "keystroke":
            keys += 1
            need(set(d) <= {"type", "down_ms", "up_ms", "key_class"}, "keystroke fields")
            need(d["key_class"] in KEY_CLASSES, "key_class")
            need(isinstance(d["down_ms"], (int, float)) and d["down_ms"] >= 0, "down_ms")
            if "up_ms" in d:
                need(d["up_ms"] >= d["down_ms"], f"up before down at seq {i}")
            if d["down_ms"] < last_down:
                # only a reload on a new device restarts the page clock
                need(last_down - d["down_ms"] > 1000, f"down_ms goes back at seq {i}")
            last_down = d["down_ms"]
        elif ty == "edit":
            f = d["file"]
            need(f in files, f"edit of unknown file {f} at seq {i}")
            need(d["origin"] in ORIGINS, "origin")
            text = files[f]
            p, n = d["position"], d["deleted"]
            need(isinstance(p, int) and isinstance(n, int) and p >= 0 and n >= 0, "position/deleted")
            need(p + n <= u16(text), f"edit outside {f} at seq {i}")
            need("\x00" not in d["inserted"], "NUL")
            files[f] = text[:p] + d["inserted"] + text[p + n:]
            if d["origin"] in ("typed", "autocomplete", "undo", "redo"):
                need(prev is not None and prev["type"] == "keystroke", f"{d['origin']} edit without its key press at seq {i}")
            if d["origin"] == "typed" and d["inserted"] and d["deleted"] == 0 and len(d["inserted"]) == 1:
                need(prev["key_class"] not in ("backspace", "delete", "navigation"), f"typed char after {prev['key_class']}")
            if d["origin"] == "typed" and d["inserted"] == "" and prev is not None and prev["type"] == "keystroke":
                need(prev["key_class"] in ("backspace", "delete", "letter", "whitespace", "punctuation", "digit", "enter"),
                     f"deletion after {prev['key_class']} at seq {i}")
        elif ty == "cursor":
            f = d["file"]
            need(f in files, f"cursor in unknown file {f}")
            need(0 <= d["position"] <= u16(files[f]), f"cursor outside {f} at seq {i}")
            if "selection_end" in d:
                need(0 <= d["selection_end"] <= u16(files[f]), "selection outside file")
        elif ty == "file_created":
            need(d["file"] not in files, "file exists")
            files[d["file"]] = d.get("content", "")
        elif ty == "file_renamed":
            need(d["file"] in files and d["new_file"] not in files, "rename")
            files[d["new_file"]] = files.pop(d["file"])
        elif ty == "file_deleted":
            need(d["file"] in files, "delete")
            del files[d["file"]]
        elif ty == "code_run":
            need(isinstance(d["exit_code"], int) and d["duration_ms"] >= 0, "code_run")
        elif ty == "face_check":
            n_face += 1
            need(0 <= d["similarity"] <= 1 and 0 <= d["quality"] <= 1, "face ranges")
            need(d["model_id"] in models and models[d["model_id"]] == d["model_version"], "face model not calibrated")
            need(isinstance(d["face_count"], int) and d["face_count"] >= 0, "face_count")
        elif ty in ("focus_lost", "focus_regained"):
            pass
        else:
            raise Bad(f"unknown type {ty}")
        prev = d
    first = parse_ts(s["events"][0]["ts"])
    dur = (last_ts - first) / 60000
    return keys, n_face, dur, kinds


def main(argv=None):
    argv = argv if argv is not None else sys.argv[1:]
    root = argv[0] if argv else "/tmp/g1-corpus"
    path = os.path.join(root, "sessions.jsonl")
    with open(os.path.join(root, "face_models.json"), encoding="utf-8") as fh:
        fm = json.load(fh)
    models = {}
    for m in fm:
        assert len(m["genuine"]) >= 200 and len(m["impostor"]) >= 200, "calibration too small"
        assert all(0 <= x <= 1 for x in m["genuine"] + m["impostor"])
        models[m["model_id"]] = m["model_version"]
    sessions = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            sessions.append(json.loads(line))
    ids = {}
    for s in sessions:
        assert s["id"] not in ids, f"duplicate id {s['id']}"
        ids[s["id"]] = s["class"]
    per_class = defaultdict(list)
    per_profile = defaultdict(list)
    errors = 0
    for s in sessions:
        try:
            keys, nf, dur, kinds = check_session(s, models, ids)
        except Bad as e:
            errors += 1
            print(f"FAIL {s['id']}: {e}")
            continue
        if not (300 <= keys <= 6000):
            errors += 1
            print(f"FAIL {s['id']}: {keys} key presses outside 300..6000")
        per_class[s["class"]].append((keys, dur, nf, kinds))
        per_profile[(s["class"], s["profile"])].append(keys)

    def mmm(xs):
        return f"{min(xs):6.0f} {statistics.median(xs):7.0f} {max(xs):6.0f}"

    print(f"{'class':18} {'n':>4}  {'keys min/median/max':>21}  {'minutes min/med/max':>21}  face checks (median)")
    for c in sorted(per_class, key=lambda c: (c != "honest", c)):
        v = per_class[c]
        ks = [x[0] for x in v]
        ds = [x[1] for x in v]
        print(f"{c:18} {len(v):4}  {mmm(ks)}  {mmm(ds)}  {statistics.median([x[2] for x in v]):5.0f}")
    print()
    print(f"{'class / profile':48} {'n':>4}  keys min/median/max")
    for (c, p), ks in sorted(per_profile.items()):
        print(f"{c + ' / ' + p:48} {len(ks):4}  {mmm(ks)}")
    size = os.path.getsize(path)
    print(f"\n{len(sessions)} sessions, {size / 1e6:.1f} MB sessions.jsonl, "
          f"{os.path.getsize(os.path.join(root, 'face_models.json')) / 1e3:.0f} kB face_models.json, "
          f"{len(models)} face models; {errors} problems")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
