"""A PostgreSQL-backed job queue and its asyncio worker. Complete the TODOs."""

from __future__ import annotations

import asyncio
import logging
import random
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from . import pg

log = logging.getLogger("jobqueue")


class TransientError(Exception):
    """The job may succeed later: a timeout, a 5xx from a dependency, a lock conflict."""


class PermanentError(Exception):
    """Retrying cannot help: a malformed payload, a deleted document."""


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    payload: dict[str, Any]
    attempt: int  # 1 on the first run


Handler = Callable[[Job], Awaitable[None]]


@dataclass(frozen=True)
class JobInfo:
    """A job as operators (and the stress harness) see it."""

    id: int
    kind: str
    state: str  # 'pending' (waiting to run, retries included), 'running', 'succeeded' or 'dead'
    attempts: int  # runs started so far
    last_error: str | None
    priority: int
    run_at: datetime


@dataclass(frozen=True)
class WorkerConfig:
    concurrency: int = 8
    lease: timedelta = timedelta(seconds=60)
    max_attempts: int = 5
    backoff_base: timedelta = timedelta(seconds=2)
    backoff_cap: timedelta = timedelta(minutes=10)
    shutdown_grace: timedelta = timedelta(seconds=25)
    poll_interval: timedelta = timedelta(milliseconds=500)


def retry_delay(attempt: int, config: WorkerConfig, rng: random.Random | None = None) -> timedelta:
    """How long to wait before retrying a job whose attempt number `attempt` failed.

    TODO: exponential from config.backoff_base, capped at config.backoff_cap, with jitter.
    """
    raise NotImplementedError


class Queue:
    def __init__(self, pool: pg.Pool):
        self._pool = pool

    async def enqueue(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        dedupe_key: str | None = None,
        run_at: datetime | None = None,
        priority: int = 0,
    ) -> int:
        """Durably enqueues a job and returns its id. If `dedupe_key` belongs to a job that is
        still pending or running, returns that job's id instead."""
        raise NotImplementedError  # TODO

    async def get(self, job_id: int) -> JobInfo | None:
        """The job's current state, or None if there is no such job."""
        raise NotImplementedError  # TODO


class Worker:
    def __init__(
        self,
        pool: pg.Pool,
        handlers: dict[str, Handler],
        config: WorkerConfig = WorkerConfig(),
    ):
        self._pool = pool
        self._handlers = handlers
        self._config = config
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """Asks run() to shut down gracefully."""
        self._stopping.set()

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.stop)
        loop.add_signal_handler(signal.SIGINT, self.stop)

    async def run(self) -> None:
        """Claims and runs jobs until stop() is called, then shuts down gracefully.

        TODO: claim up to `concurrency` jobs at a time, extend their leases while the handlers
        run, record success, retry or death, and drain on shutdown.
        """
        raise NotImplementedError


async def main() -> None:
    import os

    from .handlers import S3Storage, registry

    logging.basicConfig(level=logging.INFO)
    pool = await pg.create_pool(os.environ["DATABASE_URL"], min_size=2, max_size=10)
    worker = Worker(pool, registry(pool, S3Storage.from_env()))
    worker.install_signal_handlers()
    try:
        await worker.run()
    finally:
        await pool.close()


if __name__ == "__main__":
    asyncio.run(main())
