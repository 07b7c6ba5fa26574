"""The Async Task Queue's hidden checks. `python3 checks.py <group>` runs one group against the code
in the current directory (/work) and prints one line per check: @@CLARITY-CHECK {key, passed, message}.

Interfaces relied on (fixed by the starter and named in the prompt): jobqueue.pg.create_pool,
jobqueue/schema.sql, jobqueue.worker's Queue(pool).enqueue(kind, payload, *, dedupe_key, run_at,
priority) and .get(job_id) -> JobInfo(state in pending/running/succeeded/dead, attempts,
last_error, ...), Worker(pool, handlers, config) with run(), stop() and install_signal_handlers(),
WorkerConfig's fields, Job(id, kind, payload, attempt), TransientError, PermanentError,
retry_delay(attempt, config, rng), and handlers.registry(pool, storage)["make_thumbnail"] with
StorageUnavailable.
"""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from datetime import datetime, timedelta, timezone

HERE = pathlib.Path(__file__).resolve().parent
MARKER = "@@CLARITY-CHECK "
BASE_URL = os.environ.get("DATABASE_URL", "")
TERMINAL = ("succeeded", "dead")


class CheckFailed(Exception):
    pass


def expect(condition, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


# --- helpers -----------------------------------------------------------------------------------


async def fresh_pool(max_size: int = 8):
    """(pool, schema): a pool of the submission's client on a new schema with its schema.sql."""
    from jobqueue import pg

    schema = "g_" + uuid.uuid4().hex[:12]
    admin = await pg.connect(BASE_URL)
    await admin.execute(f"CREATE SCHEMA {schema}")
    await admin.close()
    pool = await pg.create_pool(BASE_URL, min_size=1, max_size=max_size, server_settings={"search_path": schema})
    try:
        await pool.execute(pathlib.Path("jobqueue/schema.sql").read_text())
    except Exception as exc:
        raise CheckFailed(f"jobqueue/schema.sql does not load: {exc}")
    return pool, schema


def config(**overrides):
    from jobqueue.worker import WorkerConfig

    values = dict(concurrency=4, lease=timedelta(seconds=2), max_attempts=5,
                  backoff_base=timedelta(milliseconds=20), backoff_cap=timedelta(milliseconds=200),
                  shutdown_grace=timedelta(seconds=2), poll_interval=timedelta(milliseconds=20))
    values.update(overrides)
    return WorkerConfig(**values)


class InProcessWorker:
    """A submission Worker running as a task of this event loop."""

    def __init__(self, pool, handlers, cfg):
        from jobqueue.worker import Worker

        self.worker = Worker(pool, handlers, cfg)
        self.task = asyncio.ensure_future(self.worker.run())

    async def stop(self, timeout: float = 5.0) -> None:
        self.worker.stop()
        try:
            await asyncio.wait_for(asyncio.shield(self.task), timeout)
        except asyncio.TimeoutError:
            self.task.cancel()
            raise CheckFailed(f"Worker.run() did not return within {timeout:g} s of stop()")
        except CheckFailed:
            raise
        except Exception as exc:
            raise CheckFailed(f"Worker.run() raised {type(exc).__name__}: {exc}")

    def check_alive(self) -> None:
        if self.task.done():
            exc = None if self.task.cancelled() else self.task.exception()
            raise CheckFailed(f"Worker.run() ended by itself: {type(exc).__name__}: {exc}" if exc
                              else "Worker.run() returned before stop() was called")


async def wait_for(predicate, timeout: float, what: str, workers=()):
    end = time.monotonic() + timeout
    while True:
        for w in workers:
            w.check_alive()
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > end:
            raise CheckFailed(f"{what() if callable(what) else what} (waited {timeout:g} s)")
        await asyncio.sleep(0.02)


async def state_of(queue, job_id):
    info = await queue.get(job_id)
    return None if info is None else info.state


class WorkerProcess:
    """The submission's Worker in its own process (driver.py), logging handler runs."""

    def __init__(self, schema: str, log_path: str, cfg: dict):
        self.log_path = log_path
        env = dict(os.environ, PYTHONPATH=os.getcwd(), PYTHONDONTWRITEBYTECODE="1")
        self.output = open(log_path + ".out", "ab")
        self.proc = subprocess.Popen([sys.executable, str(HERE / "driver.py"), schema, log_path, json.dumps(cfg)],
                                     stdout=self.output, stderr=subprocess.STDOUT, env=env)
        self.pid = self.proc.pid
        self.ended_at = None
        self.signal = None

    def send(self, sig) -> float:
        t = time.monotonic()
        self.signal = sig
        try:
            self.proc.send_signal(sig)
        except ProcessLookupError:
            pass
        return t

    def poll(self):
        code = self.proc.poll()
        if code is not None and self.ended_at is None:
            self.ended_at = time.monotonic()
        return code

    def kill(self) -> float:
        t = self.send(signal.SIGKILL)
        self.proc.wait()
        self.ended_at = self.ended_at or t
        return t

    def tail(self) -> str:
        try:
            return pathlib.Path(self.log_path + ".out").read_text(errors="replace")[-600:]
        except OSError:
            return ""


def read_events(paths) -> list[dict]:
    events = []
    for path in paths:
        try:
            with open(path, "rb") as f:
                for line in f:
                    if line.endswith(b"\n"):
                        try:
                            events.append(json.loads(line))
                        except ValueError:
                            pass
        except OSError:
            pass
    return events


async def wait_events(paths, predicate, timeout, what, procs=()):
    end = time.monotonic() + timeout
    while True:
        events = read_events(paths)
        found = predicate(events)
        if found:
            return found
        for p in procs:
            if p.poll() is not None and p.signal is None:
                raise CheckFailed(f"{what}: the worker process exited ({p.proc.returncode}): {p.tail()}")
        if time.monotonic() > end:
            raise CheckFailed(f"{what} (waited {timeout:g} s)")
        await asyncio.sleep(0.02)


def starts(events, job=None, pid=None):
    return [e for e in events if e["e"] == "start" and (job is None or e["job"] == job) and (pid is None or e["pid"] == pid)]


def ends(events, job=None, pid=None):
    return [e for e in events if e["e"] == "end" and (job is None or e["job"] == job) and (pid is None or e["pid"] == pid)]


# --- single checks -----------------------------------------------------------------------------


async def check_enqueue_and_get():
    from jobqueue.worker import Queue

    pool, _ = await fresh_pool()
    queue = Queue(pool)
    a = await queue.enqueue("ocr", {"document_id": 1})
    b = await queue.enqueue("ocr", {"document_id": 2}, priority=3)
    expect(isinstance(a, int) and isinstance(b, int) and a != b, f"enqueue returned {a!r} and {b!r}; expected two distinct integer ids")
    info = await queue.get(a)
    expect(info is not None and info.state == "pending" and info.attempts == 0 and info.kind == "ocr",
           f"get() of a new job returned {info!r}; expected state pending, 0 attempts, kind ocr")
    expect((await queue.get(b)).priority == 3, "get() did not report the priority given to enqueue")
    expect(await queue.get(10**12) is None, "get() of an unknown id did not return None")


async def check_dedupe_pending():
    from jobqueue.worker import Queue

    pool, _ = await fresh_pool()
    queue = Queue(pool)
    first = await queue.enqueue("thumb", {"document_id": 1}, dedupe_key="thumb:1")
    second = await queue.enqueue("thumb", {"document_id": 1}, dedupe_key="thumb:1")
    other = await queue.enqueue("thumb", {"document_id": 2}, dedupe_key="thumb:2")
    plain = [await queue.enqueue("thumb", {"document_id": 3}) for _ in range(2)]
    expect(first == second, f"enqueueing twice with one dedupe_key gave ids {first} and {second}")
    expect(other != first, "a different dedupe_key returned the same job")
    expect(plain[0] != plain[1], "two jobs without dedupe_key got the same id")


async def check_dedupe_after_finish():
    from jobqueue.worker import Queue

    pool, _ = await fresh_pool()
    queue = Queue(pool)
    ran = []

    async def ok(job):
        ran.append(job.id)

    first = await queue.enqueue("ok", {}, dedupe_key="k1")
    worker = InProcessWorker(pool, {"ok": ok}, config())
    try:
        await wait_for(lambda: _is(queue, first, "succeeded"), 6, "the job never reached state succeeded", [worker])
    finally:
        await worker.stop()
    again = await queue.enqueue("ok", {}, dedupe_key="k1")
    expect(again != first, f"after job {first} succeeded, enqueueing its dedupe_key again returned the finished job instead of a new one")


async def _is(queue, job_id, state):
    return await state_of(queue, job_id) == state


async def check_dedupe_concurrent():
    from jobqueue.worker import Queue

    pool, _ = await fresh_pool(max_size=8)
    queue = Queue(pool)
    ids = await asyncio.gather(*[queue.enqueue("thumb", {"n": i}, dedupe_key="same") for i in range(20)],
                               return_exceptions=True)
    errors = [i for i in ids if isinstance(i, BaseException)]
    expect(not errors, f"concurrent enqueues with one dedupe_key raised {type(errors[0]).__name__}: {errors[0]}" if errors else "")
    expect(len(set(ids)) == 1, f"20 concurrent enqueues with one dedupe_key created {len(set(ids))} jobs")


async def check_retry_delay_shape():
    from jobqueue.worker import retry_delay

    base, cap = 0.1, 5.0
    cfg = config(backoff_base=timedelta(seconds=base), backoff_cap=timedelta(seconds=cap))
    means = {}
    for attempt in range(1, 16):
        values = []
        for i in range(200):
            d = retry_delay(attempt, cfg, random.Random(i))
            expect(isinstance(d, timedelta), f"retry_delay returned {type(d).__name__}, not a timedelta")
            values.append(d.total_seconds())
        expect(min(values) >= 0 and max(values) <= cap + 1e-6,
               f"retry_delay({attempt}) ranged {min(values):.3f}..{max(values):.3f} s with backoff_cap {cap} s")
        means[attempt] = statistics.mean(values)
        if attempt in (2, 3, 4):
            expect(len(set(values)) >= 20, f"retry_delay({attempt}) gave {len(set(values))} distinct values over 200 seeds: no jitter")
    expect(0.2 * base <= means[1] <= 2.5 * base,
           f"the mean first retry delay is {means[1]:.3f} s with backoff_base {base} s")
    for k in (1, 2, 3, 4):
        ratio = means[k + 1] / means[k] if means[k] else 0
        expect(1.6 <= ratio <= 2.5, f"mean retry delay grew {ratio:.2f}x from attempt {k} to {k + 1} (expected about 2x: exponential)")
    expect(means[15] >= 0.25 * cap, f"the mean delay at attempt 15 is {means[15]:.3f} s: the backoff never reaches its cap of {cap} s")
    d = retry_delay(3, cfg)
    expect(isinstance(d, timedelta), "retry_delay without an rng did not return a timedelta")


async def check_transient_retried():
    from jobqueue.worker import Queue, TransientError

    pool, _ = await fresh_pool()
    queue = Queue(pool)
    attempts = []

    async def flaky(job):
        attempts.append(job.attempt)
        if job.attempt == 1:
            raise TransientError("storage timed out")
        if job.attempt == 2:
            raise RuntimeError("unexpected bug")

    job_id = await queue.enqueue("flaky", {})
    worker = InProcessWorker(pool, {"flaky": flaky}, config())
    try:
        await wait_for(lambda: _is(queue, job_id, "succeeded"), 6,
                       lambda: f"a job failing with TransientError then RuntimeError never succeeded (attempts seen {attempts})", [worker])
    finally:
        await worker.stop()
    info = await queue.get(job_id)
    expect(attempts == [1, 2, 3], f"the handler saw attempts {attempts}; expected [1, 2, 3]")
    expect(info.attempts == 3, f"get() reports {info.attempts} attempts after three runs")


async def check_permanent_dead():
    from jobqueue.worker import PermanentError, Queue

    pool, _ = await fresh_pool()
    queue = Queue(pool)
    runs = []

    async def bad(job):
        runs.append(job.attempt)
        raise PermanentError("malformed PDF xyz-17")

    job_id = await queue.enqueue("bad", {})
    worker = InProcessWorker(pool, {"bad": bad}, config())
    try:
        await wait_for(lambda: _is(queue, job_id, "dead"), 5, lambda: f"a job raising PermanentError never became dead (runs {runs})", [worker])
        await asyncio.sleep(0.3)
    finally:
        await worker.stop()
    info = await queue.get(job_id)
    expect(runs == [1], f"a job raising PermanentError ran {len(runs)} times; expected once")
    expect(info.last_error and "malformed PDF xyz-17" in info.last_error, f"the dead job's last_error is {info.last_error!r}")


async def check_max_attempts_dead():
    from jobqueue.worker import Queue, TransientError

    pool, _ = await fresh_pool()
    queue = Queue(pool)
    runs = []

    async def always(job):
        runs.append(job.attempt)
        raise TransientError(f"timeout number {job.attempt}")

    job_id = await queue.enqueue("always", {})
    worker = InProcessWorker(pool, {"always": always}, config(max_attempts=3))
    try:
        await wait_for(lambda: _is(queue, job_id, "dead"), 6, lambda: f"an always-failing job never became dead (attempts {runs})", [worker])
        await asyncio.sleep(0.3)
    finally:
        await worker.stop()
    info = await queue.get(job_id)
    expect(runs == [1, 2, 3], f"with max_attempts=3 an always-failing job ran attempts {runs}")
    expect(info.last_error and "timeout number 3" in info.last_error, f"the dead job's last_error is {info.last_error!r}, expected the last error")


async def check_priority():
    from jobqueue.worker import Queue

    pool, _ = await fresh_pool()
    queue = Queue(pool)
    order = []

    async def work(job):
        order.append(job.payload["name"])
        await asyncio.sleep(0.02)

    for i in range(150):
        await queue.enqueue("work", {"name": f"low{i}"})
    worker = InProcessWorker(pool, {"work": work}, config(concurrency=2))
    try:
        await wait_for(lambda: len(order) >= 10, 5, "the worker did not start 10 low-priority jobs", [worker])
        mark = len(order)
        for i in range(3):
            await queue.enqueue("work", {"name": f"high{i}"}, priority=10)
        await wait_for(lambda: all(f"high{i}" in order for i in range(3)), 5, "high-priority jobs never ran", [worker])
    finally:
        await worker.stop()
    late = [n for n in (f"high{i}" for i in range(3)) if order.index(n) - mark > 8]
    expect(not late, f"high-priority jobs enqueued behind 140 low-priority ones ran at positions "
           f"{[order.index(f'high{i}') - mark for i in range(3)]} after being enqueued (expected within the next 8 starts)")
    # equal priority: earliest run_at first
    pool2, _ = await fresh_pool()
    queue2 = Queue(pool2)
    order.clear()
    now = datetime.now(timezone.utc)
    for name, age in (("c", 10), ("b", 20), ("a", 30)):
        await queue2.enqueue("work", {"name": name}, run_at=now - timedelta(seconds=age))
    worker = InProcessWorker(pool2, {"work": work}, config(concurrency=1))
    try:
        await wait_for(lambda: len(order) == 3, 5, "three due jobs did not all run", [worker])
    finally:
        await worker.stop()
    expect(order == ["a", "b", "c"], f"jobs of equal priority ran in order {order}; expected the earliest run_at first (a, b, c)")


async def check_run_at_future():
    from jobqueue.worker import Queue

    pool, _ = await fresh_pool()
    queue = Queue(pool)
    started = {}

    async def work(job):
        started[job.payload["name"]] = time.monotonic()

    t0 = time.monotonic()
    await queue.enqueue("work", {"name": "later"}, run_at=datetime.now(timezone.utc) + timedelta(seconds=1.5))
    await queue.enqueue("work", {"name": "now"})
    worker = InProcessWorker(pool, {"work": work}, config())
    try:
        await wait_for(lambda: "later" in started, 5, "a job with run_at 1.5 s ahead never ran", [worker])
    finally:
        await worker.stop()
    expect("now" in started and started["now"] - t0 < 1.0, "a due job waited behind a future one")
    expect(started["later"] - t0 >= 1.4, f"a job with run_at 1.5 s ahead started after {started['later'] - t0:.2f} s")


async def check_lease_extended():
    from jobqueue.worker import Queue

    pool_a, _schema = await fresh_pool()
    from jobqueue import pg

    pool_b = await pg.create_pool(BASE_URL, min_size=1, max_size=6, server_settings={"search_path": _schema})
    queue = Queue(pool_a)
    runs = []

    async def long(job):
        runs.append(job.attempt)
        await asyncio.sleep(3.0)

    job_id = await queue.enqueue("long", {})
    cfg = config(lease=timedelta(seconds=1))
    a = InProcessWorker(pool_a, {"long": long}, cfg)
    b = InProcessWorker(pool_b, {"long": long}, cfg)
    try:
        await wait_for(lambda: _is(queue, job_id, "succeeded"), 7, lambda: f"a 3 s job with a 1 s lease never succeeded (runs {runs})", [a, b])
    finally:
        await a.stop()
        await b.stop()
    expect(runs == [1], f"a 3 s job with a 1 s lease was run {len(runs)} times by two workers (the lease was not extended)")


async def check_sigkill_recovery():
    from jobqueue.worker import Queue

    pool, schema = await fresh_pool()
    queue = Queue(pool)
    tmp = tempfile.mkdtemp()
    cfg = dict(concurrency=2, lease=1.5, max_attempts=5, backoff_base=0.02, backoff_cap=0.2,
               shutdown_grace=1.0, poll_interval=0.02)
    job_id = await queue.enqueue("slow", {"seconds": 1.0})
    a = WorkerProcess(schema, f"{tmp}/a.log", cfg)
    b = None
    try:
        await wait_events([a.log_path], lambda ev: starts(ev, job_id), 8, "worker A never started the job", [a])
        t_kill = a.kill()
        b = WorkerProcess(schema, f"{tmp}/b.log", cfg)
        got = await wait_events([b.log_path], lambda ev: starts(ev, job_id), 8,
                                "after its worker was SIGKILLed mid-job, the job never started in another worker", [b])
        await wait_for(lambda: _is(queue, job_id, "succeeded"), 5, "the job restarted elsewhere never succeeded")
    finally:
        for p in (a, b):
            if p is not None and p.poll() is None:
                p.kill()
    delay = got[0]["t"] - t_kill
    expect(delay >= 0, "the job started in worker B before worker A was killed: it ran twice at once")
    expect(delay <= 1.5 + 3.0, f"the killed worker's job restarted {delay:.1f} s after the kill with a 1.5 s lease")
    expect(ends(read_events([b.log_path]), job_id)[0]["outcome"] == "ok", "the job did not complete in worker B")


async def check_sigterm_graceful():
    from jobqueue.worker import Queue

    pool, schema = await fresh_pool()
    queue = Queue(pool)
    tmp = tempfile.mkdtemp()
    cfg = dict(concurrency=2, lease=20.0, max_attempts=5, backoff_base=0.02, backoff_cap=0.2,
               shutdown_grace=1.5, poll_interval=0.02)
    short = await queue.enqueue("slow", {"seconds": 0.6})
    long = await queue.enqueue("slow", {"seconds": 15})
    a = WorkerProcess(schema, f"{tmp}/a.log", cfg)
    b = None
    try:
        await wait_events([a.log_path], lambda ev: len(starts(ev)) >= 2, 8, "worker A never started both jobs", [a])
        third = await queue.enqueue("slow", {"seconds": 0.05})
        t_term = a.send(signal.SIGTERM)
        try:
            await asyncio.to_thread(a.proc.wait, 6)
        except subprocess.TimeoutExpired:
            raise CheckFailed("the worker had not exited 6 s after SIGTERM with a 1.5 s shutdown_grace")
        exited = time.monotonic() - t_term
        ev = read_events([a.log_path])
        expect(exited <= 1.5 + 2.5, f"the worker took {exited:.1f} s to exit after SIGTERM (shutdown_grace 1.5 s)")
        short_end = ends(ev, short)
        expect(short_end and short_end[0]["outcome"] == "ok",
               f"the 0.6 s job running at SIGTERM did not finish (outcome {short_end[0]['outcome'] if short_end else 'none'}); running jobs get the grace period")
        long_end = ends(ev, long)
        expect(long_end and long_end[0]["outcome"] == "cancelled",
               "the 15 s job was not cancelled at the end of the grace period")
        expect(not starts(ev, third), "the worker claimed a new job after SIGTERM")
        b = WorkerProcess(schema, f"{tmp}/b.log", cfg)
        got = await wait_events([b.log_path], lambda ev: starts(ev, long) and starts(ev, third), 5,
                                "the cancelled job (lease 20 s) or the queued one was not picked up by a new worker within 5 s: "
                                "the lease was not released", [b])
        expect(await state_of(queue, short) == "succeeded", "the job that finished during the grace period is not succeeded")
    finally:
        for p in (a, b):
            if p is not None and p.poll() is None:
                p.kill()


async def check_thumbnail_idempotent():
    from jobqueue.handlers import registry
    from jobqueue.worker import Job

    pool, _ = await fresh_pool()

    class Storage:
        def __init__(self):
            self.objects = {"uploads/7.png": b"\x89PNG original"}

        async def get(self, key):
            return self.objects[key]

        async def put(self, key, data, content_type):
            self.objects[key] = data

    storage = Storage()
    await pool.execute("INSERT INTO documents (id, account_id, storage_key, content_type) VALUES (7, 1, 'uploads/7.png', 'image/png')")
    handler = registry(pool, storage)["make_thumbnail"]
    for attempt in (1, 2, 3):
        await handler(Job(41, "make_thumbnail", {"document_id": 7}, attempt))
    thumbs = [k for k in storage.objects if k != "uploads/7.png"]
    rows = await pool.fetch("SELECT storage_key FROM document_thumbnails WHERE document_id = 7")
    expect(len(thumbs) == 1 and len(rows) == 1,
           f"running make_thumbnail three times for one document left {len(thumbs)} stored objects and {len(rows)} thumbnail rows (expected 1 and 1)")
    expect(rows[0]["storage_key"] == thumbs[0], "the thumbnail row does not point at the stored object")


async def check_thumbnail_errors():
    from jobqueue.handlers import StorageUnavailable, registry
    from jobqueue.worker import Job, PermanentError, TransientError

    pool, _ = await fresh_pool()

    class Storage:
        async def get(self, key):
            raise StorageUnavailable("503 from storage")

        async def put(self, key, data, content_type):
            raise AssertionError("nothing to store")

    handler = registry(pool, Storage())["make_thumbnail"]
    await pool.execute("INSERT INTO documents (id, account_id, storage_key, content_type) VALUES"
                       " (1, 1, 'a.pdf', 'application/pdf'), (2, 1, 'b.png', 'image/png')")
    for doc, expected, why in ((99, PermanentError, "a deleted document"), (1, PermanentError, "a PDF"),
                               (2, TransientError, "storage unavailable")):
        try:
            await handler(Job(1, "make_thumbnail", {"document_id": doc}, 1))
        except expected:
            continue
        except Exception as exc:
            raise CheckFailed(f"for {why} make_thumbnail raised {type(exc).__name__}, expected {expected.__name__}")
        raise CheckFailed(f"for {why} make_thumbnail raised nothing, expected {expected.__name__}")


# --- the stress harness ------------------------------------------------------------------------

STRESS_JOBS = 3000
STRESS_WORKERS = 3
STRESS_CFG = dict(concurrency=8, lease=2.0, max_attempts=4, backoff_base=0.05, backoff_cap=0.4,
                  shutdown_grace=1.0, poll_interval=0.02)
STRESS_DEADLINE = 33.0


def design(i: int, rng: random.Random) -> dict:
    r = rng.random()
    ms = rng.randint(2, 25)
    if r < 0.02:
        return {"mode": "permanent", "ms": ms}
    if r < 0.05:
        return {"mode": "always", "ms": ms}
    if r < 0.10:
        return {"mode": "ok", "fail": 2, "ms": ms}
    if r < 0.25:
        return {"mode": "ok", "fail": 1, "ms": ms}
    return {"mode": "ok", "fail": 0, "ms": ms}


async def stress_group() -> dict:
    from jobqueue.worker import Queue, WorkerConfig, retry_delay

    keys = ["stress_none_lost", "stress_no_concurrent_runs", "stress_retry_spacing", "stress_dead_jobs"]
    verdicts = {}
    t_begin = time.monotonic()
    pool, schema = await fresh_pool(max_size=4)
    queue = Queue(pool)
    rng = random.Random(20251207)
    designs = [design(i, rng) for i in range(STRESS_JOBS)]
    ids: list[int] = []
    for chunk in range(0, STRESS_JOBS, 40):
        ids += await asyncio.gather(*[queue.enqueue("stress", dict(d, n=i)) for i, d in
                                      enumerate(designs[chunk:chunk + 40], start=chunk)])
    by_id = dict(zip(ids, designs))
    expect(len(by_id) == STRESS_JOBS, f"{STRESS_JOBS} enqueues returned {len(by_id)} distinct ids")
    enqueue_s = time.monotonic() - t_begin
    tmp = tempfile.mkdtemp()
    procs: list[WorkerProcess] = []
    seq = [0]

    def spawn():
        seq[0] += 1
        procs.append(WorkerProcess(schema, f"{tmp}/w{seq[0]}.log", STRESS_CFG))

    for _ in range(STRESS_WORKERS):
        spawn()
    chaos = [signal.SIGKILL, signal.SIGTERM, signal.SIGKILL, signal.SIGTERM, signal.SIGKILL, signal.SIGTERM,
             signal.SIGKILL, signal.SIGTERM]
    kills: dict[int, float] = {}
    chaos_done: list = []
    next_chaos = time.monotonic() + 1.0
    deadline = t_begin + STRESS_DEADLINE
    finished = False
    ok_ids: set[int] = set()
    while time.monotonic() < deadline:
        events = read_events([p.log_path for p in procs])
        ok_ids = {e["job"] for e in events if e["e"] == "end" and e["outcome"] == "ok"}
        done_fraction = len(ok_ids) / STRESS_JOBS
        for p in procs:
            p.poll()
        live = [p for p in procs if p.poll() is None and p.signal is None]
        if chaos and time.monotonic() >= next_chaos and done_fraction < 0.9 and live:
            victim = rng.choice(live)
            sig = chaos.pop(0)
            t = victim.send(sig)
            chaos_done.append(sig)
            if sig == signal.SIGKILL:
                kills[victim.pid] = t
            spawn()
            next_chaos = time.monotonic() + 0.8
        if len(live) < STRESS_WORKERS and len(procs) < 24:
            spawn()  # a worker died by itself: keep the harness going
        rest = [i for i in ids if i not in ok_ids]
        if len(rest) <= 250:
            states = await asyncio.gather(*[state_of(queue, i) for i in rest])
            if all(s in TERMINAL for s in states):
                finished = True
                break
        await asyncio.sleep(0.4)
    run_s = time.monotonic() - t_begin
    for p in procs:
        if p.poll() is None:
            p.send(signal.SIGTERM)
    end = time.monotonic() + 3
    while time.monotonic() < end and any(p.poll() is None for p in procs):
        await asyncio.sleep(0.05)
    for p in procs:
        if p.poll() is None:
            kills[p.pid] = p.kill()
    events = read_events([p.log_path for p in procs])
    infos = {}
    for chunk in range(0, len(ids), 50):
        part = ids[chunk:chunk + 50]
        for i, info in zip(part, await asyncio.gather(*[queue.get(i) for i in part])):
            infos[i] = info
    summary = (f"{STRESS_JOBS} jobs, {len(procs)} worker processes, {chaos_done.count(signal.SIGKILL)} SIGKILLs "
               f"and {chaos_done.count(signal.SIGTERM)} SIGTERMs mid-run; {run_s:.1f} s")
    print(f"stress: {summary}; enqueue took {enqueue_s:.1f} s; {len(events)} events")

    # runs: start..end per (job, pid, attempt)
    exit_time = {}
    for p in procs:
        exit_time[p.pid] = kills.get(p.pid) or p.ended_at or time.monotonic()
    runs: dict[int, list[dict]] = {}
    open_runs: dict[tuple, dict] = {}
    for e in sorted(events, key=lambda e: e["t"]):
        if e["e"] == "start":
            run = {"job": e["job"], "pid": e["pid"], "attempt": e["attempt"], "start": e["t"], "end": None, "outcome": None}
            runs.setdefault(e["job"], []).append(run)
            open_runs[(e["job"], e["pid"], e["attempt"])] = run
        elif e["e"] == "end":
            run = open_runs.pop((e["job"], e["pid"], e["attempt"]), None)
            if run is not None:
                run["end"], run["outcome"] = e["t"], e["outcome"]
    for run in open_runs.values():
        run["end"] = exit_time.get(run["pid"], time.monotonic())
        run["outcome"] = "killed"

    # 1. none lost
    problems = []
    not_terminal = [i for i in ids if infos[i] is None or infos[i].state not in TERMINAL]
    if not_terminal:
        problems.append(f"{len(not_terminal)} jobs neither succeeded nor dead at the end "
                        f"(e.g. {', '.join(f'{i}: {infos[i].state if infos[i] else None}' for i in not_terminal[:3])})")
    fake = [i for i in ids if infos[i] and infos[i].state == "succeeded" and i not in ok_ids]
    if fake:
        problems.append(f"{len(fake)} jobs marked succeeded without a successful run (e.g. {fake[:3]})")
    lost = [i for i in ids if by_id[i]["mode"] == "ok" and infos[i] and infos[i].state == "dead"
            and len(runs.get(i, [])) < STRESS_CFG["max_attempts"]]
    if lost:
        problems.append(f"{len(lost)} jobs that would have succeeded are dead after fewer than max_attempts runs (e.g. {lost[:3]})")
    if not finished and not not_terminal:
        problems.append("the harness did not see every job finish in time")
    verdicts["stress_none_lost"] = (not problems, "; ".join(problems + [summary]))

    # 2. no concurrent runs of a job
    overlaps = []
    for job, rs in runs.items():
        rs = sorted(rs, key=lambda r: r["start"])
        for x, y in zip(rs, rs[1:]):
            if y["start"] < x["end"] - 0.005:
                overlaps.append(f"job {job}: attempt {x['attempt']} in pid {x['pid']} ({x['outcome']}) and attempt "
                                f"{y['attempt']} in pid {y['pid']} overlapped by {x['end'] - y['start']:.2f} s")
    verdicts["stress_no_concurrent_runs"] = (
        not overlaps and bool(runs),
        (f"{len(overlaps)} double runs, e.g. " + "; ".join(overlaps[:3])) if overlaps else ("" if runs else "no handler ran"))

    # 3. retry spacing after handler failures, against the submission's own retry_delay
    try:
        cfg = WorkerConfig(**{k: timedelta(seconds=v) if k not in ("concurrency", "max_attempts") else v
                              for k, v in STRESS_CFG.items()})
        expected = {}
        for k in range(1, STRESS_CFG["max_attempts"]):
            sample = [retry_delay(k, cfg, random.Random(s)).total_seconds() for s in range(300)]
            expected[k] = (min(sample), statistics.mean(sample))
        gaps: dict[int, list[float]] = {}
        early = []
        for job, rs in runs.items():
            rs = sorted(rs, key=lambda r: r["start"])
            for x, y in zip(rs, rs[1:]):
                if x["outcome"] == "failed" and x["attempt"] in expected:
                    gap = y["start"] - x["end"]
                    gaps.setdefault(x["attempt"], []).append(gap)
                    if gap < expected[x["attempt"]][0] - 0.03:
                        early.append(f"job {job} retried {gap * 1000:.0f} ms after failing attempt {x['attempt']} "
                                     f"(retry_delay's minimum is {expected[x['attempt']][0] * 1000:.0f} ms)")
        problems = []
        if not gaps:
            problems.append("no retry after a failure was observed")
        if early:
            problems.append(f"{len(early)} retries came too early, e.g. " + "; ".join(early[:2]))
        for k, gs in sorted(gaps.items()):
            if len(gs) >= 10 and statistics.mean(gs) < 0.7 * expected[k][1] - 0.02:
                problems.append(f"retries after attempt {k} waited {statistics.mean(gs) * 1000:.0f} ms on average; "
                                f"retry_delay averages {expected[k][1] * 1000:.0f} ms")
        verdicts["stress_retry_spacing"] = (not problems, "; ".join(problems))
    except Exception as exc:
        verdicts["stress_retry_spacing"] = (False, f"retry_delay raised {type(exc).__name__}: {exc}")

    # 4. dead jobs: permanent after one run, always-failing after max_attempts, last error kept.
    # A run whose worker was SIGKILLed before it recorded the outcome may legitimately repeat.
    killed_pids = {pid for pid, p in ((p.pid, p) for p in procs) if p.signal == signal.SIGKILL}
    problems = []
    for i in ids:
        d, info, rs = by_id[i], infos[i], sorted(runs.get(i, []), key=lambda r: r["start"])
        if d["mode"] not in ("permanent", "always"):
            continue
        last = rs[-1] if rs else None
        error = (info.last_error or "") if info else ""
        if info is None or info.state != "dead":
            problems.append(f"job {i} ({d['mode']} failure) ended {info.state if info else None}")
        elif d["mode"] == "permanent":
            repeated = [r for r in rs[:-1] if r["outcome"] == "permanent" and r["pid"] not in killed_pids]
            if repeated:
                problems.append(f"job {i} raised PermanentError and was run again ({len(rs)} runs)")
            elif last and last["outcome"] == "permanent" and f"permanent failure of job {i}" not in error:
                problems.append(f"job {i} (PermanentError) is dead with last_error {info.last_error!r}")
        else:
            if len(rs) > STRESS_CFG["max_attempts"]:
                problems.append(f"job {i} (always failing) ran {len(rs)} times with max_attempts {STRESS_CFG['max_attempts']}")
            elif last and last["outcome"] == "failed" and f"stress failure {i} attempt" not in error:
                problems.append(f"job {i} (always failing) is dead with last_error {info.last_error!r}, not its last error")
            elif not error:
                problems.append(f"job {i} is dead without a last_error")
    verdicts["stress_dead_jobs"] = (not problems, (f"{len(problems)} problems, e.g. " + "; ".join(problems[:3])) if problems else "")
    return verdicts


# --- registry ----------------------------------------------------------------------------------

# key, reviewer-readable name, weight, group
CHECKS = [
    ("stress_none_lost", "Stress (3,000 jobs, transient failures, SIGKILL and SIGTERM of workers): every job succeeded or is dead, none lost", 4, "stress"),
    ("stress_no_concurrent_runs", "Stress: no job ever ran in two places at the same time", 4, "stress"),
    ("stress_retry_spacing", "Stress: retries after failures waited as retry_delay specifies", 2, "stress"),
    ("stress_dead_jobs", "Stress: PermanentError jobs dead after one run, always-failing ones after max_attempts, last error kept", 2, "stress"),
    ("enqueue_and_get", "enqueue returns an id; get reports a new job as pending with 0 attempts", 1, "enqueue_and_get"),
    ("dedupe_pending", "Enqueueing a dedupe_key of a pending job returns that job", 2, "dedupe_pending"),
    ("dedupe_after_finish", "Once a job has finished its dedupe_key can be used again", 2, "dedupe_after_finish"),
    ("dedupe_concurrent", "20 concurrent enqueues with one dedupe_key create one job", 1, "dedupe_concurrent"),
    ("retry_delay_shape", "retry_delay is exponential from backoff_base, jittered and capped at backoff_cap", 2, "retry_delay_shape"),
    ("transient_retried", "TransientError and other exceptions are retried; the job then succeeds", 2, "transient_retried"),
    ("permanent_error_dead", "PermanentError makes a job dead after one run, keeping its error", 2, "permanent_error_dead"),
    ("max_attempts_dead", "An always-failing job is dead after max_attempts runs, keeping its last error", 2, "max_attempts_dead"),
    ("priority_then_run_at", "High-priority jobs overtake a backlog of low-priority ones; then the earliest run_at first", 2, "priority_then_run_at"),
    ("run_at_respected", "A job does not run before its run_at", 1, "run_at_respected"),
    ("lease_extended", "A job running three times longer than its lease runs once (the lease is extended)", 3, "lease_extended"),
    ("sigkill_recovery", "A job whose worker is SIGKILLed mid-job completes in another worker after the lease", 3, "sigkill_recovery"),
    ("sigterm_graceful", "SIGTERM: no new claims, running jobs finish within the grace, the rest are released for another worker at once", 3, "sigterm_graceful"),
    ("thumbnail_idempotent", "make_thumbnail run three times for one document leaves one object and one row", 2, "thumbnail_idempotent"),
    ("thumbnail_errors", "make_thumbnail: deleted document and PDF are permanent errors, storage outage transient", 1, "thumbnail_errors"),
]

GROUPS = {
    "stress": (45, stress_group),
    "enqueue_and_get": (10, check_enqueue_and_get),
    "dedupe_pending": (10, check_dedupe_pending),
    "dedupe_after_finish": (12, check_dedupe_after_finish),
    "dedupe_concurrent": (10, check_dedupe_concurrent),
    "retry_delay_shape": (10, check_retry_delay_shape),
    "transient_retried": (12, check_transient_retried),
    "permanent_error_dead": (10, check_permanent_dead),
    "max_attempts_dead": (12, check_max_attempts_dead),
    "priority_then_run_at": (15, check_priority),
    "run_at_respected": (10, check_run_at_future),
    "lease_extended": (14, check_lease_extended),
    "sigkill_recovery": (20, check_sigkill_recovery),
    "sigterm_graceful": (20, check_sigterm_graceful),
    "thumbnail_idempotent": (10, check_thumbnail_idempotent),
    "thumbnail_errors": (10, check_thumbnail_errors),
}


def emit(key: str, passed: bool, message: str) -> None:
    os.write(1, (MARKER + json.dumps({"key": key, "passed": passed, "message": message}) + "\n").encode())


def main(group: str) -> None:
    _timeout, fn = GROUPS[group]
    keys = [c[0] for c in CHECKS if c[3] == group]
    try:
        outcome = asyncio.run(fn())
        sys.stdout.flush()
        if isinstance(outcome, dict):
            for key in keys:
                passed, message = outcome.get(key, (False, "not evaluated"))
                emit(key, passed, message)
        else:
            emit(keys[0], True, "")
    except CheckFailed as exc:
        sys.stdout.flush()
        for key in keys:
            emit(key, False, str(exc)[:700])
    except BaseException as exc:  # noqa: BLE001  (the submission's code raised)
        traceback.print_exc()
        sys.stdout.flush()
        sys.stderr.flush()
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/grader/" not in f.filename]
        where = f" at {os.path.relpath(frames[-1].filename)}:{frames[-1].lineno}" if frames else ""
        for key in keys:
            emit(key, False, f"the code under test raised {type(exc).__name__}: {exc}{where}"[:700])
    os._exit(0)


if __name__ == "__main__":
    sys.path.insert(0, os.getcwd())
    main(sys.argv[1])
