"""Queue tests (unittest). They need DATABASE_URL (set in the workspace's test runs); each test gets
a fresh schema with jobqueue/schema.sql loaded. Run: python3 -m unittest discover -s tests -v"""

from __future__ import annotations

import asyncio
import os
import pathlib
import random
import signal
import subprocess
import sys
import unittest
import uuid
from datetime import timedelta

from jobqueue import pg
from jobqueue.worker import Job, Queue, TransientError, Worker, WorkerConfig, retry_delay

SCHEMA = pathlib.Path(__file__).parent.parent / "jobqueue" / "schema.sql"
FAST = WorkerConfig(
    lease=timedelta(seconds=2),
    backoff_base=timedelta(milliseconds=10),
    backoff_cap=timedelta(milliseconds=200),
    poll_interval=timedelta(milliseconds=10),
)


class DatabaseTestCase(unittest.IsolatedAsyncioTestCase):
    """`self.pool` is a pool on a fresh schema; `self.schema` is its name."""

    async def asyncSetUp(self):
        self.url = os.environ.get("DATABASE_URL")
        if not self.url:
            self.skipTest("DATABASE_URL is not set")
        self.schema = "test_" + uuid.uuid4().hex[:12]
        admin = await pg.connect(self.url)
        await admin.execute(f"CREATE SCHEMA {self.schema}")
        await admin.close()
        self.pool = await pg.create_pool(
            self.url, min_size=1, max_size=20, server_settings={"search_path": self.schema}
        )
        await self.pool.execute(SCHEMA.read_text())

    async def asyncTearDown(self):
        await self.pool.close()
        admin = await pg.connect(self.url)
        await admin.execute(f"DROP SCHEMA {self.schema} CASCADE")
        await admin.close()


