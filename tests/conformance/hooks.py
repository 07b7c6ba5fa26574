"""schemathesis hooks for tests/tests/e2e/conformance.rs (loaded through SCHEMATHESIS_HOOKS).

A few of Clarity's rules relate two values, or a value and the clock, which JSON Schema (and so
the OpenAPI document) cannot state; each operation's description states them in words. Without
help, schemathesis would generate requests that are valid by the document and break such a rule,
and report the 422 as a valid request rejected. These hooks keep the *valid* (positive) requests
within those rules, and only those: invalid (negative) requests are sent as generated.

The rules, by operation:

* telemetry: each event's `ts` lies between the session's start and the server's clock (give or
  take the allowed skew), `seq` increases within a batch, a keystroke's `up_ms` is not before
  its `down_ms`;
* creating or revising an assessment: criterion keys and starter file paths are unique, level
  scores increase;
* replay state: exactly one of `seq` and `at_ms`;
* the access log: at least one of `session_id` and `member_id`;
* the integrity suite diff: `from` and `to` differ;
* registering a face model: the genuine scores lie above the impostor scores (a model that does
  not tell people apart is refused, and whether it does depends on both lists together).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import schemathesis

I64_MAX = 2**63 - 1


@schemathesis.hook
def map_case(context, case):
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return case
    path, method = case.operation.path, case.method.upper()
    if method == "POST" and path.endswith("/telemetry"):
        _telemetry(case.body)
    elif (method, path) == ("POST", "/v1/assessments") or (method == "PUT" and path.endswith("/draft")):
        if isinstance(case.body, dict):
            _spec(case.body.get("spec"))
    elif path.endswith("/replay/state") and isinstance(case.query, dict):
        if "seq" in case.query and "at_ms" in case.query:
            del case.query["at_ms"]
        elif "seq" not in case.query and "at_ms" not in case.query:
            case.query["seq"] = 0
    elif path == "/v1/audit/access":
        if case.query is None:
            case.query = {}
        if "session_id" not in case.query and "member_id" not in case.query:
            case.query["member_id"] = "00000000-0000-4000-8000-000000000000"
    elif (method, path) == ("POST", "/v1/face-models") and isinstance(case.body, dict):
        for key, low in (("genuine", 0.7), ("impostor", 0.0)):
            scores = case.body.get(key)
            if isinstance(scores, list):
                case.body[key] = [
                    low + 0.3 * (v if _is_number(v) and 0 <= v <= 1 else 0.5) for v in scores
                ]
        # Not one of Clarity's built-in models (their calibration is shipped: 409).
        if case.body.get("model_id") == "clarity-face":
            case.body["model_id"] = "clarity-face-custom"
    elif path == "/v1/integrity/diff" and isinstance(case.query, dict):
        if case.query.get("from") == case.query.get("to"):
            case.query["to"] = f"{case.query.get('to', '')}+other"
    return case


def _telemetry(body):
    if not isinstance(body, dict) or not isinstance(body.get("events"), list):
        return
    events = [e for e in body["events"] if isinstance(e, dict)]
    now = datetime.now(timezone.utc) - timedelta(seconds=1)
    for event in events:
        if isinstance(event.get("ts"), str):
            event["ts"] = now.isoformat().replace("+00:00", "Z")
        data = event.get("data")
        if isinstance(data, dict) and data.get("type") == "keystroke":
            down, up = data.get("down_ms"), data.get("up_ms")
            if isinstance(down, (int, float)) and isinstance(up, (int, float)) and up < down:
                data["down_ms"], data["up_ms"] = up, down
    seqs = [e.get("seq") for e in events]
    if seqs and all(_is_number(s) for s in seqs):
        seqs = [int(s) for s in seqs]
        if len(set(seqs)) == len(seqs):
            ordered = sorted(seqs)
        else:
            first = min(min(seqs), I64_MAX - len(seqs) + 1)
            ordered = [first + i for i in range(len(seqs))]
        for event, seq in zip(events, ordered):
            event["seq"] = seq


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _spec(spec):
    if not isinstance(spec, dict):
        return
    rubric = spec.get("rubric")
    criteria = rubric.get("criteria") if isinstance(rubric, dict) else None
    if isinstance(criteria, list):
        keys = set()
        for i, criterion in enumerate(c for c in criteria if isinstance(c, dict)):
            key = criterion.get("key")
            if isinstance(key, str):
                while key in keys:
                    key = f"{key}_{i}"
                keys.add(key)
                criterion["key"] = key
            levels = criterion.get("levels")
            if isinstance(levels, list) and all(
                isinstance(level, dict) and _is_number(level.get("score")) for level in levels
            ):
                by_score = {}
                for level in levels:
                    by_score.setdefault(level["score"], level)
                criterion["levels"] = [by_score[s] for s in sorted(by_score)]
    tasks = spec.get("tasks")
    if isinstance(tasks, list):
        paths = set()
        for task in (t for t in tasks if isinstance(t, dict)):
            files = task.get("starter_files")
            for i, file in enumerate(f for f in files or [] if isinstance(f, dict)):
                path = file.get("path")
                if isinstance(path, str):
                    while path in paths:
                        path = f"{path}_{i}"
                    paths.add(path)
                    file["path"] = path
