#!/usr/bin/env python3
"""Clarity runner: visible-test harness for Python suites (docs/runner.md).

    python3 /harness/py_unittest.py <tests-dir>

Runs unittest discovery (test*.py) on <tests-dir>, relative to the current directory (/work in the
sandbox), prints unittest's usual output to stdout and writes $CLARITY_RESULTS: one entry per test
method, named "module.Class.test_method" plus the first line of its docstring, with passed,
a short message on failure and duration_ms. A module that fails to import, or a class whose
setUpClass fails, becomes a failing entry of its own instead of stopping the run. Exits 0 if every
test passed (skips count as passed), 1 otherwise, 2 on a usage error.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
import unittest

MESSAGE_LIMIT = 500


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


def _summary(err) -> str:
    """The last line of a formatted exception (e.g. "AssertionError: 3 != 2"), plus where it was
    raised in the test file when that is known."""
    exc_type, exc, tb = err
    head = "".join(traceback.format_exception_only(exc_type, exc)).strip().splitlines()
    text = " ".join(line.strip() for line in head) if head else exc_type.__name__
    where = ""
    for frame in reversed(traceback.extract_tb(tb)):
        if os.path.basename(frame.filename).startswith("test"):
            where = f" ({os.path.basename(frame.filename)}:{frame.lineno})"
            break
    return _short(text + where)


def _name(test: unittest.TestCase) -> str:
    cls = type(test)
    method = getattr(test, "_testMethodName", "")
    name = f"{cls.__module__}.{cls.__qualname__}.{method}"
    doc = getattr(getattr(test, method, None), "__doc__", None)
    if doc and doc.strip():
        name += ": " + doc.strip().splitlines()[0].strip()
    return name


def _failure_name(test) -> str:
    """Names for the placeholder "tests" unittest makes of import and setUpClass errors."""
    if isinstance(test, unittest.TestCase) and type(test).__name__ != "_FailedTest":
        return _name(test)
    method = getattr(test, "_testMethodName", None) or str(test)
    if type(test).__name__ == "_FailedTest":
        return f"{method} (could not be imported)"
    return str(test)


class RecordingResult(unittest.TextTestResult):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.entries: dict[str, dict] = {}
        self.order: list[str] = []
        self._started: dict[str, float] = {}

    def _key(self, test) -> str:
        return test.id() if hasattr(test, "id") else str(test)

    def _record(self, test, passed: bool, message: str, name: str | None = None) -> None:
        key = self._key(test)
        started = self._started.pop(key, None)
        duration = int((time.monotonic() - started) * 1000) if started is not None else 0
        if key in self.entries:
            entry = self.entries[key]
            if entry["passed"] and not passed:  # e.g. a tearDown error after a pass
                entry["passed"] = False
                entry["message"] = message
            return
        self.order.append(key)
        self.entries[key] = {
            "name": name or _failure_name(test),
            "passed": passed,
            "message": message,
            "duration_ms": duration,
        }

    def startTest(self, test):
        self._started[self._key(test)] = time.monotonic()
        super().startTest(test)

    def addSuccess(self, test):
        super().addSuccess(test)
        self._record(test, True, "")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._record(test, False, _summary(err))

    def addError(self, test, err):
        super().addError(test, err)
        if type(test).__name__ == "_FailedTest":  # the module did not import: keep the cause
            lines = [l.strip() for l in str(err[1]).splitlines() if l.strip()]
            self._record(test, False, _short(lines[-1] if lines else "import failed"))
        elif isinstance(test, unittest.TestCase):
            self._record(test, False, _summary(err))
        else:  # setUpClass / setUpModule errors arrive as _ErrorHolder
            self._record(test, False, _summary(err), name=f"{test.description} (fixture error)")

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._record(test, True, _short(f"skipped: {reason}"))

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._record(test, True, "expected failure")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._record(test, False, "passed, but is marked as an expected failure")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._record(test, False, _summary(err) + f" [{subtest._subDescription()}]")


def write_results(entries: list[dict]) -> None:
    path = os.environ.get("CLARITY_RESULTS")
    if not path:
        return
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"tests": entries}, f, ensure_ascii=False, indent=1)
        f.write("\n")
    os.replace(tmp, path)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: py_unittest.py <tests-dir>", file=sys.stderr)
        return 2
    start_dir = os.path.abspath(argv[1])
    cwd = os.getcwd()
    if not os.path.isdir(start_dir):
        write_results([{"name": f"{argv[1]} (test folder)", "passed": False,
                        "message": f"no folder {argv[1]!r} in the workspace", "duration_ms": 0}])
        print(f"no folder {argv[1]!r}", file=sys.stderr)
        return 1
    # Tests import the code under test from the workspace root; a tests folder that is a package
    # is imported as one (tests.test_x), otherwise its modules are top-level (test_x).
    if os.path.isfile(os.path.join(start_dir, "__init__.py")):
        top_level = os.path.dirname(start_dir)
    else:
        top_level = start_dir
    for p in (top_level, cwd):
        if p not in sys.path:
            sys.path.insert(0, p)

    loader = unittest.TestLoader()
    entries: list[dict] = []
    try:
        suite = loader.discover(start_dir, pattern="test*.py", top_level_dir=top_level)
    except BaseException as exc:  # e.g. a conftest-style import side effect exiting
        suite = unittest.TestSuite()
        entries.append({"name": f"{argv[1]} (test discovery)", "passed": False,
                        "message": _short(f"{type(exc).__name__}: {exc}"), "duration_ms": 0})

    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2, resultclass=RecordingResult)
    try:
        result = runner.run(suite)
        entries.extend(result.entries[k] for k in result.order)
    except BaseException as exc:  # SystemExit or KeyboardInterrupt raised by code under test
        entries.append({"name": "test run", "passed": False,
                        "message": _short(f"the run stopped: {type(exc).__name__}: {exc}"),
                        "duration_ms": 0})
    if not entries:
        entries.append({"name": f"{argv[1]} (no tests found)", "passed": False,
                        "message": "discovery found no test*.py tests", "duration_ms": 0})
    write_results(entries)
    sys.stdout.flush()
    return 0 if all(e["passed"] for e in entries) else 1


if __name__ == "__main__":
    code = main(sys.argv)
    sys.stdout.flush()
    sys.stderr.flush()
    # Threads or subprocesses left behind by the code under test must not hold the run open.
    os._exit(code)