async def wait_until(predicate, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


class QueueTests(DatabaseTestCase):
    async def test_enqueueing_twice_with_one_dedupe_key_returns_the_same_job(self):
        queue = Queue(self.pool)

        first = await queue.enqueue("make_thumbnail", {"document_id": 1}, dedupe_key="thumb:1")
        second = await queue.enqueue("make_thumbnail", {"document_id": 1}, dedupe_key="thumb:1")

        self.assertEqual(first, second)

    async def test_a_transient_failure_is_retried_until_the_job_succeeds(self):
        attempts: list[int] = []

        async def flaky(job: Job) -> None:
            attempts.append(job.attempt)
            if job.attempt < 3:
                raise TransientError("storage timed out")

        await Queue(self.pool).enqueue("flaky", {})
        worker = Worker(self.pool, {"flaky": flaky}, FAST)
        running = asyncio.create_task(worker.run())

        await wait_until(lambda: len(attempts) == 3)
        worker.stop()
        await running

        self.assertEqual(attempts, [1, 2, 3])

    async def test_a_job_survives_its_worker_being_killed(self):
        queue = Queue(self.pool)
        job_id = await queue.enqueue("slow", {"seconds": 0.5})
        first = start_worker(self.url, self.schema)
        try:
            started = await asyncio.wait_for(asyncio.to_thread(first.stdout.readline), 10)
            self.assertEqual(started.split(), ["started", str(job_id), "1"])
            first.send_signal(signal.SIGKILL)  # mid-job
            first.wait()
            self.assertEqual((await queue.get(job_id)).state, "running")

            second = start_worker(self.url, self.schema)
            try:
                started = await asyncio.wait_for(asyncio.to_thread(second.stdout.readline), 10)
                self.assertEqual(started.split(), ["started", str(job_id), "2"])  # after the lease
                await wait_for_state(queue, job_id, "succeeded")
            finally:
                second.terminate()
                second.wait(10)
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()

    async def test_sigterm_releases_a_long_job_for_another_worker_at_once(self):
        queue = Queue(self.pool)
        job_id = await queue.enqueue("slow", {"seconds": 30})
        first = start_worker(self.url, self.schema, grace=0.2, lease=30)
        started = await asyncio.wait_for(asyncio.to_thread(first.stdout.readline), 10)
        self.assertIn(str(job_id), started)
        first.terminate()
        self.assertEqual(await asyncio.to_thread(first.wait, 10), 0)
        info = await queue.get(job_id)
        self.assertEqual((info.state, info.attempts), ("pending", 0))  # released, not counted

    async def test_permanent_error_and_max_attempts_make_a_job_dead(self):
        from jobqueue.worker import PermanentError

        runs: list[tuple[str, int]] = []

        async def bad(job: Job) -> None:
            runs.append((job.payload["how"], job.attempt))
            if job.payload["how"] == "permanent":
                raise PermanentError("malformed PDF")
            raise TransientError(f"timeout {job.attempt}")

        queue = Queue(self.pool)
        permanent = await queue.enqueue("bad", {"how": "permanent"})
        transient = await queue.enqueue("bad", {"how": "transient"})
        worker = Worker(self.pool, {"bad": bad}, FAST)
        running = asyncio.create_task(worker.run())
        await wait_for_state(queue, permanent, "dead")
        await wait_for_state(queue, transient, "dead")
        worker.stop()
        await running
        self.assertEqual(sorted(runs), [("permanent", 1)] + [("transient", n) for n in range(1, 6)])
        self.assertIn("timeout 5", (await queue.get(transient)).last_error)
        self.assertIn("malformed PDF", (await queue.get(permanent)).last_error)

    async def test_dedupe_key_is_free_again_once_the_job_finished(self):
        done = asyncio.Event()

        async def ok(job: Job) -> None:
            done.set()

        queue = Queue(self.pool)
        first = await queue.enqueue("ok", {}, dedupe_key="k")
        worker = Worker(self.pool, {"ok": ok}, FAST)
        running = asyncio.create_task(worker.run())
        await wait_for_state(queue, first, "succeeded")
        worker.stop()
        await running
        self.assertNotEqual(await queue.enqueue("ok", {}, dedupe_key="k"), first)


WORKER = """
import asyncio, os, sys
from datetime import timedelta
from jobqueue import pg
from jobqueue.worker import Worker, WorkerConfig

async def main():
    pool = await pg.create_pool(os.environ["DATABASE_URL"], server_settings={"search_path": sys.argv[1]})
    async def slow(job):
        print("started", job.id, job.attempt, flush=True)
        await asyncio.sleep(float(job.payload["seconds"]))
    config = WorkerConfig(lease=timedelta(seconds=float(sys.argv[3])), poll_interval=timedelta(milliseconds=20),
                          shutdown_grace=timedelta(seconds=float(sys.argv[2])))
    worker = Worker(pool, {"slow": slow}, config)
    worker.install_signal_handlers()
    try:
        await worker.run()
    finally:
        await pool.close()

asyncio.run(main())
"""


def start_worker(url: str, schema: str, grace: float = 1.0, lease: float = 1.0) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, schema, str(grace), str(lease)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "DATABASE_URL": url},
        cwd=pathlib.Path(__file__).parent.parent,
    )


async def wait_for_state(queue: Queue, job_id: int, state: str, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while (await queue.get(job_id)).state != state:
            await asyncio.sleep(0.02)


class RetryDelayTests(unittest.TestCase):
    def test_retry_delays_are_capped(self):
        rng = random.Random(7)

        delays = [retry_delay(attempt, FAST, rng) for attempt in range(1, 12)]

        self.assertTrue(all(timedelta(0) <= d <= FAST.backoff_cap for d in delays))

    def test_retry_delays_double_with_equal_jitter(self):
        for attempt, window in [(1, 0.01), (2, 0.02), (3, 0.04), (5, 0.16), (6, 0.2), (20, 0.2)]:
            delays = [retry_delay(attempt, FAST, random.Random(i)).total_seconds() for i in range(200)]
            self.assertGreaterEqual(min(delays), window / 2 - 1e-9, attempt)
            self.assertLessEqual(max(delays), window + 1e-9, attempt)
            self.assertGreater(len(set(delays)), 150, attempt)  # jittered


if __name__ == "__main__":
    unittest.main()
