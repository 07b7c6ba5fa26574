"""A PostgreSQL-backed job queue and its asyncio worker. See NOTES.md for the state machine."""

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
    handler_timeout: timedelta | None = None  # None: no limit besides the lease's heartbeat


def retry_delay(attempt: int, config: WorkerConfig, rng: random.Random | None = None) -> timedelta:
    """How long to wait before retrying a job whose attempt number `attempt` failed.

    Exponential from config.backoff_base (base, 2 base, 4 base, ...), capped at config.backoff_cap,
    with "equal jitter": a uniformly random point in the upper half of that window, so retries of
    jobs that failed together spread out but never come back sooner than half the window.
    """
    rng = rng or random
    window = config.backoff_base.total_seconds() * 2 ** min(max(attempt - 1, 0), 40)
    window = min(window, config.backoff_cap.total_seconds())
    return timedelta(seconds=window / 2 + rng.uniform(0, window / 2))


_LIVE = "('pending', 'running')"


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
        while True:
            job_id = await self._pool.fetchval(
                "INSERT INTO jobs (kind, payload, dedupe_key, run_at, priority)"
                " VALUES ($1, $2::jsonb, $3, coalesce($4::timestamptz, now()), $5)"
                f" ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL AND state IN {_LIVE}"
                " DO NOTHING RETURNING id",
                kind, payload, dedupe_key, run_at, priority,
            )
            if job_id is not None:
                return job_id
            existing = await self._pool.fetchval(
                f"SELECT id FROM jobs WHERE dedupe_key = $1 AND state IN {_LIVE}", dedupe_key
            )
            if existing is not None:
                return existing
            # The live job finished between the two statements: its key is free again.

    async def get(self, job_id: int) -> JobInfo | None:
        """The job's current state, or None if there is no such job."""
        row = await self._pool.fetchrow(
            "SELECT id, kind, state, attempts, last_error, priority, run_at FROM jobs WHERE id = $1",
            job_id,
        )
        return None if row is None else JobInfo(*row)

    async def requeue_dead(self, job_id: int) -> bool:
        """Operator path: gives a dead job a fresh set of attempts."""
        status = await self._pool.execute(
            "UPDATE jobs SET state = 'pending', attempts = 0, run_at = now(), finished_at = NULL"
            " WHERE id = $1 AND state = 'dead'",
            job_id,
        )
        return status.endswith(" 1")


