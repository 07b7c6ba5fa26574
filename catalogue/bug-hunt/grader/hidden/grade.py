#!/usr/bin/env python3
"""Hidden grader for the Bug Hunt (bug-hunt@1). Runs from /work with the submitted files.

Every check runs `checks.py <key>` in its own process group with its own timeout, so broken,
hanging or exiting candidate code fails that check only. $CLARITY_RESULTS is written before the
first check (every check "not run") and rewritten after each one, so a run killed by the sandbox
still leaves every check present. Exit status: 0 when every check passed, 1 otherwise.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from checks import CHECKS  # noqa: E402  (key, name, weight, timeout_s, function)

BUDGET_S = 50.0  # the whole run must end within 60 s, PostgreSQL's start included
PARALLEL = 2
MARKER = "@@CLARITY-CHECK "
OUTPUT_LIMIT = 3000


def write(results: dict, order: list[str]) -> None:
    path = os.environ.get("CLARITY_RESULTS", "/results/results.json")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"tests": [results[k] for k in order]}, f, ensure_ascii=False, indent=1)
        f.write("\n")
    os.replace(tmp, path)


def run_check(key: str, timeout_s: float) -> tuple[bool, str, int, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([os.getcwd(), HERE])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "checks.py"), key],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env=env, start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout_s)
        timed_out = False
    except subprocess.TimeoutExpired:
        timed_out = True
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, _ = proc.communicate()
    else:
        try:  # threads or children the candidate's code left behind
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    duration = int((time.monotonic() - started) * 1000)
    text = out.decode("utf-8", "replace")
    verdict = None
    for line in text.splitlines():
        if line.startswith(MARKER):
            try:
                verdict = json.loads(line[len(MARKER):])
            except ValueError:
                pass
    log = "\n".join(l for l in text.splitlines() if not l.startswith(MARKER))
    if timed_out:
        return False, f"did not finish within {timeout_s:g} s (the code under test hung or was too slow)", duration, log
    if verdict is None:
        tail = [l for l in log.splitlines() if l.strip()][-1:] or ["no output"]
        return False, f"the check crashed (exit {proc.returncode}): {tail[0][:300]}", duration, log
    return bool(verdict["passed"]), str(verdict.get("message", ""))[:600], duration, log


def main() -> int:
    deadline = time.monotonic() + BUDGET_S
    order = [c[0] for c in CHECKS]
    results = {
        key: {"key": key, "name": name, "passed": False, "weight": weight,
              "message": "not run (the grading run ended before this check)", "duration_ms": 0}
        for key, name, weight, _timeout, _fn in CHECKS
    }
    write(results, order)
    lock = threading.Lock()

    def one(check):
        key, name, weight, timeout_s, _fn = check
        left = deadline - time.monotonic()
        if left < 1:
            with lock:
                results[key]["message"] = "not run: the grading time budget was used up by earlier checks"
                write(results, order)
            return
        passed, message, duration, log = run_check(key, min(timeout_s, left))
        with lock:
            results[key].update(passed=passed, message=message, duration_ms=duration)
            write(results, order)
            print(f"[{'PASS' if passed else 'FAIL'}] {key} ({duration} ms): {name}")
            if message:
                print(f"       {message}")
            if log.strip() and not passed:
                print("       output: " + log.strip()[-OUTPUT_LIMIT:].replace("\n", "\n       "))
            sys.stdout.flush()

    with concurrent.futures.ThreadPoolExecutor(PARALLEL) as pool:
        list(pool.map(one, CHECKS))
    total = sum(r["weight"] for r in results.values())
    got = sum(r["weight"] for r in results.values() if r["passed"])
    print(f"score: {got}/{total} = {100 * got / total:.1f}%")
    return 0 if got == total else 1


if __name__ == "__main__":
    sys.exit(main())
