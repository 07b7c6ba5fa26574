#!/usr/bin/env python3
"""Clarity runner: visible tests of a SQL suite (toolchain "sql").

    python3 /harness/sql_tests.py tests/run_tests.py

Runs the workspace's test script (python3, standard library and psql, against the run's own
PostgreSQL) with `--results FILE`; the script prints its progress and writes a JSON list of
{"name", "passed", "message", "duration_ms"}. This converts that list to $CLARITY_RESULTS (one
entry per test, a key derived from its position and name), prints a summary and exits 0 when every
test passed, 1 otherwise. A script that crashes, hangs or reports nothing still yields a results
file: one failed entry saying why.
"""
import json
import os
import re
import subprocess
import sys
import time

TIMEOUT_S = int(os.environ.get("CLARITY_SQL_TESTS_TIMEOUT", "50"))


def main():
    script = sys.argv[1] if len(sys.argv) > 1 else "tests/run_tests.py"
    out_path = os.environ.get("CLARITY_RESULTS", "/results/results.json")
    tmp = os.path.join(os.environ.get("TMPDIR", "/tmp"), "clarity-sql-tests.json")
    if os.path.exists(tmp):
        os.remove(tmp)
    start = time.monotonic()
    tests, problem = [], None
    if not os.path.isfile(script):
        problem = f"{script} is missing from the workspace"
    else:
        try:
            p = subprocess.run([sys.executable, script, "--results", tmp], timeout=TIMEOUT_S,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            sys.stdout.write(p.stdout)
            tail = " ".join(p.stdout.strip().splitlines()[-3:])[-400:]
        except subprocess.TimeoutExpired as e:
            out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
            sys.stdout.write(out)
            problem = f"{script} did not finish within {TIMEOUT_S} s"
            tail = ""
        if problem is None:
            try:
                with open(tmp) as f:
                    raw = json.load(f)
                for i, t in enumerate(raw, 1):
                    name = str(t.get("name") or f"test {i}")
                    tests.append({
                        "key": f"{i:02d}_" + re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:48],
                        "name": name,
                        "passed": bool(t.get("passed")),
                        "message": str(t.get("message") or ("ok" if t.get("passed") else "failed")),
                        "duration_ms": int(t.get("duration_ms") or 0),
                    })
            except (OSError, ValueError, TypeError, AttributeError) as e:
                problem = f"{script} exited {p.returncode} without reporting results ({e}); last output: {tail}"
    if problem:
        tests.append({"key": "00_test_run", "name": f"Run {script}", "passed": False, "message": problem,
                      "duration_ms": int((time.monotonic() - start) * 1000)})
    os.makedirs(os.path.dirname(out_path) or ".", exist_ok=True)
    with open(out_path, "w") as f:
        json.dump({"tests": tests}, f, indent=1)
    passed = sum(t["passed"] for t in tests)
    print(f"\nclarity: {passed} of {len(tests)} tests passed in {time.monotonic() - start:.1f} s")
    return 0 if tests and passed == len(tests) else 1


if __name__ == "__main__":
    sys.exit(main())
