"""A worker process for the hidden checks: python3 driver.py <schema> <log-file> <config-json>.

Runs the submission's Worker (jobqueue.worker) with the grader's handlers and WorkerConfig, its
signal handlers installed, and appends one JSON line per event to <log-file> with os.write (so a
SIGKILL loses nothing already logged): ready, start/end of every handler run (with
time.monotonic(), comparable across processes), exit.

Handlers: "stress" sleeps payload.ms, then raises PermanentError (mode "permanent"), a
TransientError or RuntimeError (mode "always", or attempt <= payload.fail), or returns.
"slow" sleeps payload.seconds.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from datetime import timedelta

sys.path.insert(0, os.getcwd())


async def main(schema: str, log_path: str, config: dict) -> None:
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def log(**event):
        event.update(pid=os.getpid(), t=time.monotonic())
        os.write(fd, (json.dumps(event) + "\n").encode())

    from jobqueue import pg
    from jobqueue.worker import PermanentError, TransientError, Worker, WorkerConfig

    async def stress(job):
        log(e="start", job=job.id, attempt=job.attempt)
        p = job.payload
        try:
            await asyncio.sleep(p["ms"] / 1000)
            if p["mode"] == "permanent":
                raise PermanentError(f"permanent failure of job {job.id}")
            if p["mode"] == "always" or job.attempt <= p.get("fail", 0):
                message = f"stress failure {job.id} attempt {job.attempt}"
                raise TransientError(message) if (job.id + job.attempt) % 2 else RuntimeError(message)
        except asyncio.CancelledError:
            log(e="end", job=job.id, attempt=job.attempt, outcome="cancelled")
            raise
        except PermanentError:
            log(e="end", job=job.id, attempt=job.attempt, outcome="permanent")
            raise
        except Exception:
            log(e="end", job=job.id, attempt=job.attempt, outcome="failed")
            raise
        log(e="end", job=job.id, attempt=job.attempt, outcome="ok")

    async def slow(job):
        log(e="start", job=job.id, attempt=job.attempt)
        try:
            await asyncio.sleep(float(job.payload["seconds"]))
        except asyncio.CancelledError:
            log(e="end", job=job.id, attempt=job.attempt, outcome="cancelled")
            raise
        log(e="end", job=job.id, attempt=job.attempt, outcome="ok")

    durations = {"lease", "backoff_base", "backoff_cap", "shutdown_grace", "poll_interval"}
    kwargs = {k: timedelta(seconds=v) if k in durations else v for k, v in config.items()}
    pool = await pg.create_pool(os.environ["DATABASE_URL"], min_size=1, max_size=5,
                                server_settings={"search_path": schema})
    worker = Worker(pool, {"stress": stress, "slow": slow}, WorkerConfig(**kwargs))
    worker.install_signal_handlers()
    log(e="ready")
    try:
        await worker.run()
    finally:
        log(e="exit")
        try:
            await asyncio.wait_for(pool.close(), 2)
        except Exception:
            pass


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3])))
