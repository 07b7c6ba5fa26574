"""Queue tests. Set DATABASE_URL to a scratch PostgreSQL database; each test gets a fresh schema."""

from __future__ import annotations

import asyncio
import os
import pathlib
import random
from datetime import timedelta

import asyncpg
import pytest
import pytest_asyncio

from jobqueue.worker import Job, Queue, TransientError, Worker, WorkerConfig, retry_delay

SCHEMA = pathlib.Path(__file__).parent.parent / "jobqueue" / "schema.sql"
FAST = WorkerConfig(
    lease=timedelta(seconds=2),
    backoff_base=timedelta(milliseconds=10),
    backoff_cap=timedelta(milliseconds=200),
    poll_interval=timedelta(milliseconds=10),
)


@pytest_asyncio.fixture
async def pool():
    admin = await asyncpg.connect(os.environ["DATABASE_URL"])
    await admin.execute("DROP SCHEMA IF EXISTS jobqueue_test CASCADE; CREATE SCHEMA jobqueue_test")
    await admin.close()
    pool = await asyncpg.create_pool(
        os.environ["DATABASE_URL"],
        min_size=1,
        max_size=20,
        server_settings={"search_path": "jobqueue_test"},
    )
    await pool.execute(SCHEMA.read_text())
    yield pool
    await pool.close()


async def wait_until(predicate, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


@pytest.mark.asyncio
async def test_enqueueing_twice_with_one_dedupe_key_returns_the_same_job(pool):
    queue = Queue(pool)

    first = await queue.enqueue("make_thumbnail", {"document_id": 1}, dedupe_key="thumb:1")
    second = await queue.enqueue("make_thumbnail", {"document_id": 1}, dedupe_key="thumb:1")

    assert first == second


@pytest.mark.asyncio
async def test_a_transient_failure_is_retried_until_the_job_succeeds(pool):
    attempts: list[int] = []

    async def flaky(job: Job) -> None:
        attempts.append(job.attempt)
        if job.attempt < 3:
            raise TransientError("storage timed out")

    await Queue(pool).enqueue("flaky", {})
    worker = Worker(pool, {"flaky": flaky}, FAST)
    running = asyncio.create_task(worker.run())

    await wait_until(lambda: len(attempts) == 3)
    worker.stop()
    await running

    assert attempts == [1, 2, 3]


def test_retry_delays_are_capped():
    rng = random.Random(7)

    delays = [retry_delay(attempt, FAST, rng) for attempt in range(1, 12)]

    assert all(timedelta(0) <= d <= FAST.backoff_cap for d in delays)
    # TODO: assert the growth and jitter properties you chose.


@pytest.mark.skip(reason="TODO: run a worker in a subprocess, SIGKILL it mid-job, show the job completes")
def test_a_job_survives_its_worker_being_killed():
    ...