class _Run:
    __slots__ = ("job", "token", "task", "lease_lost")

    def __init__(self, job: Job, token: str):
        self.job, self.token, self.task, self.lease_lost = job, token, None, False


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
        self._forced = asyncio.Event()
        self._wake = asyncio.Event()
        self._runs: dict[str, _Run] = {}
        self._rng = random.Random()

    def stop(self) -> None:
        """Asks run() to shut down gracefully; a second call cuts the grace period short."""
        if self._stopping.is_set():
            self._forced.set()
        self._stopping.set()
        self._wake.set()

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.stop)
        loop.add_signal_handler(signal.SIGINT, self.stop)

    # -- database --

    async def _claim(self, n: int) -> list[_Run]:
        rows = await self._pool.fetch(
            """
            UPDATE jobs SET state = 'running', attempts = attempts + 1,
                   lease_token = gen_random_uuid(), lease_expires_at = now() + $2::interval
            WHERE id IN (
                SELECT id FROM jobs
                WHERE state = 'pending' AND run_at <= now()
                ORDER BY priority DESC, run_at, id
                LIMIT $1
                FOR UPDATE SKIP LOCKED
            )
            RETURNING id, kind, payload, attempts, lease_token::text AS token, priority, run_at
            """,
            n, self._config.lease,
        )
        rows = sorted(rows, key=lambda r: (-r["priority"], r["run_at"], r["id"]))
        return [_Run(Job(r["id"], r["kind"], r["payload"], r["attempts"]), r["token"]) for r in rows]

    async def _expire_leases(self) -> None:
        """Running jobs whose lease ran out (their worker died) become claimable again, or dead
        when that was their last attempt."""
        await self._pool.execute(
            """
            UPDATE jobs SET
                state = CASE WHEN attempts >= $1 THEN 'dead' ELSE 'pending' END,
                finished_at = CASE WHEN attempts >= $1 THEN now() END,
                last_error = 'lease expired: the worker stopped heartbeating (crash or kill?)',
                run_at = now(), lease_token = NULL, lease_expires_at = NULL
            WHERE state = 'running' AND lease_expires_at < now()
            """,
            self._config.max_attempts,
        )

    async def _heartbeat(self) -> None:
        interval = self._config.lease.total_seconds() / 4
        while True:
            await asyncio.sleep(interval)
            runs = [r for r in self._runs.values() if not r.lease_lost]
            if not runs:
                continue
            try:
                kept = await self._pool.fetch(
                    "UPDATE jobs SET lease_expires_at = now() + $1::interval"
                    " WHERE lease_token = ANY($2::uuid[]) AND state = 'running'"
                    " RETURNING lease_token::text AS token",
                    self._config.lease, [r.token for r in runs],
                )
            except (pg.PostgresError, pg.InterfaceError, OSError):
                log.warning("heartbeat failed", exc_info=True)
                continue
            alive = {r["token"] for r in kept}
            for run in runs:
                if run.token not in alive and run.token in self._runs:
                    log.warning("job %s lost its lease; cancelling it", run.job.id)
                    run.lease_lost = True
                    run.task.cancel()

    async def _finish(self, run: _Run, state: str, error: str | None, delay: timedelta | None = None) -> None:
        if state == "pending":
            sql = ("UPDATE jobs SET state = 'pending', run_at = now() + $3::interval, last_error = $4,"
                   " lease_token = NULL, lease_expires_at = NULL"
                   " WHERE id = $1 AND lease_token = $2::uuid")
            args = (run.job.id, run.token, delay, error)
        else:
            sql = ("UPDATE jobs SET state = $3, last_error = coalesce($4, last_error), finished_at = now(),"
                   " lease_token = NULL, lease_expires_at = NULL"
                   " WHERE id = $1 AND lease_token = $2::uuid")
            args = (run.job.id, run.token, state, error)
        status = await self._pool.execute(sql, *args)
        if status != "UPDATE 1":
            log.warning("job %s: lease lost before its outcome (%s) was recorded", run.job.id, state)

    async def _release(self, run: _Run) -> None:
        """Gives a cancelled job back without counting the interrupted attempt."""
        await self._pool.execute(
            "UPDATE jobs SET state = 'pending', run_at = now(), attempts = greatest(attempts - 1, 0),"
            " lease_token = NULL, lease_expires_at = NULL WHERE id = $1 AND lease_token = $2::uuid",
            run.job.id, run.token,
        )

    # -- running --

    async def _execute(self, run: _Run) -> None:
        job = run.job
        try:
            handler = self._handlers.get(job.kind)
            if handler is None:
                raise PermanentError(f"no handler for job kind {job.kind!r}")
            timeout = self._config.handler_timeout
            if timeout is None:
                await handler(job)
            else:
                await asyncio.wait_for(handler(job), timeout.total_seconds())
        except asyncio.CancelledError:
            if not run.lease_lost:
                await self._release(run)
            raise
        except PermanentError as exc:
            await self._finish(run, "dead", f"PermanentError: {exc}")
        except Exception as exc:  # TransientError and anything unexpected
            error = f"{type(exc).__name__}: {exc}"
            if job.attempt >= self._config.max_attempts:
                await self._finish(run, "dead", error)
            else:
                await self._finish(run, "pending", error, retry_delay(job.attempt, self._config, self._rng))
        else:
            await self._finish(run, "succeeded", None)

    def _start(self, run: _Run) -> None:
        run.task = asyncio.ensure_future(self._execute(run))
        self._runs[run.token] = run

        def done(task, token=run.token):
            self._runs.pop(token, None)
            self._wake.set()
            if not task.cancelled() and task.exception() is not None:
                log.error("recording the outcome of job %s failed", run.job.id, exc_info=task.exception())

        run.task.add_done_callback(done)

    async def run(self) -> None:
        """Claims and runs jobs until stop() is called, then shuts down gracefully: no more
        claims, running jobs get `shutdown_grace` to finish, the rest are cancelled and their
        leases released so that another worker picks them up at once."""
        heartbeat = asyncio.ensure_future(self._heartbeat())
        poll = self._config.poll_interval.total_seconds()
        try:
            while not self._stopping.is_set():
                self._wake.clear()
                free = self._config.concurrency - len(self._runs)
                claimed = 0
                if free > 0:
                    try:
                        await self._expire_leases()
                        runs = await self._claim(free)
                    except (pg.PostgresError, pg.InterfaceError, OSError):
                        log.warning("claiming failed; retrying", exc_info=True)
                        runs = []
                    if self._stopping.is_set():  # stopped while claiming: give them back
                        for run in runs:
                            await self._release(run)
                        break
                    for run in runs:
                        self._start(run)
                    claimed = len(runs)
                if claimed and claimed == free:
                    continue  # more may be waiting
                try:
                    await asyncio.wait_for(self._wake.wait(), poll)
                except asyncio.TimeoutError:
                    pass
            await self._drain()
        finally:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._config.shutdown_grace.total_seconds()
        pending = {r.task for r in self._runs.values()}
        forced = asyncio.ensure_future(self._forced.wait())
        try:
            while pending and not self._forced.is_set() and loop.time() < deadline:
                _done, pending = await asyncio.wait(
                    pending | {forced}, timeout=deadline - loop.time(), return_when=asyncio.FIRST_COMPLETED
                )
                pending.discard(forced)
        finally:
            forced.cancel()
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


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
