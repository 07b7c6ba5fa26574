// Hidden grading for the Node/TypeScript suites (docs/runner.md), in the runner's harness:
//
//   node /harness/node_grade.mjs /grader/hidden/checks.mjs   supervisor: plain node, never loads
//                                                            candidate code
//   node --import tsx node_grade.mjs --child K,…             worker: runs the named checks
//
// The checks live in the suite's checks module (plain JS: the worker imports the candidate's TypeScript
// through tsx from inside each check, so a compile error fails checks, not the grader). The
// supervisor runs one worker process at a time over the checks still to do, reads each
// result from the worker's fd 3, and enforces each check's timeout by killing the worker and
// starting a fresh one for the rest: a hang, an infinite loop or a process.exit() in the
// candidate's code fails that one check. It always writes $CLARITY_RESULTS with every check.
import { spawn } from "node:child_process";
import { existsSync, writeFileSync, writeSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const SELF = fileURLToPath(import.meta.url);
// The suite's checks module: the supervisor's argument, handed to its workers in the environment.
if (process.argv[2] && !process.argv[2].startsWith("--")) process.env.CLARITY_CHECKS = resolve(process.argv[2]);
const CHECKS = process.env.CLARITY_CHECKS ?? join(dirname(SELF), "checks.mjs");
const BUDGET_MS = Number(process.env.CLARITY_GRADE_BUDGET_MS ?? 50_000);
const DEFAULT_TIMEOUT_MS = 5_000;
const LOG_LIMIT = 200_000;

function clip(text, max = 600) {
  const t = String(text ?? "").trim();
  return t.length > max ? `${t.slice(0, max)}…` : t;
}

async function child(keys) {
  const { checks } = await import(pathToFileURL(CHECKS).href);
  const emit = (obj) => writeSync(3, JSON.stringify(obj) + "\n");
  for (const key of keys) {
    const check = checks.find((c) => c.key === key);
    emit({ type: "start", key });
    const started = performance.now();
    let passed = false;
    let message = "";
    try {
      const timeoutMs = check.timeoutMs ?? DEFAULT_TIMEOUT_MS;
      let timer;
      await Promise.race([
        check.run(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`did not finish within ${timeoutMs / 1000} s (a request or call never completed)`)), timeoutMs);
        }),
      ]).finally(() => clearTimeout(timer));
      passed = true;
    } catch (err) {
      message = clip(err?.message ?? String(err), 900) || "failed";
    }
    emit({ type: "result", key, passed, message, duration_ms: Math.round(performance.now() - started) });
  }
  // Candidate code may keep handles open (servers, intervals): leave now.
  process.exit(0);
}

