#!/usr/bin/env node
// Clarity runner: runs a Node/TypeScript suite's visible tests with node's built-in test runner
// (TypeScript through tsx, prepared in /work/node_modules) and writes $CLARITY_RESULTS
// (docs/runner.md): one entry per test case; a test file that cannot load (syntax, import or
// TypeScript transform error, a crash, a timeout) becomes a failing entry carrying its output.
//
//   node /harness/node_tests.mjs [--typecheck] [--test-timeout-ms N] [--wall-seconds N] <file|dir>...
//
// Directories are searched for *.test.ts / *.test.mts / *.test.js / *.test.mjs (node_modules
// skipped). --typecheck adds an entry for `tsc --noEmit` when /work/tsconfig.json exists.
// Human-readable output (node's spec reporter) goes to stdout. Exit status 0 iff every entry passed.
//
// The same file is loaded by `node --test` as its custom reporter (CLARITY_NODE_TESTS_REPORTER=1):
// it then turns the runner's events into JSON lines for the parent process.
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const SELF = fileURLToPath(import.meta.url);

/** Reporter mode: node:test events in, one JSON line per interesting event out. */
export default async function* reporter(source) {
  for await (const event of source) {
    const d = event.data ?? {};
    if (event.type === "test:pass" || event.type === "test:fail") {
      const err = d.details?.error;
      yield JSON.stringify({
        type: event.type === "test:pass" ? "pass" : "fail",
        name: d.name,
        nesting: d.nesting,
        file: d.file ?? null,
        skip: d.skip !== undefined && d.skip !== false,
        todo: d.todo !== undefined && d.todo !== false,
        suite: d.details?.type === "suite",
        duration_ms: Math.round(d.details?.duration_ms ?? 0),
        error: err ? describeError(err) : null,
        failureType: err?.failureType ?? null,
      }) + "\n";
    } else if (event.type === "test:stderr" || event.type === "test:stdout") {
      yield JSON.stringify({ type: "output", file: d.file ?? null, text: String(d.message ?? "") }) + "\n";
    } else if (event.type === "test:dequeue" || event.type === "test:start") {
      yield JSON.stringify({ type: "start", name: d.name, nesting: d.nesting, file: d.file ?? null }) + "\n";
    }
  }
}

function describeError(err) {
  // node:test wraps the thrown error: failureType + cause.
  const cause = err.cause ?? err;
  let text = "";
  if (cause && typeof cause === "object") {
    text = cause.message ?? String(cause);
    if (cause.code === "ERR_ASSERTION" && "expected" in cause && "actual" in cause && !/\n/.test(text)) {
      text += ` (expected ${safe(cause.expected)}, got ${safe(cause.actual)})`;
    }
  } else {
    text = String(cause);
  }
  return text.length > 1500 ? `${text.slice(0, 1500)}…` : text;
}

function safe(v) {
  try {
    const s = typeof v === "string" ? JSON.stringify(v) : JSON.stringify(v) ?? String(v);
    return s.length > 200 ? `${s.slice(0, 200)}…` : s;
  } catch {
    return String(v);
  }
}

// ---------------------------------------------------------------------------------------------
// Main mode.
// ---------------------------------------------------------------------------------------------

const TEST_FILE = /\.test\.(ts|mts|cts|js|mjs|cjs)$/;

function collect(target, out) {
  if (!existsSync(target)) return;
  const st = statSync(target);
  if (st.isFile()) {
    out.push(target);
  } else if (st.isDirectory()) {
    for (const name of readdirSync(target).sort()) {
      if (name === "node_modules" || name.startsWith(".")) continue;
      const p = join(target, name);
      const s = statSync(p);
      if (s.isDirectory()) collect(p, out);
      else if (TEST_FILE.test(name)) out.push(p);
    }
  }
}

function clip(text, max = 2000) {
  const t = text.trim();
  return t.length > max ? `${t.slice(0, max)}…` : t;
}

function run(cmd, args, { wallMs, onStdout, env }) {
  return new Promise((resolveRun) => {
    const child = spawn(cmd, args, { cwd: process.cwd(), env: env ?? process.env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        child.kill("SIGKILL");
      }
    }, wallMs);
    child.stdout.on("data", (b) => {
      stdout += b;
      onStdout?.(b);
    });
    child.stderr.on("data", (b) => {
      stderr += b;
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolveRun({ code, signal, stdout, stderr, timedOut });
    });
    child.on("error", (e) => {
      clearTimeout(timer);
      resolveRun({ code: 127, signal: null, stdout, stderr: stderr + String(e), timedOut });
    });
  });
}

