#!/usr/bin/env python3
"""Clarity runner: Go test harness (python3 standard library only).

Two modes, both writing $CLARITY_RESULTS (docs/runner.md) and always writing it:

  go_test.py [go test args...]
      Visible runs: `go test -json <args>` in the current directory (/work). One result per
      top-level test, plus one failing result per package that did not build (with the
      compiler's message). Readable test output is passed through to stdout. Exit 0 when every
      result passed, 1 otherwise.

  go_test.py grade CHECKS.json
      Hidden runs: copies the suite's hidden test files into the candidate's package, compiles
      one test binary, then runs each check's test function in its own process with its own
      timeout (a hang or a panic fails that check only). Every check in CHECKS.json appears in
      the results: when the package does not build, each fails with the compiler's message.

CHECKS.json:
  { "package": "./catalog",              package the hidden files are compiled into
    "files": ["hidden_test.go"],         relative to the CHECKS.json folder; copied into package
    "remove_candidate_tests": true,      drop the candidate's own *_test.go files in that package
    "build_flags": ["-race"],
    "parallel": 2, "test_timeout_seconds": 20,
    "budget_seconds": 45,                running checks stop after this; the rest fail as not run
    "checks": [ { "key": "...", "name": "...", "weight": 3, "test": "TestGraderX",
                  "timeout_seconds": 20 } ] }

GOCACHE seed: when $CLARITY_GOCACHE_SEED names a directory (a Go build cache filled by the suite's
prepare.sh, mounted read-only under /toolchain) and $GOCACHE is empty or missing, the seed is
copied into $GOCACHE first. Go's build cache is content-addressed (keys hash the toolchain, flags,
paths and sources), so a copied cache can only give hits for identical inputs; copying (rather
than pointing GOCACHE at the read-only mount) is needed because Go writes to its cache.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

RESULTS = os.environ.get("CLARITY_RESULTS", "/results/results.json")
MAX_MESSAGE = 1500


def write_results(tests):
    tmp = RESULTS + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"tests": tests}, f, indent=1)
    os.replace(tmp, RESULTS)


def clip(text, limit=MAX_MESSAGE):
    text = text.strip()
    if len(text) > limit:
        text = text[: limit - 20].rstrip() + "\n… (truncated)"
    return text


def seed_gocache():
    seed = os.environ.get("CLARITY_GOCACHE_SEED")
    cache = os.environ.get("GOCACHE")
    if not seed or not cache or not os.path.isdir(seed):
        return
    if os.path.isdir(cache) and os.listdir(cache):
        return
    started = time.time()
    os.makedirs(os.path.dirname(cache) or "/", exist_ok=True)
    if os.path.isdir(cache):
        os.rmdir(cache)
    # cp is several times faster than shutil.copytree on many small files.
    r = subprocess.run(["cp", "-R", seed, cache], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"clarity: could not copy the Go build cache seed: {r.stderr.strip()}", flush=True)
        shutil.rmtree(cache, ignore_errors=True)
        return
    print(f"clarity: Go build cache seeded in {time.time() - started:.1f}s", flush=True)


# ---------------------------------------------------------------------------------------------
# Visible runs: go test -json


def tidy_test_output(lines):
    """The lines worth showing for a failed test: no RUN/PAUSE/CONT/PASS/FAIL banners."""
    out = []
    for line in lines:
        s = line.rstrip("\n")
        t = s.strip()
        if not t:
            continue
        if re.match(r"^=== (RUN|PAUSE|CONT|NAME)\s", t) or re.match(r"^--- (PASS|FAIL|SKIP):", t):
            continue
        if t in ("FAIL", "PASS") or t.startswith("exit status "):
            continue
        out.append(s.rstrip())
    return "\n".join(out)


def visible(args):
    seed_gocache()
    cmd = ["go", "test", "-json"] + args
    print("$ " + " ".join(cmd), flush=True)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace")
    tests = {}          # (pkg, name) -> dict(status, output, elapsed)
    order = []
    pkg_output = {}     # pkg -> lines not attributed to a test
    build_output = {}   # import path -> lines
    pkg_failed = {}     # pkg -> FailedBuild import path or ""
    stray = []          # lines that were not JSON (go command errors)
    for raw in proc.stdout:
        line = raw.rstrip("\n")
        if not line.startswith("{"):
            stray.append(line)
            print(line, flush=True)
            continue
        try:
            ev = json.loads(line)
        except ValueError:
            stray.append(line)
            print(line, flush=True)
            continue
        action = ev.get("Action")
        pkg = ev.get("Package") or ev.get("ImportPath") or ""
        test = ev.get("Test")
        if action == "build-output":
            build_output.setdefault(ev.get("ImportPath", pkg), []).append(ev.get("Output", ""))
            sys.stdout.write(ev.get("Output", ""))
            sys.stdout.flush()
            continue
        if action == "build-fail":
            continue
        if action == "output":
            text = ev.get("Output", "")
            sys.stdout.write(text)
            sys.stdout.flush()
            if test:
                top = test.split("/")[0]
                t = tests.setdefault((pkg, top), {"status": "run", "output": [], "elapsed": 0})
                if (pkg, top) not in order:
                    order.append((pkg, top))
                t["output"].append(text)
            else:
                pkg_output.setdefault(pkg, []).append(text)
            continue
        if test and "/" not in test:
            t = tests.setdefault((pkg, test), {"status": "run", "output": [], "elapsed": 0})
            if (pkg, test) not in order:
                order.append((pkg, test))
            if action in ("pass", "fail", "skip"):
                t["status"] = action
                t["elapsed"] = ev.get("Elapsed") or 0
        elif not test and action == "fail":
            pkg_failed[pkg] = ev.get("FailedBuild", "")
    rc = proc.wait()

    results = []
    keys_seen = {}
    for pkg, name in order:
        keys_seen[name] = keys_seen.get(name, 0) + 1
    for pkg, name in order:
        t = tests[(pkg, name)]
        if t["status"] == "skip":
            continue
        passed = t["status"] == "pass"
        key = name if keys_seen[name] == 1 else f"{pkg}.{name}"
        message = ""
        if not passed:
            message = tidy_test_output(t["output"])
            if t["status"] == "run":
                # Started but never finished: the binary panicked or timed out.
                tail = tidy_test_output(pkg_output.get(pkg, []))
                message = (message + "\n" + tail).strip() or "the test did not finish"
            message = clip(message or "failed")
        results.append({"key": key, "name": f"{name} ({pkg})", "passed": passed,
                        "weight": 1, "message": message,
                        "duration_ms": int(float(t["elapsed"]) * 1000)})
    for pkg, failed_build in pkg_failed.items():
        has_tests = any(p == pkg for p, _ in order)
        if has_tests and not failed_build:
            continue
        text = "".join(build_output.get(failed_build or pkg, [])) or \
            "".join(build_output.get(pkg, [])) or tidy_test_output(pkg_output.get(pkg, []))
        results.append({"key": f"build:{pkg}", "name": f"{pkg} builds", "passed": False,
                        "weight": 1, "message": clip(text or "the package did not build"),
                        "duration_ms": 0})
    if not results and (rc != 0 or stray):
        results.append({"key": "build", "name": "go test runs", "passed": False, "weight": 1,
                        "message": clip("\n".join(stray) or f"go test exited {rc}"),
                        "duration_ms": 0})
    if not results:
        results.append({"key": "no-tests", "name": "go test found tests", "passed": False,
                        "weight": 1, "message": "no test ran", "duration_ms": 0})
    write_results(results)
    passed = sum(r["passed"] for r in results)
    print(f"\n{passed} passed, {len(results) - passed} failed", flush=True)
    return 0 if passed == len(results) else 1


# ---------------------------------------------------------------------------------------------
# Hidden runs: one compiled binary, one process per check


ERROR_LINE = re.compile(r"^\s*[\w.-]+_test\.go:\d+: ?")


def race_summary(out):
    """' in F (file:line) and G (file:line)': the first non-runtime frames of a race report."""
    lines = out[out.index("WARNING: DATA RACE"):].splitlines()
    frames = []
    for i, line in enumerate(lines[:80]):
        m = re.match(r"^\s*(Read|Write|Previous read|Previous write) at ", line)
        if not m:
            continue
        for j in range(i + 1, min(i + 30, len(lines) - 1), 2):
            fn, loc = lines[j].strip(), lines[j + 1].strip()
            if fn.startswith(("runtime.", "internal/", "sync.", "sync/")) or loc.startswith("/usr/"):
                continue
            loc = loc.split(" +0x")[0].replace("/work/", "")
            fn = re.sub(r"\(\)$", "", fn)
            frames.append(f"{fn} ({loc})")
            break
        if len(frames) == 2:
            break
    return (" in " + " and ".join(frames)) if frames else ""


def run_check(binary, pkgdir, check, default_timeout, deadline):
    test = check["test"]
    left = int(deadline - time.time())
    if left < 2:
        return {"key": check["key"], "name": check["name"], "passed": False,
                "weight": check["weight"], "duration_ms": 0, "_output": "",
                "message": "not run: the grading time budget ran out (earlier checks hung)."}
    timeout = min(check.get("timeout_seconds", default_timeout), left)
    cmd = [binary, "-test.v", "-test.count=1", f"-test.run=^{re.escape(test)}$",
           f"-test.timeout={timeout}s"]
    started = time.time()
    proc = subprocess.Popen(cmd, cwd=pkgdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, errors="replace", start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout + 5)
        timed_out = False
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, _ = proc.communicate()
        timed_out = True
    elapsed = int((time.time() - started) * 1000)
    passed = (not timed_out and proc.returncode == 0
              and re.search(rf"^--- PASS: {re.escape(test)} ", out, re.M) is not None)
    message = ""
    if not passed:
        if timed_out or "panic: test timed out" in out:
            message = f"did not finish within {timeout} s (a hang or deadlock)."
            msgs = [ERROR_LINE.sub("", l) for l in out.splitlines() if ERROR_LINE.match(l)]
            if msgs:
                message += " Before that: " + " ".join(msgs)
        elif re.search(rf"^--- FAIL: {re.escape(test)} ", out, re.M) is None and "panic:" in out:
            panic = out[out.index("panic:"):].splitlines()
            message = "the code panicked: " + " ".join(panic[:6])
        elif re.search(rf"^--- (PASS|FAIL): {re.escape(test)} ", out, re.M) is None:
            message = "the test did not run: " + tidy_test_output(out.splitlines())
        else:
            msgs = [ERROR_LINE.sub("", l).rstrip() for l in out.splitlines()
                    if ERROR_LINE.match(l)]
            if "WARNING: DATA RACE" in out:
                msgs.append("The race detector reported a data race" + race_summary(out) + ".")
            message = "\n".join(msgs) or tidy_test_output(out.splitlines())
        message = clip(message or "failed")
    return {"key": check["key"], "name": check["name"], "passed": passed,
            "weight": check["weight"], "message": message, "duration_ms": elapsed,
            "_output": out}


def grade(checks_path):
    spec = json.load(open(checks_path))
    checks = spec["checks"]

    def all_failed(message):
        write_results([{"key": c["key"], "name": c["name"], "passed": False,
                        "weight": c["weight"], "message": clip(message), "duration_ms": 0}
                       for c in checks])
        print(message, flush=True)
        return 1

    try:
        seed_gocache()
        here = os.path.dirname(os.path.abspath(checks_path))
        pkgdir = os.path.normpath(os.path.join(os.getcwd(), spec["package"]))
        if not os.path.isdir(pkgdir):
            return all_failed(f"the package {spec['package']} is missing from the submission.")
        if spec.get("remove_candidate_tests", True):
            for name in os.listdir(pkgdir):
                if name.endswith("_test.go"):
                    os.remove(os.path.join(pkgdir, name))
        for name in spec["files"]:
            shutil.copyfile(os.path.join(here, name),
                            os.path.join(pkgdir, "zz_clarity_" + os.path.basename(name)))
        binary = "/tmp/clarity-hidden.test"
        cmd = ["go", "test", "-c", "-o", binary] + spec.get("build_flags", []) + [spec["package"]]
        print("$ " + " ".join(cmd), flush=True)
        started = time.time()
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, errors="replace",
                               timeout=spec.get("build_timeout_seconds", 120))
        except subprocess.TimeoutExpired:
            return all_failed("the code did not compile in time.")
        print(f"compiled in {time.time() - started:.1f}s", flush=True)
        if r.returncode != 0 or not os.path.exists(binary):
            out = (r.stdout + r.stderr).replace("zz_clarity_", "")
            return all_failed("the code does not build: " + out)

        default_timeout = spec.get("test_timeout_seconds", 20)
        deadline = time.time() + spec.get("budget_seconds", 60)
        with ThreadPoolExecutor(max_workers=spec.get("parallel", 2)) as pool:
            results = list(pool.map(
                lambda c: run_check(binary, pkgdir, c, default_timeout, deadline), checks))
        for res in results:
            mark = "PASS" if res["passed"] else "FAIL"
            print(f"--- {mark} {res['key']} ({res['duration_ms']} ms) {res['name']}")
            if not res["passed"]:
                print("    " + res["message"].replace("\n", "\n    "))
            del res["_output"]
        write_results(results)
        total = sum(c["weight"] for c in checks)
        got = sum(r["weight"] for r in results if r["passed"])
        passed = sum(r["passed"] for r in results)
        print(f"\nscore {got}/{total} ({100.0 * got / total:.1f}%)")
        print(f"{passed} passed, {len(results) - passed} failed", flush=True)
        return 0 if passed == len(results) else 1
    except Exception as e:  # never leave without a results file
        return all_failed(f"the grader failed: {type(e).__name__}: {e}")


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "grade":
        return grade(sys.argv[2])
    try:
        return visible(sys.argv[1:])
    except Exception as e:
        write_results([{"key": "harness", "name": "go test runs", "passed": False, "weight": 1,
                        "message": f"the harness failed: {type(e).__name__}: {e}",
                        "duration_ms": 0}])
        return 1


if __name__ == "__main__":
    sys.exit(main())