async function supervisor() {
  const { checks } = await import(pathToFileURL(CHECKS).href);
  const resultsPath = process.env.CLARITY_RESULTS ?? "/results/results.json";
  const results = new Map();
  const write = () => {
    const tests = checks.map((c) => {
      const r = results.get(c.key);
      return {
        key: c.key,
        name: c.name,
        weight: c.weight,
        passed: r?.passed ?? false,
        message: r ? r.message : "not run: the grading time budget ran out before this check",
        duration_ms: r?.duration_ms ?? 0,
      };
    });
    writeFileSync(resultsPath, JSON.stringify({ tests }, null, 2) + "\n");
    return tests;
  };
  write(); // a results file exists even if we are killed

  const deadline = Date.now() + BUDGET_MS;
  let logged = 0;
  const log = (b) => {
    if (logged < LOG_LIMIT) process.stdout.write(b.subarray(0, LOG_LIMIT - logged));
    logged += b.length;
  };

  if (!existsSync("node_modules/tsx")) {
    for (const c of checks) results.set(c.key, { passed: false, message: "the Node toolchain (node_modules/tsx) is missing, so nothing could run", duration_ms: 0 });
  }

  while (Date.now() < deadline) {
    const todo = checks.filter((c) => !results.has(c.key)).map((c) => c.key);
    if (todo.length === 0) break;
    await new Promise((resolveWorker) => {
      const worker = spawn(process.execPath, ["--import", "tsx", SELF, "--child", todo.join(",")], {
        cwd: process.cwd(),
        env: { ...process.env, NODE_ENV: "test", CLARITY_GRADE_CHILD: "1" },
        stdio: ["ignore", "pipe", "pipe", "pipe"],
        detached: true,
      });
      let current = null;
      let currentStarted = 0;
      let stderrTail = "";
      let buf = "";
      let killedFor = null;
      const kill = () => {
        try {
          process.kill(-worker.pid, "SIGKILL");
        } catch {
          worker.kill("SIGKILL");
        }
      };
      const watchdog = setInterval(() => {
        const now = Date.now();
        if (current) {
          const c = checks.find((x) => x.key === current);
          const limit = (c.timeoutMs ?? DEFAULT_TIMEOUT_MS) + 2_000;
          if (now - currentStarted > limit) {
            killedFor = current;
            results.set(current, { passed: false, message: `did not finish within ${Math.round(limit / 1000)} s; the process was stopped (the code under test blocked or hung)`, duration_ms: now - currentStarted });
            kill();
          }
        } else if (now - startedAt > 15_000) {
          killedFor = "startup";
          kill();
        }
        if (now > deadline) {
          killedFor = "deadline";
          kill();
        }
      }, 100);
      const startedAt = Date.now();
      worker.stdout.on("data", log);
      worker.stderr.on("data", (b) => {
        log(b);
        stderrTail = (stderrTail + b).slice(-4000);
      });
      worker.stdio[3].on("data", (b) => {
        buf += b;
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          let ev;
          try {
            ev = JSON.parse(line);
          } catch {
            continue;
          }
          if (ev.type === "start") {
            current = ev.key;
            currentStarted = Date.now();
          } else if (ev.type === "result") {
            results.set(ev.key, { passed: ev.passed, message: ev.message, duration_ms: ev.duration_ms });
            process.stdout.write(`${ev.passed ? "PASS" : "FAIL"} ${ev.key} (${ev.duration_ms} ms)${ev.passed ? "" : `: ${ev.message}`}\n`);
            current = null;
            write();
          }
        }
      });
      worker.on("close", (code, signal) => {
        clearInterval(watchdog);
        if (current && !results.has(current) && killedFor === "deadline") {
          results.set(current, { passed: false, message: `stopped after ${Math.round((Date.now() - currentStarted) / 1000)} s: the grading time budget ran out during this check`, duration_ms: Date.now() - currentStarted });
        } else if (current && !results.has(current)) {
          // The worker died in the middle of a check (process.exit, a crash, out of memory).
          results.set(current, { passed: false, message: `the process ended during this check (exit ${code ?? signal}): ${clip(stderrTail, 700)}`, duration_ms: Date.now() - currentStarted });
        } else if (!current && killedFor === "startup") {
          for (const k of todo) if (!results.has(k)) results.set(k, { passed: false, message: "the grader could not start within 15 s", duration_ms: 0 });
        } else if (!current && todo.every((k) => !results.has(k))) {
          // Nothing ran at all: the worker could not even start.
          for (const k of todo) results.set(k, { passed: false, message: `the grader could not start (exit ${code ?? signal}): ${clip(stderrTail, 700)}`, duration_ms: 0 });
        }
        if (current) process.stdout.write(`FAIL ${current}: ${results.get(current).message}\n`);
        resolveWorker();
      });
    });
  }
  const tests = write();
  const total = tests.reduce((s, t) => s + t.weight, 0);
  const got = tests.reduce((s, t) => s + (t.passed ? t.weight : 0), 0);
  process.stdout.write(`\nscore ${got}/${total} (${((100 * got) / total).toFixed(1)}%), ${tests.filter((t) => t.passed).length}/${tests.length} checks passed\n`);
  process.exit(tests.every((t) => t.passed) ? 0 : 1);
}

const i = process.argv.indexOf("--child");
if (i >= 0) {
  child(process.argv[i + 1].split(",").filter(Boolean)).catch((err) => {
    console.error(err);
    process.exit(70);
  });
} else {
  supervisor().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