async function typecheck(entries, wallMs) {
  if (!existsSync("tsconfig.json")) return;
  const tsc = resolve("node_modules/typescript/bin/tsc");
  const started = Date.now();
  if (!existsSync(tsc)) {
    entries.push({ name: "TypeScript type check (tsc --noEmit)", passed: false, message: "typescript is not installed in node_modules", duration_ms: 0 });
    return;
  }
  const r = await run(process.execPath, [tsc, "--noEmit", "--pretty", "false"], { wallMs });
  const out = (r.stdout + r.stderr).trim();
  const errors = out.split("\n").filter((l) => /error TS\d+/.test(l));
  const passed = r.code === 0 && !r.timedOut;
  const entry = {
    name: "TypeScript type check (tsc --noEmit)",
    passed,
    message: passed
      ? ""
      : r.timedOut
        ? `tsc did not finish within ${Math.round(wallMs / 1000)} s`
        : `${errors.length || "some"} type error(s): ${clip(errors.slice(0, 10).join("\n") || out, 1500)}`,
    duration_ms: Date.now() - started,
  };
  entries.push(entry);
  process.stdout.write(passed ? `✔ ${entry.name}\n` : `✖ ${entry.name}\n${out}\n`);
}

async function main(argv) {
  let doTypecheck = false;
  let testTimeoutMs = 10_000;
  let wallSeconds = 60;
  const targets = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--typecheck") doTypecheck = true;
    else if (a === "--test-timeout-ms") testTimeoutMs = Number(argv[++i]);
    else if (a === "--wall-seconds") wallSeconds = Number(argv[++i]);
    else targets.push(a);
  }
  const resultsPath = process.env.CLARITY_RESULTS ?? "/results/results.json";
  const entries = [];
  const write = () => writeFileSync(resultsPath, JSON.stringify({ tests: entries }, null, 2) + "\n");

  const files = [];
  for (const t of targets.length ? targets : ["test"]) collect(resolve(t), files);

  // The type check runs beside the tests (it is the slow part); its entry comes first.
  const typeEntries = [];
  const typing = doTypecheck ? typecheck(typeEntries, wallSeconds * 1000) : Promise.resolve();

  if (files.length === 0) {
    await typing;
    entries.push(...typeEntries);
    entries.push({ name: "test files", passed: false, message: `no test files found in ${targets.join(", ") || "test"}`, duration_ms: 0 });
    process.stdout.write(`no test files found\n`);
    write();
    return 1;
  }
  if (!existsSync("node_modules/tsx")) {
    await typing;
    entries.push(...typeEntries);
    entries.push({ name: "test toolchain", passed: false, message: "node_modules/tsx is missing: the suite's toolchain was not prepared", duration_ms: 0 });
    write();
    return 1;
  }

  // Readable output: node's spec reporter on stdout; our reporter as JSON lines to a file.
  const eventsPath = join(process.env.TMPDIR ?? "/tmp", `clarity-node-tests-${process.pid}.jsonl`);
  const args = [
    "--import", "tsx",
    "--test",
    `--test-timeout=${testTimeoutMs}`,
    "--test-reporter=spec", "--test-reporter-destination=stdout",
    `--test-reporter=${SELF}`, `--test-reporter-destination=${eventsPath}`,
    ...files,
  ];
  const env = { ...process.env, CLARITY_NODE_TESTS_REPORTER: "1", NODE_ENV: process.env.NODE_ENV ?? "test" };
  const r = await run(process.execPath, args, { wallMs: wallSeconds * 1000, env, onStdout: (b) => process.stdout.write(b) });
  if (r.stderr) process.stdout.write(r.stderr);

  await typing;
  entries.push(...typeEntries);

  let events = [];
  try {
    events = readFileSync(eventsPath, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
  } catch {
    events = [];
  }

  // Rebuild "suite > test" names: children complete before their parent, at nesting + 1.
  const output = new Map(); // file -> text
  const pendingByFile = new Map(); // file -> Map(nesting -> entries[])
  const startedByFile = new Map(); // file -> Set of names started but not finished
  const fileEntries = [];
  for (const ev of events) {
    const file = ev.file ?? "";
    if (ev.type === "output") {
      output.set(file, (output.get(file) ?? "") + ev.text);
      continue;
    }
    if (ev.type === "start") {
      if (ev.name !== file) {
        if (!startedByFile.has(file)) startedByFile.set(file, new Set());
        startedByFile.get(file).add(ev.name);
      }
      continue;
    }
    startedByFile.get(file)?.delete(ev.name);
    if (ev.name === file && ev.nesting === 0) {
      // The per-file wrapper node 20 reports for each test file.
      if (ev.type === "fail") fileEntries.push(ev);
      continue;
    }
    if (!pendingByFile.has(file)) pendingByFile.set(file, new Map());
    const pending = pendingByFile.get(file);
    const children = pending.get(ev.nesting + 1) ?? [];
    pending.delete(ev.nesting + 1);
    const level = pending.get(ev.nesting) ?? [];
    if (children.length > 0 || ev.suite) {
      for (const c of children) level.push({ ...c, name: `${ev.name} > ${c.name}` });
      if (children.length === 0 && ev.type === "fail") {
        level.push({ name: ev.name, passed: false, message: ev.error ?? "suite failed", duration_ms: ev.duration_ms, file });
      }
    } else if (!ev.skip && !ev.todo) {
      level.push({ name: ev.name, passed: ev.type === "pass", message: ev.type === "pass" ? "" : ev.error ?? "failed", duration_ms: ev.duration_ms, file });
    }
    pending.set(ev.nesting, level);
  }
  for (const [file, pending] of pendingByFile) {
    const rel = relative(process.cwd(), file) || file;
    const levels = [...pending.keys()].sort((a, b) => a - b);
    for (const lvl of levels) {
      for (const e of pending.get(lvl)) entries.push({ name: `${rel}: ${e.name}`, passed: e.passed, message: e.message, duration_ms: e.duration_ms });
    }
  }
  for (const ev of fileEntries) {
    const rel = relative(process.cwd(), ev.file) || ev.file;
    const out = clip(output.get(ev.file) ?? "", 1800);
    const unfinished = [...(startedByFile.get(ev.file) ?? [])];
    let why;
    if (ev.failureType === "testTimeoutFailure") {
      why = `timed out${unfinished.length ? ` in "${unfinished.join('", "')}"` : ""}: ${ev.error}`;
    } else if (ev.failureType === "subtestsFailed" || /subtests? failed/.test(ev.error ?? "")) {
      continue; // its failing tests are already entries
    } else {
      const hasTests = pendingByFile.has(ev.file);
      why = hasTests ? `the test file failed after its tests ran: ${ev.error}` : `the test file could not run (${ev.error})`;
    }
    entries.push({ name: `${rel}`, passed: false, message: out ? `${why}\n${out}` : why, duration_ms: ev.duration_ms });
  }
  if (r.timedOut) {
    entries.push({ name: "test run", passed: false, message: `the test run did not finish within ${wallSeconds} s and was stopped`, duration_ms: wallSeconds * 1000 });
  } else if (events.length === 0) {
    entries.push({ name: "test run", passed: false, message: `node --test produced no results (exit ${r.code ?? r.signal}): ${clip(r.stderr || r.stdout, 1500)}`, duration_ms: 0 });
  } else if (r.code !== 0 && entries.every((e) => e.passed)) {
    entries.push({ name: "test run", passed: false, message: `node --test exited with status ${r.code ?? r.signal} although no test failed: ${clip(r.stderr, 1500)}`, duration_ms: 0 });
  }

  write();
  const failed = entries.filter((e) => !e.passed).length;
  process.stdout.write(`\n${entries.length - failed} passed, ${failed} failed (results in ${resultsPath})\n`);
  return failed === 0 ? 0 : 1;
}

if (process.env.CLARITY_NODE_TESTS_REPORTER !== "1") {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
      // The harness itself failed: still leave a results file saying so.
      try {
        writeFileSync(process.env.CLARITY_RESULTS ?? "/results/results.json", JSON.stringify({ tests: [{ name: "test harness", passed: false, message: `the test harness failed: ${err?.stack ?? err}`, duration_ms: 0 }] }) + "\n");
      } catch {}
      console.error(err);
      process.exit(1);
    },
  );
}
