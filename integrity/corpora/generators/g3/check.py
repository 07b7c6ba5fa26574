#!/usr/bin/env python3
"""Self-check of a g3 corpus: re-reads it, replays every edit onto the starter files, and checks
the rules of integrity/corpora/FORMAT.md and of the capture (docs/events.md, web/capture).

    python3 check.py /tmp/g3-corpus [--catalogue /work/main/catalogue]

Prints per-class and per-profile counts, key presses (min / median / max), timer resolutions and
the corpus size; exits 1 on the first class of error found (all errors are listed).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from collections import Counter, defaultdict
from datetime import datetime

HERE = os.path.dirname(os.path.abspath(__file__))
CLASSES = {"honest", "constant_interval", "uniform_jitter", "iid_human_like", "humanized_bot",
           "replayed_timing", "whole_paste", "transcription", "face_swap"}
KEY_CLASSES = {"letter", "digit", "whitespace", "punctuation", "enter", "backspace", "delete",
               "navigation", "modifier", "other"}
ORIGINS = {"typed", "paste", "drop", "autocomplete", "undo", "redo", "other"}


def u16(s: str) -> int:
    return len(s.encode("utf-16-le")) // 2


def parse_ts(s: str) -> float:
    assert s.endswith("Z"), s
    return datetime.fromisoformat(s[:-1] + "+00:00").timestamp() * 1000.0


def resolution(values):
    """The coarsest clock grid the key times sit on."""
    vals = [v for v in values[:400]]
    if not vals:
        return "none"
    for res, name in ((100.0, "100 ms"), (1000.0 / 60.0, "16.67 ms"), (2.0, "2 ms"), (1.0, "1 ms"),
                      (0.1, "0.1 ms"), (0.005, "5 us")):
        base = vals[0]
        ok = all(abs(((v - base) / res) - round((v - base) / res)) < 1e-3 for v in vals)
        if ok:
            return name
    return "finer"


def check(corpus: str, catalogue: str):
    errors: list[str] = []

    def err(msg):
        if len(errors) < 200:
            errors.append(msg)

    slugs = set(os.listdir(catalogue))
    fm_path = os.path.join(corpus, "face_models.json")
    models = {}
    if os.path.exists(fm_path):
        with open(fm_path, encoding="utf-8") as fh:
            for m in json.load(fh):
                models[m["model_id"]] = m
                for k in ("genuine", "impostor"):
                    if len(m[k]) < 200:
                        err(f"face model {m['model_id']}: fewer than 200 {k} scores")
                    if not all(0.0 <= x <= 1.0 for x in m[k]):
                        err(f"face model {m['model_id']}: {k} score outside 0..1")
    path = os.path.join(corpus, "sessions.jsonl")
    size = os.path.getsize(path)
    ids = set()
    honest_ids = set()
    rows = []
    presses_by_class = defaultdict(list)
    presses_by_profile = defaultdict(list)
    res_counter = Counter()
    origin_counter = Counter()
    etype_counter = Counter()
    sources = []
    face_gaps = []
    n_no_up = 0
    n_keys_total = 0
    n_rollover = 0
    n_edits_checked = 0
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            s = json.loads(line)
            sid = s.get("id")
            for k in ("id", "class", "profile", "assessment", "source", "consent", "started_at",
                      "starter_files", "events"):
                if k not in s:
                    err(f"{sid}: missing {k}")
            if not isinstance(sid, str) or not sid.startswith("g3-"):
                err(f"line {lineno}: id {sid!r} not prefixed g3-")
            if sid in ids:
                err(f"{sid}: duplicate id")
            ids.add(sid)
            cls = s["class"]
            if cls not in CLASSES:
                err(f"{sid}: unknown class {cls}")
            if cls == "honest":
                honest_ids.add(sid)
            if s["assessment"] != "none" and s["assessment"] not in slugs:
                err(f"{sid}: unknown assessment {s['assessment']}")
            if cls == "replayed_timing":
                sources.append((sid, s["source"]))
            elif s["source"] is not None:
                err(f"{sid}: source set on a {cls} session")
            c = s["consent"]
            if not (isinstance(c.get("keystroke_dynamics"), bool) and isinstance(c.get("face_continuity"), bool)):
                err(f"{sid}: consent")
            start = parse_ts(s["started_at"])
            files = {}
            for f in s["starter_files"]:
                files[f["path"]] = f["content"]
            events = s["events"]
            last_ts = start
            presses = 0
            prev = None
            prev2 = None
            downs = []
            seg_downs = []
            last_down = None
            last_face_ts = None
            offsets = []
            after_focus_lost = False
            for i, e in enumerate(events):
                if e["seq"] != i + 1:
                    err(f"{sid}: seq {e['seq']} at position {i + 1}")
                    break
                ts = parse_ts(e["ts"])
                if ts < last_ts:
                    err(f"{sid}: ts goes back at seq {e['seq']}")
                last_ts = ts
                d = e["data"]
                t = d["type"]
                etype_counter[t] += 1
                if t == "keystroke":
                    presses += 1
                    n_keys_total += 1
                    dm = d["down_ms"]
                    if not (isinstance(dm, (int, float)) and dm >= 0):
                        err(f"{sid}: bad down_ms at {e['seq']}")
                    if "up_ms" in d:
                        if d["up_ms"] < dm:
                            err(f"{sid}: up before down at {e['seq']}")
                    else:
                        n_no_up += 1
                    if d["key_class"] not in KEY_CLASSES:
                        err(f"{sid}: key_class {d['key_class']}")
                    if last_down is not None and dm < last_down:
                        if after_focus_lost and dm < last_down - 1000:
                            seg_downs = []  # a reload: the page clock restarted
                        else:
                            err(f"{sid}: down_ms goes back at {e['seq']} ({last_down} -> {dm})")
                    if prev is not None and prev["type"] == "keystroke" and "up_ms" in prev and prev["up_ms"] > dm:
                        n_rollover += 1
                    last_down = dm
                    downs.append(dm)
                    seg_downs.append(dm)
                    offsets.append(ts - dm)
                    after_focus_lost = False
                elif t == "edit":
                    f = d["file"]
                    if f not in files:
                        err(f"{sid}: edit of unknown file {f} at {e['seq']}")
                        continue
                    text = files[f]
                    if not (isinstance(d["position"], int) and d["position"] >= 0 and d["deleted"] >= 0
                            and d["position"] + d["deleted"] <= u16(text)):
                        err(f"{sid}: edit outside {f} at {e['seq']}")
                        continue
                    if d["origin"] not in ORIGINS:
                        err(f"{sid}: origin {d['origin']}")
                    if "\x00" in d["inserted"]:
                        err(f"{sid}: NUL inserted")
                    origin_counter[d["origin"]] += 1
                    if d["origin"] in ("typed", "autocomplete", "undo"):
                        if prev is None or prev["type"] != "keystroke":
                            err(f"{sid}: {d['origin']} edit at {e['seq']} not right after a key press")
                    if d["origin"] == "paste":
                        if prev is None or prev["type"] != "keystroke" or prev["key_class"] != "letter":
                            err(f"{sid}: paste at {e['seq']} not right after its key press")
                    if d["origin"] == "typed" and d["inserted"] == "" and d["deleted"] >= 1:
                        if prev["key_class"] not in ("backspace", "delete", "letter"):
                            err(f"{sid}: deletion at {e['seq']} after a {prev['key_class']} key")
                    p = d["position"]
                    files[f] = text[:p] + d["inserted"] + text[p + d["deleted"]:]
                    n_edits_checked += 1
                elif t == "file_created":
                    if d["file"] in files:
                        err(f"{sid}: file_created of existing {d['file']}")
                    files[d["file"]] = d.get("content", "")
                elif t == "file_renamed":
                    if d["file"] not in files or d["new_file"] in files:
                        err(f"{sid}: bad rename")
                    else:
                        files[d["new_file"]] = files.pop(d["file"])
                elif t == "file_deleted":
                    if d["file"] not in files:
                        err(f"{sid}: delete of unknown file")
                    files.pop(d["file"], None)
                elif t == "cursor":
                    f = d["file"]
                    if f not in files or not (0 <= d["position"] <= u16(files[f])) or \
                            ("selection_end" in d and not 0 <= d["selection_end"] <= u16(files[f])):
                        err(f"{sid}: cursor outside {f} at {e['seq']}")
                elif t == "code_run":
                    if not (isinstance(d["command"], str) and isinstance(d["exit_code"], int)
                            and isinstance(d["duration_ms"], int) and d["duration_ms"] >= 0):
                        err(f"{sid}: code_run fields")
                elif t == "face_check":
                    if not (0 <= d["similarity"] <= 1 and 0 <= d["quality"] <= 1 and isinstance(d["face_count"], int)
                            and d["face_count"] >= 0):
                        err(f"{sid}: face_check values")
                    if d["model_id"] not in models:
                        err(f"{sid}: face model {d['model_id']} not calibrated")
                    elif models[d["model_id"]]["model_version"] != d["model_version"]:
                        err(f"{sid}: face model version")
                    if not s["consent"]["face_continuity"]:
                        err(f"{sid}: face check without consent")
                    if last_face_ts is not None:
                        face_gaps.append(ts - last_face_ts)
                    last_face_ts = ts
                elif t == "focus_lost":
                    after_focus_lost = True
                elif t == "focus_regained":
                    pass
                else:
                    err(f"{sid}: unknown event type {t}")
                prev2 = prev
                prev = d
            if presses < 300 or presses > 6000:
                err(f"{sid}: {presses} key presses, outside 300..6000")
            if offsets:
                # ts and down_ms are the same clock seen twice: their difference stays nearly
                # constant (handler latency, a coarse timer and clock drift aside)
                spread = max(offsets[:50]) - min(offsets[:50])
                coarse = {"100 ms": 100.0, "16.67 ms": 16.67, "2 ms": 2.0}.get(resolution(downs), 1.0)
                if spread > 120 + coarse:
                    err(f"{sid}: ts and down_ms disagree by {spread:.0f} ms")
            presses_by_class[cls].append(presses)
            presses_by_profile[(cls, s["profile"])].append(presses)
            res_counter[resolution(downs)] += 1
            rows.append((sid, cls))
    for sid, src in sources:
        if src not in honest_ids:
            err(f"{sid}: source {src} is not an honest session of this corpus")
    return {
        "errors": errors, "size": size, "by_class": presses_by_class, "by_profile": presses_by_profile,
        "res": res_counter, "origins": origin_counter, "types": etype_counter, "face_gaps": face_gaps,
        "no_up": n_no_up, "keys": n_keys_total, "rollover": n_rollover, "edits": n_edits_checked,
        "n": len(rows),
    }


def stats(v):
    v = sorted(v)
    return f"{len(v):4d} sessions, presses min {v[0]:5d} median {int(statistics.median(v)):5d} max {v[-1]:5d}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus")
    ap.add_argument("--catalogue", default=os.path.normpath(os.path.join(HERE, "..", "..", "..", "..", "catalogue")))
    a = ap.parse_args()
    r = check(a.corpus, a.catalogue)
    print(f"{r['n']} sessions, {r['size'] / 1e6:.1f} MB, {r['keys']} key presses, {r['edits']} edits replayed")
    print("per class:")
    for cls, v in sorted(r["by_class"].items()):
        print(f"  {cls:20s} {stats(v)}  (<600: {sum(1 for x in v if x < 600)})")
    print("per profile:")
    for (cls, prof), v in sorted(r["by_profile"].items()):
        print(f"  {cls:18s} {prof:26s} {stats(v)}")
    print("timer resolutions:", dict(r["res"]))
    print("event types:", dict(r["types"]))
    print("edit origins:", dict(r["origins"]))
    g = r["face_gaps"]
    if g:
        print(f"face check intervals: min {min(g) / 1e3:.1f} s, max {max(g) / 1e3:.1f} s")
    print(f"key presses without key-up: {r['no_up']}, overlapping the previous key: {r['rollover']}")
    if r["errors"]:
        print(f"{len(r['errors'])} ERRORS:")
        for e in r["errors"]:
            print("  " + e)
        sys.exit(1)
    print("OK")


if __name__ == "__main__":
    main()
