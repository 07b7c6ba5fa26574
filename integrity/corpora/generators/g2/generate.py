#!/usr/bin/env python3
"""g2 ("field"): an independent generator of labelled Clarity candidate sessions.

Models the messiness of real-world telemetry (keyboards, browsers, timers, reloads, IMEs,
autorepeat, lost key-ups, tab-aways, pastes, refactors) and pragmatic adversaries using common
tools. Written without knowledge of Clarity's detectors. See README.md for the assumptions.

    python3 generate.py --seed 1 --out /tmp/g2-corpus [--per-class 40]

Standard library only; byte-for-byte deterministic for the same arguments.
"""

from __future__ import annotations

import argparse
import bisect
import difflib
import hashlib
import json
import math
import os
import random
import sys
import time
import unicodedata
from datetime import datetime, timedelta, timezone

GEN = "g2"

# ---------------------------------------------------------------------------------------------
# Content: what candidates type. Templates: `@{a|b}` picks one option, `@[name]` a session
# variable, a line starting (after indentation) with `?? ` is kept with probability 1/2.
# Item kinds: replace (file, old, new), insert (file, anchor, text: typed after anchor),
# append (file, text: file created if missing), notes (file, sections).
# ---------------------------------------------------------------------------------------------

CONTENT: dict[str, dict] = {}

CONTENT["bug-hunt"] = {
    "run": "python3 -m unittest discover -s tests -v",
    "tests_total": 9,
    "vars": {
        "today": ["local_today", "today", "today_here", "due_cutoff_day"],
        "lock": ["_lock", "_refresh_lock", "_mutex"],
        "stub": ["FakeDB", "StubDB", "FakeConn", "DummyDB"],
        "clock": ["FakeClock", "ManualClock", "TickingClock"],
    },
    "items": [
        dict(kind="replace", group=1, file="invoices/listing.py",
             old="    total_pages = max(total // PAGE_SIZE, 1)",
             new="?? " "    # SUP-1184: round up, 41 invoices are three pages, not two\n"
                 "    total_pages = max(@{(total + PAGE_SIZE - 1) // PAGE_SIZE|-(-total // PAGE_SIZE)}, 1)"),
        dict(kind="replace", group=2, file="invoices/listing.py",
             old="from datetime import date, datetime\n",
             new="from datetime import date, datetime, timezone\nfrom zoneinfo import ZoneInfo\n"),
        dict(kind="replace", group=2, file="invoices/listing.py",
             old='def is_overdue(invoice: Invoice) -> bool:\n'
                 '    return invoice.status == "open" and datetime.utcnow().date() > invoice.due_date',
             new='def is_overdue(invoice: Invoice, tz: str = "UTC", now: datetime | None = None) -> bool:\n'
                 '    """Overdue once the due date has ended in the account\'s own time zone."""\n'
                 '    now = now or datetime.now(timezone.utc)\n'
                 '    @[today] = now.astimezone(ZoneInfo(tz)).date()\n'
                 '    return invoice.status == "open" and @[today] > invoice.due_date'),
        dict(kind="replace", group=2, file="invoices/listing.py",
             old='        "overdue": is_overdue(invoice),',
             new='        "overdue": is_overdue(invoice, account.timezone),'),
        dict(kind="replace", group=2, file="invoices/listing.py",
             old='            if not is_overdue(invoice):',
             new='            if not is_overdue(invoice, account.timezone):'),
        dict(kind="replace", group=3, file="invoices/payments.py",
             old='    already = db.execute(\n'
                 '        "SELECT 1 FROM payments WHERE provider_ref = %s", (provider_ref,)\n'
                 '    ).fetchone()\n'
                 '    if already:\n'
                 '        return\n'
                 '\n'
                 '    invoice = db.execute(\n'
                 '        "SELECT balance_cents, status FROM invoices WHERE id = %s", (invoice_id,)\n'
                 '    ).fetchone()\n'
                 '    if invoice is None:\n'
                 '        raise LookupError(f"invoice {invoice_id} not found")\n'
                 '\n'
                 '    db.execute(\n'
                 '        "INSERT INTO payments (invoice_id, amount_cents, provider_ref, received_at)"\n'
                 '        " VALUES (%s, %s, %s, now())",\n'
                 '        (invoice_id, amount_cents, provider_ref),\n'
                 '    )\n'
                 '\n'
                 '    balance = invoice.balance_cents - amount_cents\n'
                 '    db.execute(\n'
                 '        "UPDATE invoices SET balance_cents = %s, status = %s WHERE id = %s",\n'
                 '        (balance, "paid" if balance <= 0 else "open", invoice_id),\n'
                 '    )',
             new='    with db.transaction():\n'
                 '?? ' '        # lock the invoice: retried deliveries and partial payments queue up here\n'
                 '        invoice = db.execute(\n'
                 '            "SELECT balance_cents, status FROM invoices WHERE id = %s FOR UPDATE",\n'
                 '            (invoice_id,),\n'
                 '        ).fetchone()\n'
                 '        if invoice is None:\n'
                 '            raise LookupError(f"invoice {invoice_id} not found")\n'
                 '\n'
                 '        inserted = db.execute(\n'
                 '            "INSERT INTO payments (invoice_id, amount_cents, provider_ref, received_at)"\n'
                 '            " VALUES (%s, %s, %s, now()) ON CONFLICT (provider_ref) DO NOTHING",\n'
                 '            (invoice_id, amount_cents, provider_ref),\n'
                 '        ).rowcount\n'
                 '        if not inserted:\n'
                 '            return  # @{already applied|a retried delivery|duplicate event}\n'
                 '\n'
                 '        db.execute(\n'
                 '            "UPDATE invoices SET balance_cents = balance_cents - %s,"\n'
                 '            " status = CASE WHEN balance_cents - %s <= 0 THEN \'paid\' ELSE status END"\n'
                 '            " WHERE id = %s",\n'
                 '            (amount_cents, amount_cents, invoice_id),\n'
                 '        )'),
        dict(kind="replace", group=3, file="invoices/schema.sql",
             old="CREATE INDEX payments_by_provider_ref ON payments (provider_ref);",
             new="CREATE UNIQUE INDEX payments_by_provider_ref ON payments (provider_ref);"),
        dict(kind="replace", group=4, file="invoices/fx.py",
             old="import json\nimport time\n",
             new="import json\nimport threading\nimport time\n"),
        dict(kind="replace", group=4, file="invoices/fx.py",
             old="        self._fetched_at: float | None = None\n",
             new="        self._fetched_at: float | None = None\n        self.@[lock] = threading.Lock()\n"),
        dict(kind="replace", group=4, file="invoices/fx.py",
             old="        # Mark the table fresh first so that concurrent requests don't all call the FX service.\n"
                 "        self._fetched_at = now\n"
                 "        self._rates.clear()\n"
                 "        self._rates.update(self._fetch())",
             new="        with self.@[lock]:\n"
                 "            if self._fetched_at is not None and now - self._fetched_at < self._ttl:\n"
                 "                return  # another thread refreshed while we waited\n"
                 "            try:\n"
                 "                fresh = self._fetch()\n"
                 "            except Exception:\n"
                 "                if not self._rates:\n"
                 "                    raise\n"
                 "?? " "                # keep serving the old table and retry in 30 s\n"
                 "                self._fetched_at = now - self._ttl + 30\n"
                 "                return\n"
                 "            # swap the whole table: readers never see it empty\n"
                 "            self._rates = fresh\n"
                 "            self._fetched_at = now"),
        dict(kind="append", group=5, file="tests/test_defects.py",
             text='"""Tests for the four ticket defects. Run: python3 -m unittest discover -s tests -v"""\n'
                  '\n'
                  'import threading\n'
                  'import unittest\n'
                  'from datetime import date, datetime, timezone\n'
                  'from decimal import Decimal\n'
                  '\n'
                  'from invoices.fx import RateCache\n'
                  'from invoices.listing import Invoice, is_overdue\n'
                  '\n'
                  '\n'
                  'def make_invoice(due: date, status: str = "open") -> Invoice:\n'
                  '    return Invoice(1, "INV-1", "Sunset Pilates", "USD", 10000, 10000, due, status, False)\n'
                  '\n'),
        dict(kind="append", group=5, file="tests/test_defects.py",
             text='\n'
                  'class OverdueTests(unittest.TestCase):\n'
                  '    def test_not_overdue_on_the_due_date_in_los_angeles(self):\n'
                  '        # 17:12 in Los Angeles on the due date is already the next day in UTC\n'
                  '        now = datetime(2025, 3, 11, 0, 12, tzinfo=timezone.utc)\n'
                  '        invoice = make_invoice(date(2025, 3, 10))\n'
                  '        self.assertFalse(is_overdue(invoice, "America/Los_Angeles", now))\n'
                  '\n'
                  '    def test_overdue_the_day_after(self):\n'
                  '        now = datetime(2025, 3, 11, 8, 1, tzinfo=timezone.utc)\n'
                  '        invoice = make_invoice(date(2025, 3, 10))\n'
                  '        self.assertTrue(is_overdue(invoice, "America/Los_Angeles", now))\n'
                  '\n'
                  '    def test_honolulu(self):\n'
                  '        now = datetime(2025, 3, 11, 9, 30, tzinfo=timezone.utc)\n'
                  '        self.assertFalse(is_overdue(make_invoice(date(2025, 3, 10)), "Pacific/Honolulu", now))\n'),
        dict(kind="append", group=6, file="tests/test_defects.py",
             text='\n'
                  '\n'
                  'class RateCacheTests(unittest.TestCase):\n'
                  '    def test_concurrent_readers_never_see_an_empty_table(self):\n'
                  '        started = threading.Event()\n'
                  '\n'
                  '        def slow_fetch():\n'
                  '            started.set()\n'
                  '            return {"EUR": Decimal(1), "USD": Decimal("1.08")}\n'
                  '\n'
                  '        cache = RateCache(fetch=slow_fetch, ttl_seconds=0)\n'
                  '        errors = []\n'
                  '\n'
                  '        def read():\n'
                  '            try:\n'
                  '                cache.convert(1000, "EUR", "USD")\n'
                  '            except KeyError as exc:\n'
                  '                errors.append(exc)\n'
                  '\n'
                  '        threads = [threading.Thread(target=read) for _ in range(@{16|20|32})]\n'
                  '        for t in threads:\n'
                  '            t.start()\n'
                  '        for t in threads:\n'
                  '            t.join()\n'
                  '        self.assertEqual(errors, [])\n'
                  '\n'
                  '    def test_keeps_old_rates_when_the_provider_times_out(self):\n'
                  '        calls = iter([{"EUR": Decimal(1), "USD": Decimal("1.08")}, TimeoutError("fx")])\n'
                  '\n'
                  '        def fetch():\n'
                  '            item = next(calls)\n'
                  '            if isinstance(item, Exception):\n'
                  '                raise item\n'
                  '            return item\n'
                  '\n'
                  '        now = [0.0]\n'
                  '        cache = RateCache(fetch=fetch, ttl_seconds=300, clock=lambda: now[0])\n'
                  '        self.assertEqual(cache.convert(1000, "EUR", "USD"), 1080)\n'
                  '        now[0] = 301\n'
                  '        self.assertEqual(cache.convert(1000, "EUR", "USD"), 1080)\n'),
        dict(kind="append", group=6, file="tests/test_defects.py",
             text='\n'
                  '\n'
                  'class PageCountTests(unittest.TestCase):\n'
                  '    def test_41_invoices_are_three_pages(self):\n'
                  '        self.assertEqual(max((41 + 20 - 1) // 20, 1), 3)\n'
                  '\n'
                  '    def test_exact_multiple(self):\n'
                  '        self.assertEqual(max((60 + 20 - 1) // 20, 1), 3)\n'
                  '\n'
                  '\n'
                  'if __name__ == "__main__":\n'
                  '    unittest.main()\n'),
        dict(kind="notes", group=1, file="FINDINGS.md", title="# Findings", sections=[
            (["## 1. Payment recorded but invoice still open (SUP-1207)", "## SUP-1207: lost payment updates"], [
                "`record_payment` reads the balance, inserts the payment and writes the new balance as three autocommit statements, so two deliveries can interleave.",
                "The duplicate check on provider_ref runs before the insert without any lock, so a retry that arrives while the first delivery is still running passes it too.",
                "When the pods restarted the first delivery died after the INSERT and before the UPDATE; the retry then found the payment row and returned early, so the balance was never reduced.",
                "Two partial payments at the same minute both read the same balance and the second UPDATE overwrote the first one (lost update).",
                "Fix: one transaction, SELECT ... FOR UPDATE on the invoice, INSERT ... ON CONFLICT (provider_ref) DO NOTHING and a relative UPDATE of the balance.",
                "The index on provider_ref has to become UNIQUE for ON CONFLICT to work.",
                "Impact: money. Late fees on paid invoices, wrong balances in finance reports, angry customers.",
                "Affected invoices: join invoices with the sum of their payments and list those where amount_cents - sum(amount_cents) <> balance_cents (ignoring late fees).",
            ]),
            (["## 2. Overdue notice on the due date (SUP-1201)", "## SUP-1201: time zones"], [
                "`is_overdue` compares `datetime.utcnow().date()` with the due date, but the due date is a local calendar day of the account.",
                "In Los Angeles UTC midnight is 17:00 (16:00 in winter), so from then on the invoice counts as overdue although the customer still has the rest of the day.",
                "Europe is ahead of UTC, which is why nobody there complained: they get the notice late, not early.",
                "Fix: compute today in the account's time zone with zoneinfo and pass the account's timezone from both callers.",
                "Impact: money and trust, a $15 fee charged too early, three tickets this month.",
                "To find them: late fees applied where the reminder was sent before the end of the due date in the account's zone.",
            ]),
            (["## 3. FX KeyError bursts (SUP-1212)", "## SUP-1212: RateCache race"], [
                "`_refresh_if_stale` clears the shared dict and then fills it again, and other request threads read it in between, hence `KeyError: 'USD'`.",
                "It happens every five minutes because that is the TTL, and more at peak because more threads hit the window.",
                "When the fetch raised, `_fetched_at` had already been moved forward, so the table stayed empty until the next refresh five minutes later.",
                "Fix: a lock around the refresh, build the new table first and swap it in, keep the old rates if the provider fails.",
                "Impact: availability, error pages for accounts with a different display currency.",
            ]),
            (["## 4. Missing last page (SUP-1184)", "## SUP-1184: pagination"], [
                "`total // PAGE_SIZE` rounds down, so 47 invoices are reported as two pages and page 3 answers 404.",
                "With exactly 60 invoices the division is exact, which is why that customer sees everything.",
                "Fix: round up. Impact: annoyance, nothing is lost, but customers think invoices are missing.",
                "Affected: every account whose invoice count is not a multiple of 20 and above 20.",
            ]),
            (["## Other things I noticed", "## Not fixed"], [
                "`send_overdue_reminders` loads every active account and then every invoice one query at a time; fine now, slow later.",
                "The webhook trusts metadata.invoice_id from the provider; it is signed, so acceptable.",
                "No test covers the list route with a real database, I stubbed the count.",
                "I would add a unique constraint on invoices (account_id, number) as well.",
            ]),
        ]),
    ],
}

CONTENT["async-task-queue"] = {
    "run": "python3 -m unittest discover -s tests -v",
    "tests_total": 8,
    "vars": {
        "claim": ["CLAIM_SQL", "_CLAIM", "CLAIM_QUERY"],
        "task": ["_run_one", "_execute", "_run_job"],
        "beat": ["_heartbeat", "_extend_lease", "_keep_leased"],
        "worker_id": ["self._id", "self._worker_id", "self.name"],
    },
    "items": [
        dict(kind="replace", group=1, file="jobqueue/schema.sql",
             old="    created_at timestamptz NOT NULL DEFAULT now()\n"
                 "    -- TODO: state, attempts, lease, last error, dedupe key, finished_at, ...\n",
             new="    created_at timestamptz NOT NULL DEFAULT now(),\n"
                 "    state      text        NOT NULL DEFAULT 'pending'\n"
                 "               CHECK (state IN ('pending', 'running', 'succeeded', 'dead')),\n"
                 "    attempts   integer     NOT NULL DEFAULT 0,\n"
                 "    max_attempts integer   NOT NULL DEFAULT 5,\n"
                 "    leased_until timestamptz,\n"
                 "    leased_by  text,\n"
                 "    last_error text,\n"
                 "    dedupe_key text,\n"
                 "    finished_at timestamptz\n"),
        dict(kind="replace", group=1, file="jobqueue/schema.sql",
             old="-- TODO: indexes for claiming and for deduplication.\n",
             new="-- claim order: priority first, then run_at; only pending rows are in the index\n"
                 "CREATE INDEX jobs_claim_idx ON jobs (priority DESC, run_at) WHERE state = 'pending';\n"
                 "-- expired leases are found through this one\n"
                 "CREATE INDEX jobs_lease_idx ON jobs (leased_until) WHERE state = 'running';\n"
                 "-- one live job per dedupe key; finished jobs free the key\n"
                 "CREATE UNIQUE INDEX jobs_dedupe_idx ON jobs (dedupe_key)\n"
                 "    WHERE dedupe_key IS NOT NULL AND state IN ('pending', 'running');\n"),
        dict(kind="replace", group=2, file="jobqueue/worker.py",
             old="    TODO: exponential from config.backoff_base, capped at config.backoff_cap, with jitter.\n"
                 "    \"\"\"\n    raise NotImplementedError",
             new="    Full jitter: uniform between 0 and min(cap, base * 2 ** (attempt - 1)).\n"
                 "    \"\"\"\n"
                 "    rng = rng or random\n"
                 "    ceiling = min(config.backoff_cap, config.backoff_base * (2 ** (attempt - 1)))\n"
                 "    return timedelta(seconds=rng.uniform(0, ceiling.total_seconds()))"),
        dict(kind="replace", group=3, file="jobqueue/worker.py",
             old="        still pending or running, returns that job's id instead.\"\"\"\n"
                 "        raise NotImplementedError  # TODO",
             new="        still pending or running, returns that job's id instead.\"\"\"\n"
                 "        while True:\n"
                 "            row = await self._pool.fetchrow(\n"
                 "                \"\"\"\n"
                 "                INSERT INTO jobs (kind, payload, priority, run_at, dedupe_key)\n"
                 "                VALUES ($1, $2, $3, coalesce($4, now()), $5)\n"
                 "                ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL\n"
                 "                    AND state IN ('pending', 'running') DO NOTHING\n"
                 "                RETURNING id\n"
                 "                \"\"\",\n"
                 "                kind, json.dumps(payload), priority, run_at, dedupe_key,\n"
                 "            )\n"
                 "            if row is not None:\n"
                 "                return row[\"id\"]\n"
                 "            existing = await self._pool.fetchval(\n"
                 "                \"SELECT id FROM jobs WHERE dedupe_key = $1 AND state IN ('pending', 'running')\",\n"
                 "                dedupe_key,\n"
                 "            )\n"
                 "            if existing is not None:\n"
                 "                return existing\n"
                 "?? " "            # the other job finished between our insert and select: try again\n"),
        dict(kind="replace", group=3, file="jobqueue/worker.py",
             old="        \"\"\"The job's current state, or None if there is no such job.\"\"\"\n"
                 "        raise NotImplementedError  # TODO",
             new="        \"\"\"The job's current state, or None if there is no such job.\"\"\"\n"
                 "        row = await self._pool.fetchrow(\n"
                 "            \"SELECT id, kind, state, attempts, last_error, priority, run_at FROM jobs WHERE id = $1\",\n"
                 "            job_id,\n"
                 "        )\n"
                 "        return JobInfo(**dict(row)) if row else None"),
        dict(kind="replace", group=2, file="jobqueue/worker.py",
             old="import asyncio\nimport logging\n",
             new="import asyncio\nimport json\nimport logging\nimport os\n"),
        dict(kind="replace", group=4, file="jobqueue/worker.py",
             old="        run, record success, retry or death, and drain on shutdown.\n"
                 "        \"\"\"\n        raise NotImplementedError",
             new="        run, record success, retry or death, and drain on shutdown.\n"
                 "        \"\"\"\n"
                 "        running: set[asyncio.Task] = set()\n"
                 "        while not self._stopping.is_set():\n"
                 "            free = self._config.concurrency - len(running)\n"
                 "            jobs = await self._claim(free) if free > 0 else []\n"
                 "            for job in jobs:\n"
                 "                task = asyncio.create_task(self.@[task](job))\n"
                 "                running.add(task)\n"
                 "                task.add_done_callback(running.discard)\n"
                 "            if not jobs:\n"
                 "                try:\n"
                 "                    await asyncio.wait_for(\n"
                 "                        self._stopping.wait(), self._config.poll_interval.total_seconds()\n"
                 "                    )\n"
                 "                except TimeoutError:\n"
                 "                    pass\n"
                 "        if running:\n"
                 "            done, pending = await asyncio.wait(\n"
                 "                running, timeout=self._config.shutdown_grace.total_seconds()\n"
                 "            )\n"
                 "            for task in pending:\n"
                 "                task.cancel()\n"
                 "            await asyncio.gather(*pending, return_exceptions=True)\n"
                 "\n"
                 "    async def _claim(self, limit: int) -> list[Job]:\n"
                 "        rows = await self._pool.fetch(\n"
                 "            \"\"\"\n"
                 "            UPDATE jobs SET state = 'running', attempts = attempts + 1,\n"
                 "                   leased_until = now() + $2::interval, leased_by = $3\n"
                 "            WHERE id IN (\n"
                 "                SELECT id FROM jobs\n"
                 "                WHERE (state = 'pending' AND run_at <= now())\n"
                 "                   OR (state = 'running' AND leased_until < now())\n"
                 "                ORDER BY priority DESC, run_at\n"
                 "                LIMIT $1\n"
                 "                FOR UPDATE SKIP LOCKED\n"
                 "            )\n"
                 "            RETURNING id, kind, payload, attempts\n"
                 "            \"\"\",\n"
                 "            limit, self._config.lease, @[worker_id],\n"
                 "        )\n"
                 "        return [Job(r[\"id\"], r[\"kind\"], json.loads(r[\"payload\"]), r[\"attempts\"]) for r in rows]\n"
                 "\n"
                 "    async def @[task](self, job: Job) -> None:\n"
                 "        beat = asyncio.create_task(self.@[beat](job.id))\n"
                 "        try:\n"
                 "            await self._handlers[job.kind](job)\n"
                 "        except asyncio.CancelledError:\n"
                 "            await self._release(job.id)\n"
                 "            raise\n"
                 "        except PermanentError as exc:\n"
                 "            await self._finish(job.id, \"dead\", repr(exc))\n"
                 "        except Exception as exc:  # anything else counts as transient\n"
                 "            await self._retry_or_bury(job, repr(exc))\n"
                 "        else:\n"
                 "            await self._finish(job.id, \"succeeded\", None)\n"
                 "        finally:\n"
                 "            beat.cancel()\n"
                 "\n"
                 "    async def @[beat](self, job_id: int) -> None:\n"
                 "        while True:\n"
                 "            await asyncio.sleep(self._config.lease.total_seconds() / 3)\n"
                 "            await self._pool.execute(\n"
                 "                \"UPDATE jobs SET leased_until = now() + $2::interval\"\n"
                 "                \" WHERE id = $1 AND state = 'running' AND leased_by = $3\",\n"
                 "                job_id, self._config.lease, @[worker_id],\n"
                 "            )\n"),
        dict(kind="replace", group=2, file="jobqueue/handlers.py",
             old='        key = f"thumbnails/{document_id}/{uuid.uuid4()}.jpg"',
             new='?? ' '        # deterministic key: a rerun overwrites the same object instead of leaking a new one\n'
                 '        key = f"thumbnails/{document_id}/w{THUMBNAIL_WIDTH}.jpg"'),
        dict(kind="replace", group=2, file="jobqueue/handlers.py",
             old='            " VALUES ($1, $2, $3)",',
             new='            " VALUES ($1, $2, $3) ON CONFLICT (document_id, width) DO NOTHING",'),
        dict(kind="append", group=5, file="tests/test_worker.py",
             text='\n'
                  '\n'
                  'class RetryDelayTests(unittest.TestCase):\n'
                  '    def test_delay_is_capped_and_jittered(self):\n'
                  '        rng = random.Random(@{7|42|1234})\n'
                  '        delays = [retry_delay(10, FAST, rng) for _ in range(200)]\n'
                  '        self.assertTrue(all(d <= FAST.backoff_cap for d in delays))\n'
                  '        self.assertGreater(len(set(delays)), 150)\n'
                  '\n'
                  '    def test_first_retry_is_short(self):\n'
                  '        rng = random.Random(3)\n'
                  '        self.assertLessEqual(retry_delay(1, FAST, rng), FAST.backoff_base)\n'),
        dict(kind="append", group=6, file="tests/test_worker.py",
             text='\n'
                  '\n'
                  'class KillTests(DatabaseTestCase):\n'
                  '    async def test_job_survives_sigkill_of_its_worker(self):\n'
                  '        queue = Queue(self.pool)\n'
                  '        job_id = await queue.enqueue("sleep", {"seconds": 30})\n'
                  '        proc = await asyncio.create_subprocess_exec(\n'
                  '            "python3", "-m", "tests.sleepy_worker", self.url, self.schema\n'
                  '        )\n'
                  '        await wait_until_state(queue, job_id, "running")\n'
                  '        proc.kill()\n'
                  '        await proc.wait()\n'
                  '        done = []\n'
                  '\n'
                  '        async def sleep(job):\n'
                  '            done.append(job.attempt)\n'
                  '\n'
                  '        worker = Worker(self.pool, {"sleep": sleep}, FAST)\n'
                  '        task = asyncio.create_task(worker.run())\n'
                  '        await wait_until(lambda: done, timeout=10)\n'
                  '        worker.stop()\n'
                  '        await task\n'
                  '        self.assertEqual(done, [2])\n'),
        dict(kind="notes", group=1, file="NOTES.md", title="# Notes", sections=[
            (["## Claim query", "## Claiming"], [
                "Workers claim with UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED LIMIT n), so two workers never lock the same row and nobody waits on a locked one.",
                "The claim also takes running jobs whose lease has expired, which is how work of a dead worker comes back.",
                "Ordering is priority DESC, run_at, served by a partial index on pending rows only, so a flood of low priority jobs does not slow the claim of high priority ones.",
                "attempts is incremented in the same statement, so a crash right after the claim still counts as an attempt.",
            ]),
            (["## States", "## State machine"], [
                "pending -> running -> succeeded, running -> pending (transient error, run_at = now + backoff), running -> dead (permanent error or max attempts).",
                "A lease that runs out puts a running job back in play without any state change; the next claim takes it over.",
                "On SIGTERM the worker stops claiming, waits up to 25 s, cancels what is left and sets those jobs back to pending with leased_until = NULL.",
            ]),
            (["## Failure points", "## What happens when things die"], [
                "Crash before the commit of the claim: nothing happened, the row is still pending.",
                "Crash while the handler runs: the lease expires after at most 60 s and another worker runs the job again, so handlers must be idempotent.",
                "Crash after the handler succeeded but before we recorded it: the job runs twice. This is the at-least-once part.",
                "The thumbnail handler used a random uuid in the key, so every rerun leaked an object and inserted a second row; now the key is deterministic and the insert uses ON CONFLICT.",
            ]),
            (["## Bloat", "## Table size at 200 jobs/s"], [
                "200 jobs/s is about 17 million rows a day, each updated three or four times.",
                "Finished jobs are deleted in batches by a cleanup task after a day, or the table is partitioned by created_at and old partitions dropped.",
                "Autovacuum on jobs needs a much lower scale factor (0.01) so dead tuples are cleaned continuously.",
                "The partial indexes stay small because finished rows leave them.",
            ]),
            (["## Monitoring"], [
                "Queue depth by kind and priority, age of the oldest pending job, jobs going dead per minute, lease expiries (a sign of crashing workers) and the claim query latency.",
            ]),
        ]),
    ],
}

CONTENT["database-schema-optimization"] = {
    "run": "python3 tests/run_tests.py",
    "tests_total": 7,
    "vars": {
        "ix_orders": ["orders_customer_created_idx", "orders_customer_history_idx", "idx_orders_customer_created"],
        "ix_email": ["customers_email_lower_idx", "customers_lower_email_idx", "idx_customers_email_lower"],
        "ix_items": ["order_items_product_idx", "idx_order_items_product", "order_items_product_id_idx"],
    },
    "items": [
        dict(kind="append", group=1, file="migration.sql",
             text="\n"
                  "-- Never wait long for a lock on a busy table: fail and retry instead.\n"
                  "SET lock_timeout = '@{2s|1500ms|1s}';\n"
                  "SET statement_timeout = 0;\n"
                  "\n"
                  "-- 1. \"My orders\": one index scan per page, in the page's order.\n"
                  "-- CONCURRENTLY cannot run inside a transaction block (psql autocommit is fine).\n"
                  "CREATE INDEX CONCURRENTLY IF NOT EXISTS @[ix_orders]\n"
                  "    ON orders (customer_id, created_at DESC, id DESC)\n"
                  "    WHERE status <> 'cancelled';\n"),
        dict(kind="append", group=2, file="migration.sql",
             text="\n"
                  "-- 3. login: lower(email) matches this expression index, not the unique one.\n"
                  "CREATE INDEX CONCURRENTLY IF NOT EXISTS @[ix_email]\n"
                  "    ON customers (lower(email));\n"
                  "\n"
                  "-- 2. merchant dashboard: order_items has no index on product_id at all.\n"
                  "CREATE INDEX CONCURRENTLY IF NOT EXISTS @[ix_items]\n"
                  "    ON order_items (product_id, order_id);\n"
                  "CREATE INDEX CONCURRENTLY IF NOT EXISTS products_merchant_id_idx\n"
                  "    ON products (merchant_id, id);\n"),
        dict(kind="append", group=3, file="migration.sql",
             text="\n"
                  "-- status has six values and is never queried alone: the index only costs writes.\n"
                  "DROP INDEX CONCURRENTLY IF EXISTS orders_status_idx;\n"
                  "\n"
                  "-- A failed CONCURRENTLY build leaves an INVALID index behind; drop it and rerun:\n"
                  "--   SELECT indexrelid::regclass FROM pg_index WHERE NOT indisvalid;\n"
                  "\n"
                  "-- 4. money: add exact columns now (no rewrite, no default), backfill in batches,\n"
                  "-- switch readers in the next deploy, drop the float columns much later.\n"
                  "ALTER TABLE orders ADD COLUMN IF NOT EXISTS total_amount_exact numeric(12, 2);\n"
                  "ALTER TABLE order_items ADD COLUMN IF NOT EXISTS unit_price_exact numeric(12, 2);\n"
                  "ALTER TABLE products ADD COLUMN IF NOT EXISTS unit_price_exact numeric(12, 2);\n"),
        dict(kind="replace", group=4, file="queries.sql",
             old="SELECT *\n"
                 "FROM (\n"
                 "    SELECT o.id, o.created_at, o.status, o.total_amount, o.currency, count(*) AS item_count\n"
                 "    FROM orders o\n"
                 "    JOIN order_items oi ON oi.order_id = o.id\n"
                 "    WHERE o.customer_id = $1\n"
                 "      AND o.status <> 'cancelled'\n"
                 "    GROUP BY o.id\n"
                 ") history\n"
                 "WHERE $2 IS NULL OR (history.created_at, history.id) < ($2, $3)\n"
                 "ORDER BY history.created_at DESC, history.id DESC\n"
                 "LIMIT 20;",
             new="SELECT o.id, o.created_at, o.status, o.total_amount, o.currency, items.item_count\n"
                 "FROM orders o\n"
                 "CROSS JOIN LATERAL (\n"
                 "    SELECT count(*) AS item_count FROM order_items oi WHERE oi.order_id = o.id\n"
                 ") items\n"
                 "WHERE o.customer_id = $1\n"
                 "  AND o.status <> 'cancelled'\n"
                 "  AND ($2::timestamptz IS NULL OR (o.created_at, o.id) < ($2, $3))\n"
                 "  AND items.item_count > 0\n"
                 "ORDER BY o.created_at DESC, o.id DESC\n"
                 "LIMIT 20;"),
        dict(kind="replace", group=5, file="queries.sql",
             old="FROM order_items oi\n"
                 "JOIN products p ON p.id = oi.product_id\n"
                 "JOIN orders o   ON o.id = oi.order_id\n"
                 "WHERE p.merchant_id = $1\n",
             new="FROM products p\n"
                 "JOIN order_items oi ON oi.product_id = p.id\n"
                 "JOIN orders o       ON o.id = oi.order_id\n"
                 "WHERE p.merchant_id = $1\n"),
        dict(kind="notes", group=1, file="ANALYSIS.md", title="# Analysis", sections=[
            (["## 1. My orders", "## #1 \"My orders\" (431 h/week)"], [
                "The plan scans orders_created_at_idx backwards and filters on customer_id, so it reads millions of rows to return 20: rows removed by filter dwarfs the rows returned.",
                "The join to order_items and the GROUP BY happen before the LIMIT, and OFFSET makes deep pages read and throw away everything before them.",
                "An index on (customer_id, created_at DESC, id DESC) WHERE status <> 'cancelled' returns the page in order, so the sort disappears and the LIMIT stops the scan after 20 rows.",
                "Keyset pagination on (created_at, id) replaces OFFSET: page 200 starts with an index seek, the same cost as page 1.",
                "The UI loses \"page N of M\"; next/previous links are enough, and a total can be shown as \"1,000+\".",
            ]),
            (["## 2. Merchant revenue", "## #2 merchant dashboard"], [
                "order_items has no index on product_id, so the planner hashes the whole table (hundreds of GB of buffers) for every dashboard load.",
                "With (product_id, order_id) the plan starts from the merchant's products, then finds their lines and probes orders by primary key.",
                "For the biggest merchants it is still a lot of rows; a daily rollup table maintained by a job would be the next step.",
                "Estimates were off by two orders of magnitude for large merchants; raising the statistics target on products.merchant_id would help the planner.",
            ]),
            (["## 3. Login", "## #3 customer_by_email"], [
                "lower(email) cannot use the unique index on email, so every login is a sequential scan of 2.3 million rows.",
                "An expression index on lower(email) fixes it. Making it UNIQUE would be better but there are duplicates differing only in case; those need cleaning first.",
            ]),
            (["## Money", "## double precision to numeric"], [
                "Floats cannot represent most cent values, so sums of lines drift from order totals.",
                "Plan: add numeric(12,2) columns, write both from the application, backfill old rows in batches of 10k by id with short transactions, verify, switch reads, then drop the float columns.",
                "ALTER COLUMN TYPE would rewrite the 40M row table under an ACCESS EXCLUSIVE lock, which is exactly what we cannot do.",
            ]),
            (["## Verifying", "## After deploy"], [
                "pg_stat_statements mean time per statement before and after, EXPLAIN (ANALYZE, BUFFERS) on a replica for a big customer and a big merchant, and idx_scan on the new indexes.",
                "Watch write latency on orders after dropping and adding indexes.",
            ]),
        ]),
    ],
}

CONTENT["distributed-cache-strategy"] = {
    "run": "go test -race ./...",
    "tests_total": 6,
    "vars": {
        "flight": ["flight", "loads", "inflight", "sf"],
        "jitter": ["jitteredTTL", "withJitter", "ttlWithJitter"],
        "local": ["local", "hot", "l1"],
    },
    "items": [
        dict(kind="append", group=1, file="catalog/singleflight.go",
             text="package catalog\n"
                  "\n"
                  "import \"sync\"\n"
                  "\n"
                  "// call is one in-flight database load that concurrent misses wait on.\n"
                  "type call struct {\n"
                  "\twg  sync.WaitGroup\n"
                  "\tval Product\n"
                  "\terr error\n"
                  "}\n"
                  "\n"
                  "// group makes sure there is at most one load per key per instance.\n"
                  "type group struct {\n"
                  "\tmu    sync.Mutex\n"
                  "\tcalls map[string]*call\n"
                  "}\n"
                  "\n"
                  "func (g *group) Do(key string, fn func() (Product, error)) (Product, error) {\n"
                  "\tg.mu.Lock()\n"
                  "\tif g.calls == nil {\n"
                  "\t\tg.calls = make(map[string]*call)\n"
                  "\t}\n"
                  "\tif c, ok := g.calls[key]; ok {\n"
                  "\t\tg.mu.Unlock()\n"
                  "\t\tc.wg.Wait()\n"
                  "\t\treturn c.val, c.err\n"
                  "\t}\n"
                  "\tc := &call{}\n"
                  "\tc.wg.Add(1)\n"
                  "\tg.calls[key] = c\n"
                  "\tg.mu.Unlock()\n"
                  "\n"
                  "\tc.val, c.err = fn()\n"
                  "\tc.wg.Done()\n"
                  "\n"
                  "\tg.mu.Lock()\n"
                  "\tdelete(g.calls, key)\n"
                  "\tg.mu.Unlock()\n"
                  "\treturn c.val, c.err\n"
                  "}\n"),
        dict(kind="replace", group=2, file="catalog/catalog.go",
             old="\t\"log/slog\"\n\t\"time\"\n",
             new="\t\"log/slog\"\n\t\"math/rand/v2\"\n\t\"time\"\n"),
        dict(kind="replace", group=2, file="catalog/catalog.go",
             old="const productTTL = 10 * time.Minute\n",
             new="const (\n"
                 "\tproductTTL = 10 * time.Minute\n"
                 "\t// prices must be fresh within 5 s; events do most of the work, the TTL is the backstop\n"
                 "\tpriceTTL = 60 * time.Second\n"
                 "\tjitterFraction = 0.2\n"
                 ")\n"
                 "\n"
                 "// @[jitter] spreads expiries so that popular keys written together do not expire together.\n"
                 "func @[jitter](ttl time.Duration) time.Duration {\n"
                 "\tdelta := time.Duration(float64(ttl) * jitterFraction * rand.Float64())\n"
                 "\treturn ttl - delta\n"
                 "}\n"),
        dict(kind="replace", group=2, file="catalog/catalog.go",
             old="\tclock Clock\n\tlog   *slog.Logger\n}\n",
             new="\tclock Clock\n\tlog   *slog.Logger\n\n\t@[flight] group\n}\n"),
        dict(kind="replace", group=3, file="catalog/catalog.go",
             old="\t// Keep popular products warm: every hit pushes the expiry back.\n"
                 "\traw, err := s.cache.GetEx(ctx, k, productTTL)\n",
             new="?? " "\t// GetEx pushed the expiry back on every hit, so a hot key never expired: stale forever.\n"
                 "\traw, err := s.cache.Get(ctx, k)\n"),
        dict(kind="replace", group=3, file="catalog/catalog.go",
             old="\tcase !errors.Is(err, ErrNotFound):\n"
                 "\t\treturn Product{}, fmt.Errorf(\"cache: %w\", err)\n"
                 "\t}\n"
                 "\n"
                 "\tp, err := s.db.GetProduct(ctx, sku, country)\n"
                 "\tif err != nil {\n"
                 "\t\treturn Product{}, err\n"
                 "\t}\n"
                 "\traw, _ = json.Marshal(p)\n"
                 "\tif err := s.cache.Set(ctx, k, raw, productTTL); err != nil {\n"
                 "\t\ts.log.Warn(\"cache set failed\", \"key\", k, \"err\", err)\n"
                 "\t}\n"
                 "\treturn p, nil\n",
             new="\tcase !errors.Is(err, ErrNotFound):\n"
                 "\t\t// Redis is slow or down: degrade to the database, but still one load per key\n"
                 "\t\ts.log.Warn(\"cache get failed\", \"key\", k, \"err\", err)\n"
                 "\t}\n"
                 "\n"
                 "\treturn s.@[flight].Do(k, func() (Product, error) {\n"
                 "\t\tp, err := s.db.GetProduct(ctx, sku, country)\n"
                 "\t\tif err != nil {\n"
                 "\t\t\treturn Product{}, err\n"
                 "\t\t}\n"
                 "\t\traw, _ := json.Marshal(p)\n"
                 "\t\tif err := s.cache.Set(ctx, k, raw, @[jitter](priceTTL)); err != nil {\n"
                 "\t\t\ts.log.Warn(\"cache set failed\", \"key\", k, \"err\", err)\n"
                 "\t\t}\n"
                 "\t\treturn p, nil\n"
                 "\t})\n"),
        dict(kind="replace", group=4, file="catalog/catalog.go",
             old="\t// Invalidate first so nobody reads the old price from the cache.\n"
                 "\tif err := s.cache.Delete(ctx, key(sku, country)); err != nil {\n"
                 "\t\treturn fmt.Errorf(\"cache: %w\", err)\n"
                 "\t}\n"
                 "\tif _, err := s.db.UpdatePrice(ctx, sku, country, priceMinor); err != nil {\n"
                 "\t\treturn err\n"
                 "\t}\n"
                 "\treturn nil\n",
             new="\t// Write first, then invalidate. Deleting first lets a concurrent miss read the old\n"
                 "\t// price from a lagging replica and put it back after our delete.\n"
                 "\tif _, err := s.db.UpdatePrice(ctx, sku, country, priceMinor); err != nil {\n"
                 "\t\treturn err\n"
                 "\t}\n"
                 "\tif err := s.cache.Delete(ctx, key(sku, country)); err != nil {\n"
                 "\t\ts.log.Warn(\"cache delete failed\", \"sku\", sku, \"err\", err)\n"
                 "\t}\n"
                 "\treturn nil\n"),
        dict(kind="replace", group=4, file="catalog/catalog.go",
             old="func (s *Service) OnPriceChanged(ctx context.Context, ev PriceChanged) error {\n"
                 "\treturn nil\n",
             new="func (s *Service) OnPriceChanged(ctx context.Context, ev PriceChanged) error {\n"
                 "\tk := key(ev.SKU, ev.Country)\n"
                 "\traw, err := s.cache.Get(ctx, k)\n"
                 "\tif err != nil {\n"
                 "\t\tif errors.Is(err, ErrNotFound) {\n"
                 "\t\t\treturn nil\n"
                 "\t\t}\n"
                 "\t\treturn err\n"
                 "\t}\n"
                 "\tvar p Product\n"
                 "\tif err := json.Unmarshal(raw, &p); err != nil || p.PriceVersion >= ev.PriceVersion {\n"
                 "\t\treturn nil // corrupt, or already newer than the event\n"
                 "\t}\n"
                 "\tp.PriceMinor, p.Currency, p.PriceVersion = ev.PriceMinor, ev.Currency, ev.PriceVersion\n"
                 "\traw, _ = json.Marshal(p)\n"
                 "\treturn s.cache.Set(ctx, k, raw, @[jitter](priceTTL))\n"),
        dict(kind="append", group=5, file="catalog/strategy_test.go",
             text="package catalog\n"
                  "\n"
                  "import (\n"
                  "\t\"context\"\n"
                  "\t\"sync\"\n"
                  "\t\"testing\"\n"
                  "\t\"time\"\n"
                  ")\n"
                  "\n"
                  "func TestJitteredTTLStaysInBounds(t *testing.T) {\n"
                  "\tfor i := 0; i < @{1000|500|2000}; i++ {\n"
                  "\t\td := @[jitter](priceTTL)\n"
                  "\t\tif d > priceTTL || d < time.Duration(float64(priceTTL)*(1-jitterFraction)) {\n"
                  "\t\t\tt.Fatalf(\"ttl %v out of bounds\", d)\n"
                  "\t\t}\n"
                  "\t}\n"
                  "}\n"
                  "\n"
                  "func TestConcurrentMissesLoadOnce(t *testing.T) {\n"
                  "\tclock := newFakeClock()\n"
                  "\tdb := newFakeDB(clock, 200*time.Millisecond, jacket())\n"
                  "\ts := newTestService(db, newFakeCache(clock), clock)\n"
                  "\tvar wg sync.WaitGroup\n"
                  "\tfor i := 0; i < 50; i++ {\n"
                  "\t\twg.Add(1)\n"
                  "\t\tgo func() {\n"
                  "\t\t\tdefer wg.Done()\n"
                  "\t\t\t_, _ = s.GetProduct(context.Background(), \"KJ-2291-M\", \"GB\")\n"
                  "\t\t}()\n"
                  "\t}\n"
                  "\twg.Wait()\n"
                  "\tif n := db.Loads.Load(); n != 1 {\n"
                  "\t\tt.Fatalf(\"%d loads, want 1\", n)\n"
                  "\t}\n"
                  "}\n"),
        dict(kind="notes", group=1, file="DESIGN.md", title="# Catalogue caching", sections=[
            (["## Policy per kind of data", "## Freshness"], [
                "Prices: Redis entry with a 60 s TTL (jittered down by up to 20 %), updated in place by price_changed events, which arrive within a second or two.",
                "Stock: 30 s TTL, no events; a short in-process cache of 2 s in front of Redis absorbs hot keys.",
                "Titles and descriptions: 10 minutes, they almost never change.",
                "Every cached value carries price_version; a write never replaces a newer version with an older one.",
            ]),
            (["## The stale-forever bug", "## Why old prices stayed forever"], [
                "UpdatePrice deleted the key before writing the database, and GetProduct reads a replica that lags 50-800 ms.",
                "A miss between the delete and the replica catching up loads the old price and writes it back with a fresh TTL.",
                "Because GetEx resets the TTL on every hit, a popular product never expires again: the old price stays until the next price change.",
                "Now the database is written first, the cache is deleted after, the TTL is never extended on reads, and the event handler overwrites only with newer versions.",
            ]),
            (["## Stampedes and hot keys", "## Flash sales"], [
                "A per-instance singleflight group makes concurrent misses for one key wait for a single load: at most 24 loads per key, one per instance.",
                "Jittered TTLs stop popular keys written at the same time from expiring together.",
                "For the 40 % SKU, a small in-process LRU (a few thousand entries, 1-2 s) means Redis sees one read per instance per second for it instead of thousands.",
            ]),
            (["## Failures", "## When Redis is slow or down"], [
                "Redis calls get a 20 ms timeout; on error we go to the database through the same singleflight, so load on the replicas is bounded by distinct keys, not requests.",
                "A circuit breaker stops calling Redis for a few seconds after repeated timeouts.",
                "After a shard failover comes back empty, the singleflight and the local cache keep the cold-miss load near the number of distinct hot keys, well under 3,000/s.",
            ]),
            (["## Capacity", "## Numbers"], [
                "About 400k SKU x country pairs at roughly 2 KB each is under 1 GB in Redis; the local cache is capped at 200 MB per instance.",
            ]),
            (["## Metrics and alerts"], [
                "Hit ratio per layer, loads per second, singleflight waiters, Redis latency and errors, event lag of price_changed, and a canary comparing cached and database prices.",
            ]),
        ]),
    ],
}

CONTENT["microservice-orchestration"] = {
    "run": "npm test",
    "tests_total": 7,
    "vars": {
        "repo": ["repository", "repo", "store"],
        "saga": ["saga", "s", "record"],
        "step": ["advance", "step", "next"],
    },
    "items": [
        dict(kind="replace", group=1, file="src/saga.ts",
             old="export interface SagaRepository {\n  // TODO\n}\n",
             new="export type SagaState =\n"
                 "  | \"started\"\n"
                 "  | \"held\"\n"
                 "  | \"authorized\"\n"
                 "  | \"points_debited\"\n"
                 "  | \"confirmed\"\n"
                 "  | \"captured\"\n"
                 "  | \"completed\"\n"
                 "  | \"compensating\"\n"
                 "  | \"failed\";\n"
                 "\n"
                 "export interface SagaRecord {\n"
                 "  checkoutId: string;\n"
                 "  idempotencyKey: string;\n"
                 "  request: CheckoutRequest;\n"
                 "  state: SagaState;\n"
                 "  holdId?: string;\n"
                 "  paymentId?: string;\n"
                 "  bookingRef?: string;\n"
                 "  debitEntryId?: string;\n"
                 "  error?: string;\n"
                 "  version: number;\n"
                 "  updatedAt: number;\n"
                 "}\n"
                 "\n"
                 "export interface SagaRepository {\n"
                 "  insert(record: SagaRecord): Promise<SagaRecord>;\n"
                 "  byKey(idempotencyKey: string): Promise<SagaRecord | undefined>;\n"
                 "  get(checkoutId: string): Promise<SagaRecord | undefined>;\n"
                 "  /** Optimistic concurrency: fails when `expectedVersion` is not the stored one. */\n"
                 "  update(record: SagaRecord, expectedVersion: number): Promise<SagaRecord>;\n"
                 "  inFlight(): Promise<SagaRecord[]>;\n"
                 "}\n"),
        dict(kind="replace", group=1, file="src/saga.ts",
             old="export class InMemorySagaRepository implements SagaRepository {\n  // TODO\n}\n",
             new="export class InMemorySagaRepository implements SagaRepository {\n"
                 "  private rows = new Map<string, SagaRecord>();\n"
                 "\n"
                 "  async insert(record: SagaRecord): Promise<SagaRecord> {\n"
                 "    const existing = await this.byKey(record.idempotencyKey);\n"
                 "    if (existing) return existing;\n"
                 "    this.rows.set(record.checkoutId, structuredClone(record));\n"
                 "    return structuredClone(record);\n"
                 "  }\n"
                 "\n"
                 "  async byKey(idempotencyKey: string): Promise<SagaRecord | undefined> {\n"
                 "    for (const row of this.rows.values()) {\n"
                 "      if (row.idempotencyKey === idempotencyKey) return structuredClone(row);\n"
                 "    }\n"
                 "    return undefined;\n"
                 "  }\n"
                 "\n"
                 "  async get(checkoutId: string): Promise<SagaRecord | undefined> {\n"
                 "    const row = this.rows.get(checkoutId);\n"
                 "    return row && structuredClone(row);\n"
                 "  }\n"
                 "\n"
                 "  async update(record: SagaRecord, expectedVersion: number): Promise<SagaRecord> {\n"
                 "    const current = this.rows.get(record.checkoutId);\n"
                 "    if (!current || current.version !== expectedVersion) {\n"
                 "      throw new Error(`version conflict on ${record.checkoutId}`);\n"
                 "    }\n"
                 "    const next = { ...record, version: expectedVersion + 1 };\n"
                 "    this.rows.set(next.checkoutId, structuredClone(next));\n"
                 "    return next;\n"
                 "  }\n"
                 "\n"
                 "  async inFlight(): Promise<SagaRecord[]> {\n"
                 "    return [...this.rows.values()]\n"
                 "      .filter((r) => r.state !== \"completed\" && r.state !== \"failed\")\n"
                 "      .map((r) => structuredClone(r));\n"
                 "  }\n"
                 "}\n"),
        dict(kind="replace", group=2, file="src/saga.ts",
             old="  async start(idempotencyKey: string, request: CheckoutRequest): Promise<{ checkoutId: string }> {\n"
                 "    throw new Error(\"not implemented\");\n"
                 "  }\n",
             new="  async start(idempotencyKey: string, request: CheckoutRequest): Promise<{ checkoutId: string }> {\n"
                 "    const @[saga] = await this.repository.insert({\n"
                 "      checkoutId: `co_${randomUUID()}`,\n"
                 "      idempotencyKey,\n"
                 "      request,\n"
                 "      state: \"started\",\n"
                 "      version: 0,\n"
                 "      updatedAt: this.time.now(),\n"
                 "    });\n"
                 "    return { checkoutId: @[saga].checkoutId };\n"
                 "  }\n"),
        dict(kind="replace", group=3, file="src/saga.ts",
             old="  async run(checkoutId: string): Promise<CheckoutView> {\n"
                 "    throw new Error(\"not implemented\");\n"
                 "  }\n",
             new="  async run(checkoutId: string): Promise<CheckoutView> {\n"
                 "    let @[saga] = await this.repository.get(checkoutId);\n"
                 "    if (!@[saga]) throw new Error(`unknown checkout ${checkoutId}`);\n"
                 "    while (@[saga].state !== \"completed\" && @[saga].state !== \"failed\") {\n"
                 "      @[saga] = await this.@[step](@[saga]);\n"
                 "    }\n"
                 "    return view(@[saga]);\n"
                 "  }\n"
                 "\n"
                 "  private async @[step](s: SagaRecord): Promise<SagaRecord> {\n"
                 "    const key = s.checkoutId;\n"
                 "    try {\n"
                 "      switch (s.state) {\n"
                 "        case \"started\": {\n"
                 "          const hold = await this.deps.inventory.hold({ holdKey: key, items: s.request.items });\n"
                 "          return this.save(s, { state: \"held\", holdId: hold.holdId });\n"
                 "        }\n"
                 "        case \"held\": {\n"
                 "          const payment = await this.authorize(s);\n"
                 "          return this.save(s, { state: \"authorized\", paymentId: payment });\n"
                 "        }\n"
                 "        case \"authorized\": {\n"
                 "          // Loyalty has no idempotency: look for our reference before debiting\n"
                 "          const entries = await this.deps.loyalty.entriesByReference(key);\n"
                 "          const debit = entries.find((e) => e.kind === \"debit\");\n"
                 "          const entryId = debit\n"
                 "            ? debit.entryId\n"
                 "            : (await this.deps.loyalty.debit({ customerId: s.request.customerId, points: s.request.pointsToRedeem, reference: key })).entryId;\n"
                 "          return this.save(s, { state: \"points_debited\", debitEntryId: entryId });\n"
                 "        }\n"
                 "        case \"points_debited\": {\n"
                 "          // pivot: once the supplier confirmed, we only go forward\n"
                 "          const booking = await this.deps.inventory.confirm(s.holdId!);\n"
                 "          return this.save(s, { state: \"confirmed\", bookingRef: booking.bookingRef });\n"
                 "        }\n"
                 "        case \"confirmed\":\n"
                 "          await this.deps.payments.capture(s.paymentId!);\n"
                 "          return this.save(s, { state: \"captured\" });\n"
                 "        case \"captured\":\n"
                 "          await this.deps.notifications.send({\n"
                 "            dedupeKey: `booking-confirmed:${key}`,\n"
                 "            to: s.request.email,\n"
                 "            template: \"booking-confirmed\",\n"
                 "            data: { bookingRef: s.bookingRef },\n"
                 "          });\n"
                 "          return this.save(s, { state: \"completed\" });\n"
                 "        case \"compensating\":\n"
                 "          await this.compensate(s);\n"
                 "          return this.save(s, { state: \"failed\" });\n"
                 "        default:\n"
                 "          return s;\n"
                 "      }\n"
                 "    } catch (err) {\n"
                 "      if (err instanceof CrashError) throw err;\n"
                 "      if (isRetryable(err)) {\n"
                 "        await this.time.sleep(backoff(s));\n"
                 "        return s;\n"
                 "      }\n"
                 "      return this.save(s, { state: \"compensating\", error: String(err) });\n"
                 "    }\n"
                 "  }\n"),
        dict(kind="replace", group=4, file="src/saga.ts",
             old="  async recover(): Promise<void> {\n"
                 "    throw new Error(\"not implemented\");\n"
                 "  }\n",
             new="  async recover(): Promise<void> {\n"
                 "    for (const s of await this.repository.inFlight()) {\n"
                 "      await this.run(s.checkoutId);\n"
                 "    }\n"
                 "  }\n"),
        dict(kind="replace", group=4, file="src/saga.ts",
             old="  async status(checkoutId: string): Promise<CheckoutView | undefined> {\n"
                 "    throw new Error(\"not implemented\");\n"
                 "  }\n",
             new="  async status(checkoutId: string): Promise<CheckoutView | undefined> {\n"
                 "    const s = await this.repository.get(checkoutId);\n"
                 "    return s && view(s);\n"
                 "  }\n"),
        dict(kind="replace", group=2, file="src/saga.ts",
             old="import type { CheckoutRequest, Deps } from \"./checkout.js\";\n",
             new="import { randomUUID } from \"node:crypto\";\n"
                 "import type { CheckoutRequest, Deps } from \"./checkout.js\";\n"
                 "import { TimeoutError, UnavailableError } from \"./clients.js\";\n"
                 "import { CrashError } from \"./fakes.js\";\n"
                 "\n"
                 "const isRetryable = (err: unknown) => err instanceof TimeoutError || err instanceof UnavailableError;\n"
                 "const backoff = (s: { version: number }) => Math.min(30_000, 250 * 2 ** Math.min(s.version, 7));\n"),
        dict(kind="append", group=5, file="test/saga.extra.test.ts",
             text="import assert from \"node:assert/strict\";\n"
                  "import { describe, it } from \"node:test\";\n"
                  "import { FakeClock, FaultPlan, makeFakes } from \"../src/fakes.js\";\n"
                  "import { CheckoutOrchestrator, InMemorySagaRepository } from \"../src/saga.js\";\n"
                  "\n"
                  "describe(\"saga failures\", () => {\n"
                  "  it(\"does not debit points twice after a crash between debit and save\", async () => {\n"
                  "    const plan = new FaultPlan();\n"
                  "    const clock = new FakeClock();\n"
                  "    const fakes = makeFakes(plan, clock);\n"
                  "    const repo = new InMemorySagaRepository();\n"
                  "    const first = new CheckoutOrchestrator(fakes, repo, clock);\n"
                  "    const { checkoutId } = await first.start(\"k-@{1|42|77}\", {\n"
                  "      customerId: \"cus_1\", email: \"a@example.com\", items: [], amountMinor: 1000, currency: \"EUR\", pointsToRedeem: 100,\n"
                  "    });\n"
                  "    await assert.rejects(first.run(checkoutId));\n"
                  "    await new CheckoutOrchestrator(fakes, repo, clock).recover();\n"
                  "    const view = await new CheckoutOrchestrator(fakes, repo, clock).status(checkoutId);\n"
                  "    assert.notEqual(view?.outcome, \"pending\");\n"
                  "  });\n"
                  "});\n"),
        dict(kind="notes", group=1, file="ARCHITECTURE.md", title="# Checkout saga", sections=[
            (["## States", "## State diagram"], [
                "started -> held -> authorized -> points_debited -> confirmed (pivot) -> captured -> completed; any failure before the pivot goes to compensating -> failed.",
                "The pivot is the supplier confirmation: some bookings are non-refundable from then on, so after it the saga only retries forward.",
                "Every transition is saved with optimistic concurrency (version column), so two orchestrators recovering the same saga cannot both act on it.",
            ]),
            (["## Idempotency per service", "## Retries"], [
                "Inventory holds use the checkout id as holdKey; confirm and release are idempotent.",
                "Payments authorize with the checkout id as idempotency key; after a timeout we ask findByIdempotencyKey before deciding anything.",
                "Loyalty has no idempotency: we store the checkout id as reference and look it up with entriesByReference before debiting, waiting 2 s for replica lag when the answer is empty after a timeout.",
                "Notifications dedupe on booking-confirmed:<checkout id>.",
            ]),
            (["## Failure table", "## What the customer sees"], [
                "Sold out on hold: nothing to undo, failed, the customer sees the room is gone.",
                "Card declined: release the hold, failed, declined message.",
                "Payments timeout: look the payment up by key; authorised means continue, nothing means retry the authorisation.",
                "Crash at any step: recover() reloads every saga not completed or failed and resumes from the saved state.",
                "Hold expired before confirm: void the authorisation, credit the points back, failed.",
            ]),
            (["## Why orchestration", "## Orchestration vs choreography"], [
                "Four teams and a strict order with a pivot: one place that knows the state is easier to reason about and to monitor than events bouncing between services.",
            ]),
            (["## Monitoring"], [
                "Sagas per state and their age, compensations per hour, time from start to completion, and sagas stuck in compensating.",
            ]),
        ]),
    ],
}

CONTENT["rate-limiting"] = {
    "run": "go test -race ./...",
    "tests_total": 5,
    "vars": {
        "script": ["tokenBucketScript", "bucketLua", "takeScript"],
        "bucket": ["TokenBucket", "RedisBucket", "Bucket"],
        "rate": ["Rate", "PerSecond", "RefillPerSec"],
    },
    "items": [
        dict(kind="append", group=1, file="internal/ratelimit/bucket.go",
             text="package ratelimit\n"
                  "\n"
                  "import (\n"
                  "\t\"context\"\n"
                  "\t\"fmt\"\n"
                  "\t\"strings\"\n"
                  "\t\"time\"\n"
                  ")\n"
                  "\n"
                  "// @[script] refills and takes one token atomically. KEYS[1] is the bucket hash;\n"
                  "// ARGV: rate per second, burst, now in microseconds (from Redis TIME, not ours).\n"
                  "const @[script] = `\n"
                  "local rate = tonumber(ARGV[1])\n"
                  "local burst = tonumber(ARGV[2])\n"
                  "local t = redis.call('TIME')\n"
                  "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
                  "local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')\n"
                  "local tokens = tonumber(b[1]) or burst\n"
                  "local ts = tonumber(b[2]) or now\n"
                  "tokens = math.min(burst, tokens + (now - ts) * rate / 1000000)\n"
                  "local allowed = 0\n"
                  "if tokens >= 1 then\n"
                  "  tokens = tokens - 1\n"
                  "  allowed = 1\n"
                  "end\n"
                  "redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now)\n"
                  "redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)\n"
                  "return {allowed, math.floor(tokens), math.ceil((1 - tokens) / rate * 1000)}\n"
                  "`\n"
                  "\n"
                  "// @[bucket] is a token bucket shared by every instance through Redis.\n"
                  "type @[bucket] struct {\n"
                  "\tRedis Redis\n"
                  "\t@[rate]  float64\n"
                  "\tBurst int\n"
                  "\tsha   string\n"
                  "}\n"
                  "\n"
                  "func (b *@[bucket]) Allow(ctx context.Context, key string) (Decision, error) {\n"
                  "\tkeys := []string{fmt.Sprintf(\"rl:{%s}:bucket\", key)}\n"
                  "\tres, err := b.eval(ctx, keys, b.@[rate], b.Burst)\n"
                  "\tif err != nil {\n"
                  "\t\treturn Decision{}, err\n"
                  "\t}\n"
                  "\tv, ok := res.([]any)\n"
                  "\tif !ok || len(v) != 3 {\n"
                  "\t\treturn Decision{}, fmt.Errorf(\"ratelimit: unexpected reply %v\", res)\n"
                  "\t}\n"
                  "\tallowed, remaining, retryMs := v[0].(int64), v[1].(int64), v[2].(int64)\n"
                  "\td := Decision{Allowed: allowed == 1, Limit: b.Burst, Remaining: int(remaining)}\n"
                  "\td.ResetAfter = time.Duration(float64(b.Burst-int(remaining))/b.@[rate]*1000) * time.Millisecond\n"
                  "\tif !d.Allowed {\n"
                  "\t\td.RetryAfter = time.Duration(retryMs) * time.Millisecond\n"
                  "\t}\n"
                  "\treturn d, nil\n"
                  "}\n"
                  "\n"
                  "func (b *@[bucket]) eval(ctx context.Context, keys []string, args ...any) (any, error) {\n"
                  "\tif b.sha != \"\" {\n"
                  "\t\tres, err := b.Redis.EvalSha(ctx, b.sha, keys, args...)\n"
                  "\t\tif err == nil || !strings.Contains(err.Error(), \"NOSCRIPT\") {\n"
                  "\t\t\treturn res, err\n"
                  "\t\t}\n"
                  "\t}\n"
                  "\tsha, err := b.Redis.ScriptLoad(ctx, @[script])\n"
                  "\tif err != nil {\n"
                  "\t\treturn nil, err\n"
                  "\t}\n"
                  "\tb.sha = sha\n"
                  "\treturn b.Redis.EvalSha(ctx, sha, keys, args...)\n"
                  "}\n"),
        dict(kind="replace", group=2, file="internal/ratelimit/limiter.go",
             old="\tif xff := r.Header.Get(\"X-Forwarded-For\"); xff != \"\" {\n"
                 "\t\treturn strings.TrimSpace(strings.Split(xff, \",\")[0])\n"
                 "\t}\n",
             new="\t// The load balancer appends the address it saw: only the LAST entry is trustworthy,\n"
                 "\t// everything before it is whatever the client chose to send.\n"
                 "\tif xff := r.Header.Get(\"X-Forwarded-For\"); xff != \"\" {\n"
                 "\t\tparts := strings.Split(xff, \",\")\n"
                 "\t\treturn strings.TrimSpace(parts[len(parts)-1])\n"
                 "\t}\n"),
        dict(kind="replace", group=3, file="cmd/api/main.go",
             old="\t\td, err := l.Allow(r.Context(), ratelimit.ClientIP(r))\n"
                 "\t\tif err == nil && !d.Allowed {\n"
                 "\t\t\twriteError(w, http.StatusServiceUnavailable, \"slow_down\", \"Too many requests.\")\n"
                 "\t\t\treturn\n"
                 "\t\t}\n",
             new="\t\td, err := l.Allow(r.Context(), ratelimit.ClientIP(r))\n"
                 "\t\tif err != nil {\n"
                 "\t\t\t// fail open for ordinary endpoints: Redis down must not take the API down\n"
                 "\t\t\tnext.ServeHTTP(w, r)\n"
                 "\t\t\treturn\n"
                 "\t\t}\n"
                 "\t\tw.Header().Set(\"RateLimit-Limit\", strconv.Itoa(d.Limit))\n"
                 "\t\tw.Header().Set(\"RateLimit-Remaining\", strconv.Itoa(d.Remaining))\n"
                 "\t\tw.Header().Set(\"RateLimit-Reset\", strconv.Itoa(int(math.Ceil(d.ResetAfter.Seconds()))))\n"
                 "\t\tif !d.Allowed {\n"
                 "\t\t\tw.Header().Set(\"Retry-After\", strconv.Itoa(int(math.Ceil(d.RetryAfter.Seconds()))))\n"
                 "\t\t\twriteError(w, http.StatusTooManyRequests, \"rate_limited\", \"Too many requests.\")\n"
                 "\t\t\treturn\n"
                 "\t\t}\n"),
        dict(kind="replace", group=3, file="cmd/api/main.go",
             old="\t\"log/slog\"\n\t\"net/http\"\n\t\"os\"\n",
             new="\t\"log/slog\"\n\t\"math\"\n\t\"net/http\"\n\t\"os\"\n\t\"strconv\"\n"),
        dict(kind="append", group=4, file="internal/ratelimit/bucket_test.go",
             text="package ratelimit_test\n"
                  "\n"
                  "import (\n"
                  "\t\"context\"\n"
                  "\t\"testing\"\n"
                  "\n"
                  "\t\"github.com/parcelbase/api/internal/ratelimit\"\n"
                  "\t\"github.com/parcelbase/api/internal/ratelimit/redistest\"\n"
                  ")\n"
                  "\n"
                  "func TestBurstThenRejected(t *testing.T) {\n"
                  "\trdb, _ := redistest.New(t)\n"
                  "\tb := &ratelimit.@[bucket]{Redis: rdb, @[rate]: 10, Burst: 20}\n"
                  "\tctx := context.Background()\n"
                  "\tfor i := 0; i < 20; i++ {\n"
                  "\t\tif d, err := b.Allow(ctx, \"acct_1001\"); err != nil || !d.Allowed {\n"
                  "\t\t\tt.Fatalf(\"request %d: %+v %v\", i, d, err)\n"
                  "\t\t}\n"
                  "\t}\n"
                  "\td, err := b.Allow(ctx, \"acct_1001\")\n"
                  "\tif err != nil || d.Allowed || d.RetryAfter <= 0 {\n"
                  "\t\tt.Fatalf(\"21st request: %+v %v\", d, err)\n"
                  "\t}\n"
                  "}\n"),
        dict(kind="notes", group=1, file="DESIGN.md", title="# Rate limiting", sections=[
            (["## Algorithms", "## Per API key"], [
                "Token bucket per API key in Redis, refilled in a Lua script that uses Redis TIME, so all six instances share one budget and clock skew between instances does not matter.",
                "starter 10/s burst 20, growth 50/s burst 100, platform 200/s burst 400; the bucket size is the burst.",
                "Keys use a hash tag, rl:{acct}:bucket, so a script only touches one slot.",
                "POST /v1/rates also takes a concurrency slot: a sorted set of request ids with expiry scores, 20 per key and 150 global, released when the quote returns.",
            ]),
            (["## Login protection", "## Credential stuffing"], [
                "Per account: exponential delay after failures instead of a lockout, so an attacker cannot lock a genuine user out, only slow themselves down.",
                "Per IP (the last X-Forwarded-For entry, never the first): 20 attempts a minute.",
                "Globally: if failed logins jump above the baseline we require a proof of work or captcha and alert.",
                "This does not stop a slow, widely distributed attack completely; it makes it slow and visible.",
            ]),
            (["## When Redis fails", "## Redis outages"], [
                "Ordinary endpoints fail open with a small in-process limiter as a fallback, because refusing all traffic would be worse than a short period without shared limits.",
                "POST /v1/rates fails closed to a local in-flight limit of 150 / 6 per instance, to protect the carriers.",
                "Login fails to a strict local per-IP limit.",
                "Redis calls have a 5 ms timeout so limiting never hangs a request.",
            ]),
            (["## Client contract", "## Headers"], [
                "RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset on every response, Retry-After on 429, documented with examples; higher limits via the platform plan or support.",
            ]),
            (["## Memory"], [
                "One hash of two fields per active key, about 100 bytes: 3,800 merchants is well under a megabyte, login keys expire after 15 minutes.",
            ]),
        ]),
    ],
}

CONTENT["rest-api-design"] = {
    "run": "npm test",
    "tests_total": 6,
    "vars": {
        "router": ["v1Router", "createV1Router", "v1"],
        "problem": ["problem", "sendProblem", "fail"],
        "locks": ["spaceLocks", "locks", "mutexBySpace"],
    },
    "items": [
        dict(kind="append", group=1, file="src/v1.ts",
             text="import { Router, type Request, type Response } from \"express\";\n"
                  "import { z } from \"zod\";\n"
                  "import type { Booking, Store } from \"./store.js\";\n"
                  "\n"
                  "/** RFC 9457 problem details. */\n"
                  "function @[problem](res: Response, status: number, type: string, title: string, extra: object = {}) {\n"
                  "  res.status(status).type(\"application/problem+json\").json({\n"
                  "    type: `https://api.deskly.example/problems/${type}`,\n"
                  "    title,\n"
                  "    status,\n"
                  "    ...extra,\n"
                  "  });\n"
                  "}\n"
                  "\n"
                  "const BookingInput = z.object({\n"
                  "  space_id: z.string().min(1),\n"
                  "  start: z.string().datetime({ offset: true }),\n"
                  "  end: z.string().datetime({ offset: true }),\n"
                  "});\n"
                  "\n"
                  "const toWire = (b: Booking) => ({\n"
                  "  id: b.id,\n"
                  "  space_id: b.spaceId,\n"
                  "  member_id: b.memberId,\n"
                  "  start: b.start,\n"
                  "  end: b.end,\n"
                  "  status: b.status,\n"
                  "});\n"),
        dict(kind="append", group=2, file="src/v1.ts",
             text="\n"
                  "/** Serialises work per space: a stand-in for a row lock or an exclusion constraint. */\n"
                  "const @[locks] = new Map<string, Promise<unknown>>();\n"
                  "async function withSpaceLock<T>(spaceId: string, fn: () => Promise<T>): Promise<T> {\n"
                  "  const previous = @[locks].get(spaceId) ?? Promise.resolve();\n"
                  "  const run = previous.then(fn, fn);\n"
                  "  @[locks].set(spaceId, run.catch(() => undefined));\n"
                  "  return run;\n"
                  "}\n"
                  "\n"
                  "const overlaps = (a: { start: string; end: string }, b: { start: string; end: string }) =>\n"
                  "  Date.parse(a.start) < Date.parse(b.end) && Date.parse(b.start) < Date.parse(a.end);\n"
                  "\n"
                  "const idempotent = new Map<string, { status: number; body: unknown }>();\n"),
        dict(kind="append", group=3, file="src/v1.ts",
             text="\n"
                  "export function @[router](store: Store): Router {\n"
                  "  const router = Router();\n"
                  "\n"
                  "  router.get(\"/spaces\", async (req: Request, res: Response) => {\n"
                  "    const limit = Math.min(Number(req.query.limit ?? 20), 100);\n"
                  "    const after = typeof req.query.cursor === \"string\" ? Buffer.from(req.query.cursor, \"base64url\").toString() : \"\";\n"
                  "    const spaces = (await store.listSpaces())\n"
                  "      .filter((s) => !req.query.site || s.siteId === req.query.site)\n"
                  "      .filter((s) => !req.query.type || s.type === req.query.type)\n"
                  "      .filter((s) => s.capacity >= Number(req.query.min_capacity ?? 1))\n"
                  "      .sort((a, b) => (a.createdAt + a.id).localeCompare(b.createdAt + b.id))\n"
                  "      .filter((s) => s.createdAt + s.id > after);\n"
                  "    const page = spaces.slice(0, limit);\n"
                  "    const last = page.at(-1);\n"
                  "    res.json({\n"
                  "      data: page.map((s) => ({ id: s.id, site_id: s.siteId, name: s.name, type: s.type, capacity: s.capacity })),\n"
                  "      next_cursor: spaces.length > limit && last ? Buffer.from(last.createdAt + last.id).toString(\"base64url\") : null,\n"
                  "    });\n"
                  "  });\n"),
        dict(kind="append", group=4, file="src/v1.ts",
             text="\n"
                  "  router.post(\"/bookings\", async (req: Request, res: Response) => {\n"
                  "    const memberId = req.header(\"X-Member-Id\");\n"
                  "    const key = req.header(\"Idempotency-Key\");\n"
                  "    if (!memberId) return @[problem](res, 401, \"unauthenticated\", \"X-Member-Id is required\");\n"
                  "    if (!key) return @[problem](res, 400, \"missing-idempotency-key\", \"Idempotency-Key is required\");\n"
                  "    const seen = idempotent.get(`${memberId}:${key}`);\n"
                  "    if (seen) return res.status(seen.status).json(seen.body);\n"
                  "    const parsed = BookingInput.safeParse(req.body);\n"
                  "    if (!parsed.success) {\n"
                  "      return @[problem](res, 422, \"validation\", \"Invalid booking\", {\n"
                  "        errors: parsed.error.issues.map((i) => ({ field: i.path.join(\".\"), detail: i.message })),\n"
                  "      });\n"
                  "    }\n"
                  "    const { space_id, start, end } = parsed.data;\n"
                  "    const space = await store.getSpace(space_id);\n"
                  "    if (!space) return @[problem](res, 404, \"not-found\", `No space ${space_id}`);\n"
                  "    const result = await withSpaceLock(space_id, async () => {\n"
                  "      const existing = await store.bookingsForSpace(space_id);\n"
                  "      if (existing.some((b) => b.status === \"confirmed\" && overlaps(b, { start, end }))) return null;\n"
                  "      return store.insertBooking({ spaceId: space_id, memberId, start, end });\n"
                  "    });\n"
                  "    if (!result) return @[problem](res, 409, \"slot-taken\", \"The space is already booked at that time\");\n"
                  "    const body = toWire(result);\n"
                  "    idempotent.set(`${memberId}:${key}`, { status: 201, body });\n"
                  "    res.status(201).location(`/v1/bookings/${result.id}`).json(body);\n"
                  "  });\n"
                  "\n"
                  "  router.get(\"/bookings/:id\", async (req: Request, res: Response) => {\n"
                  "    const booking = await store.getBooking(req.params.id);\n"
                  "    if (!booking) return @[problem](res, 404, \"not-found\", \"No such booking\");\n"
                  "    res.json(toWire(booking));\n"
                  "  });\n"
                  "\n"
                  "  router.delete(\"/bookings/:id\", async (req: Request, res: Response) => {\n"
                  "    const booking = await store.getBooking(req.params.id);\n"
                  "    if (!booking) return @[problem](res, 404, \"not-found\", \"No such booking\");\n"
                  "    if (booking.status !== \"cancelled\") await store.updateBooking({ ...booking, status: \"cancelled\" });\n"
                  "    res.status(204).end();\n"
                  "  });\n"
                  "\n"
                  "  return router;\n"
                  "}\n"),
        dict(kind="replace", group=3, file="src/app.ts",
             old="// TODO: mount the /v1 router here.\n",
             new="app.use(\"/v1\", @[router](store));\n"),
        dict(kind="replace", group=3, file="src/app.ts",
             old="import { store } from \"./store.js\";\n",
             new="import { store } from \"./store.js\";\nimport { @[router] } from \"./v1.js\";\n"),
        dict(kind="replace", group=5, file="openapi.yaml",
             old="  # TODO: availability, bookings\n",
             new="  /bookings:\n"
                 "    post:\n"
                 "      summary: Create a booking\n"
                 "      parameters:\n"
                 "        - in: header\n"
                 "          name: Idempotency-Key\n"
                 "          required: true\n"
                 "          schema: { type: string }\n"
                 "      responses:\n"
                 "        '201': { description: Created }\n"
                 "        '409': { description: The slot is taken }\n"
                 "        '422': { description: Validation failed }\n"
                 "  /bookings/{id}:\n"
                 "    get:\n"
                 "      summary: Read a booking\n"
                 "    delete:\n"
                 "      summary: Cancel a booking (idempotent)\n"),
        dict(kind="notes", group=1, file="DESIGN.md", title="# Deskly v1", sections=[
            (["## Resources", "## Resource model"], [
                "Spaces (read only), availability as a sub-resource of a space for one date, and bookings with their own ids.",
                "Cancelling is DELETE /v1/bookings/{id}; the booking stays readable with status cancelled, and a second DELETE answers 204 again.",
                "Times are RFC 3339 with offsets on the wire and compared as instants, never as strings.",
            ]),
            (["## Errors", "## Status codes"], [
                "All errors are application/problem+json: 400 missing Idempotency-Key, 401 no member, 404 unknown space or booking, 409 slot taken, 422 validation with per-field errors.",
                "Outside opening hours, not on a 15 minute boundary, too short or too long, or in the past: 422 with the field that is wrong.",
            ]),
            (["## Idempotency and overlaps", "## Concurrency"], [
                "Idempotency-Key is stored with the member id and the response; a retry gets the stored response, a different body with the same key should be 422.",
                "Overlap checks run under a per-space lock; on PostgreSQL this becomes an exclusion constraint on (space_id, tstzrange(start, end)) WHERE status = 'confirmed'.",
                "The in-memory lock only works inside one process, which is exactly what the store comments warn about, so the constraint is the real answer.",
            ]),
            (["## Pagination"], [
                "Cursor over (created_at, id), opaque base64url, so new spaces neither repeat nor skip items on later pages.",
            ]),
            (["## Left out", "## Not done"], [
                "Availability endpoint only designed: GET /v1/spaces/{id}/availability?date=YYYY-MM-DD in the site's zone, free slots as ranges.",
                "Rescheduling via PATCH is designed but not implemented: same lock, check overlaps excluding itself, bump version.",
            ]),
        ]),
    ],
}

# Comment markers and indentation per file type.
LANG = {
    ".py": dict(comment="# ", unit="    ", openers=":([{"),
    ".ts": dict(comment="// ", unit="  ", openers="([{"),
    ".go": dict(comment="// ", unit="\t", openers="([{"),
    ".sql": dict(comment="-- ", unit="  ", openers="("),
    ".md": dict(comment="", unit="  ", openers=""),
    ".yaml": dict(comment="# ", unit="  ", openers=":"),
    ".txt": dict(comment="", unit="  ", openers=""),
}

CJK_COMMENTS = [
    "修复：分页应该向上取整", "按账户所在时区判断是否逾期", "加锁，防止并发重复入账", "这里要保证幂等",
    "先更新数据库，再删除缓存", "防止缓存击穿", "重试时使用指数退避加抖动", "超时后结果不确定，先查询再决定",
    "并发创建索引，不锁表", "测试边界情况", "需要再确认一下", "注意：只有最后一个地址可信",
    "旧的汇率表继续使用", "补偿步骤", "每个实例最多一次加载",
]
# Rough pinyin length of a CJK character (keys pressed in the IME per character).
PINYIN_KEYS = (2, 6)

GENERIC_SCRATCH = [
    "todo: check the tests again before submitting",
    "q: is this called from more than one thread?",
    "look at the prompt again - what do they want in the notes?",
    "remember: run the tests",
    "ideas:",
    "- edge case: empty input",
    "- what if it runs twice",
    "not sure about this one",
]

# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------

import re

KEY_CAP = 6000          # FORMAT: at most 6,000 key presses per session
KEY_FLOOR = 300         # ... and at least 300
CLOSE = {"(": ")", "[": "]", "{": "}", '"': '"', "'": "'", "`": "`"}
CLOSERS = set(")]}\"'`")


class StopSession(Exception):
    """The session hit its hard key cap or its time limit."""


def srng(*parts) -> random.Random:
    h = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return random.Random(int.from_bytes(h[:16], "big"))


def lognorm(rng: random.Random, median: float, sigma: float) -> float:
    return median * math.exp(rng.gauss(0.0, sigma))


def clamp(x, lo, hi):
    return lo if x < lo else hi if x > hi else x


def to_units(s: str) -> str:
    """A string as UTF-16 code units (each unit one Python character), the unit of positions."""
    if s.isascii() or max(s) < "\U00010000":
        return s
    out = []
    for c in s:
        o = ord(c)
        if o >= 0x10000:
            o -= 0x10000
            out.append(chr(0xD800 + (o >> 10)))
            out.append(chr(0xDC00 + (o & 0x3FF)))
        else:
            out.append(c)
    return "".join(out)


_KC_CACHE: dict = {}


def key_class(key: str) -> str:
    v = _KC_CACHE.get(key)
    if v is None:
        v = _key_class(key)
        _KC_CACHE[key] = v
    return v


def _key_class(key: str) -> str:
    """keyClass() of web/capture/src/keys.ts, for a character or a key name."""
    named = {
        "Enter": "enter", "Backspace": "backspace", "Delete": "delete", "Tab": "whitespace", " ": "whitespace",
        "ArrowLeft": "navigation", "ArrowRight": "navigation", "ArrowUp": "navigation", "ArrowDown": "navigation",
        "Home": "navigation", "End": "navigation", "PageUp": "navigation", "PageDown": "navigation",
        "Shift": "modifier", "Control": "modifier", "Alt": "modifier", "AltGraph": "modifier", "Meta": "modifier",
        "CapsLock": "modifier", "Fn": "modifier",
    }
    if key in named:
        return named[key]
    if len(key) == 1:
        if key == "\n":
            return "enter"
        if key == "\t":
            return "whitespace"
        cat = unicodedata.category(key)
        if cat[0] == "L":
            return "letter"
        if cat[0] == "N":
            return "digit"
        if key.isspace():
            return "whitespace"
        if cat[0] in "PS":
            return "punctuation"
    return "other"   # Escape, F5, Dead, Process, Unidentified ...


def is_word(c: str) -> bool:
    return c.isalnum() or c == "_"


def is_cjk(c: str) -> bool:
    o = ord(c)
    return 0x3000 <= o <= 0x9FFF or 0xFF00 <= o <= 0xFFEF


def is_emoji_start(c: str) -> bool:
    o = ord(c)
    return 0xD800 <= o <= 0xDBFF or 0x2600 <= o <= 0x27BF or 0x2B00 <= o <= 0x2BFF


def ext_of(path: str) -> str:
    i = path.rfind(".")
    return path[i:] if i >= 0 else ".txt"


def lang_of(path: str) -> dict:
    return LANG.get(ext_of(path), LANG[".txt"])


def fmt_num(x: float):
    v = round(x, 3)
    if v == int(v):
        return int(v)
    return v


_ISO_CACHE: dict = {}


def iso_ms(ms: int) -> str:
    sec = ms // 1000
    head = _ISO_CACHE.get(sec)
    if head is None:
        if len(_ISO_CACHE) > 200000:
            _ISO_CACHE.clear()
        head = datetime.fromtimestamp(sec, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.")
        _ISO_CACHE[sec] = head
    return head + f"{ms % 1000:03d}Z"


# QWERTY neighbours for substitution typos, hands and fingers for digraph timing.
ROWS = ["1234567890-=", "qwertyuiop[]", "asdfghjkl;'", "zxcvbnm,./"]
POS = {ch: (r, c) for r, row in enumerate(ROWS) for c, ch in enumerate(row)}


def neighbours(ch: str) -> str:
    lo = ch.lower()
    if lo not in POS:
        return ""
    r, c = POS[lo]
    out = []
    for dr, dc in ((0, -1), (0, 1), (-1, 0), (-1, 1), (1, -1), (1, 0)):
        rr, cc = r + dr, c + dc
        if 0 <= rr < len(ROWS) and 0 <= cc < len(ROWS[rr]) and ROWS[rr][cc].isalpha():
            out.append(ROWS[rr][cc])
    s = "".join(out)
    return s.upper() if ch.isupper() else s


def finger(ch: str) -> int:
    lo = ch.lower()
    if lo not in POS:
        return -1
    c = POS[lo][1]
    return [0, 1, 2, 3, 3, 4, 4, 5, 6, 7, 7, 7][min(c, 11)]


COMMON_DIGRAPHS = set("th he in er an re on at en nd st es or te ti ng de se ed it is ar al ou to ion".split())

# Which characters need which modifiers on a layout (US, UK, US-International, German, French).
US_SHIFT = set('~!@#$%^&*()_+{}|:"<>?') | set("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
DE_SHIFT = set('!"$%&/()=?`*\'>_:;°') | set("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
DE_ALTGR = set("{[]}\\@~|€")
FR_SHIFT = set("1234567890+?./%µ°§") | set("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
FR_ALTGR = set("~#{[|`\\^@]}€")
DEAD_INTL = set("'\"`~^")


def modifiers_for(ch: str, layout: str, os_name: str) -> list[str]:
    if len(ch) != 1:
        return []
    altgr = ["Alt"] if os_name == "mac" else (["Control", "AltGraph"] if os_name == "windows" else ["AltGraph"])
    if layout == "de":
        if ch in DE_ALTGR:
            return altgr
        return ["Shift"] if ch in DE_SHIFT else []
    if layout == "fr":
        if ch in FR_ALTGR:
            return altgr
        return ["Shift"] if ch in FR_SHIFT else []
    return ["Shift"] if ch in US_SHIFT else []


# ---------------------------------------------------------------------------------------------
# The editor: files as UTF-16 unit strings, a cursor, and CodeMirror-like behaviour
# (auto-indent, bracket auto-close with type-over and explode, markdown list continuation,
# indent-unit backspace). Every change goes through apply(), which checks it.
# ---------------------------------------------------------------------------------------------

class Marker:
    __slots__ = ("file", "pos", "right")

    def __init__(self, file, pos, right):
        self.file, self.pos, self.right = file, pos, right


class Editor:
    def __init__(self, files: dict[str, str], autoindent: bool, autoclose: bool, md_continue: bool):
        self.files = dict(files)
        self.cur_file = next(iter(self.files))
        self.cur = 0
        self.sel: tuple[int, int] | None = None   # (anchor, head) when something is selected
        self.markers: list[Marker] = []
        self.auto: list[Marker] = []
        self.autoindent = autoindent
        self.autoclose = autoclose
        self.md_continue = md_continue

    # -- bookkeeping --
    def marker(self, file, pos, right=False) -> Marker:
        m = Marker(file, pos, right)
        self.markers.append(m)
        return m

    def drop(self, m: Marker):
        try:
            self.markers.remove(m)
        except ValueError:
            pass

    def apply(self, file: str, pos: int, deleted: int, inserted: str):
        t = self.files[file]
        assert 0 <= pos and pos + deleted <= len(t), (file, pos, deleted, len(t))
        gone = t[pos:pos + deleted]
        self.files[file] = t[:pos] + inserted + t[pos + deleted:]
        n = len(inserted)
        for m in self.markers:
            if m.file == file:
                m.pos = _map(m.pos, pos, deleted, n, m.right)
        if self.auto:
            keep = []
            for m in self.auto:
                if m.file == file:
                    if pos <= m.pos < pos + deleted:
                        continue
                    m.pos = _map(m.pos, pos, deleted, n, True)
                keep.append(m)
            self.auto = keep
        return (file, pos, deleted, inserted, gone)

    def is_auto(self, file, pos) -> bool:
        return any(m.file == file and m.pos == pos for m in self.auto)

    def clear_auto(self):
        self.auto = []

    def text(self, file=None) -> str:
        return self.files[file or self.cur_file]

    def line_start(self, pos, file=None) -> int:
        return self.text(file).rfind("\n", 0, pos) + 1

    def line_end(self, pos, file=None) -> int:
        t = self.text(file)
        i = t.find("\n", pos)
        return len(t) if i < 0 else i

    def unit(self, file=None) -> str:
        return lang_of(file or self.cur_file)["unit"]

    # -- actions; each returns the list of applied changes --
    def take_selection(self):
        if self.sel is None:
            return None
        a, b = self.sel
        self.sel = None
        lo, hi = min(a, b), max(a, b)
        return (lo, hi) if hi > lo else None

    def insert_plain(self, text: str):
        f = self.cur_file
        s = self.take_selection()
        if s:
            ch = self.apply(f, s[0], s[1] - s[0], text)
            self.cur = s[0] + len(text)
        else:
            ch = self.apply(f, self.cur, 0, text)
            self.cur += len(text)
        return [ch]

    def press_char(self, c: str, autoclose=True):
        """A printable character typed. Returns (changes, moved_without_change)."""
        f = self.cur_file
        t = self.files[f]
        if self.sel is not None:
            return self.insert_plain(c), False
        p = self.cur
        if c in CLOSERS and p < len(t) and t[p] == c and self.is_auto(f, p):
            self.auto = [m for m in self.auto if not (m.file == f and m.pos == p)]
            self.cur = p + 1
            return [], True
        if autoclose and self.autoclose and c in CLOSE:
            ext = ext_of(f)
            nxt = t[p] if p < len(t) else "\n"
            prev = t[p - 1] if p > 0 else "\n"
            ok_next = nxt in " \t\n" or nxt in ")]}:;>,"
            if c in "([{":
                pair = ok_next
            elif c == "`" and ext not in (".ts", ".md", ".go"):
                pair = False
            else:
                pair = ok_next and not (is_word(prev) or prev == c or prev == "\\")
            if pair:
                ch = self.apply(f, p, 0, c + CLOSE[c])
                self.cur = p + 1
                self.auto.append(Marker(f, p + 1, True))
                return [ch], False
        if c in ")]}" and self.autoindent and ext_of(f) in (".ts", ".go", ".py", ".sql"):
            # indentOnInput: a closing bracket typed first on a line re-indents the line to match
            # its opening bracket's line (two changes in one transaction)
            ls = t.rfind("\n", 0, p) + 1
            if p > ls and t[ls:p].strip() == "":
                want = self._opener_indent(t, ls)
                if want is not None and want != t[ls:p]:
                    ch1 = self.apply(f, ls, p - ls, want)
                    q = ls + len(want)
                    ch2 = self.apply(f, q, 0, c)
                    self.cur = q + 1
                    return [ch1, ch2], False
        ch = self.apply(f, p, 0, c)
        self.cur = p + 1
        return [ch], False

    def _opener_indent(self, t, ls):
        depth = 0
        i = ls - 1
        lo = max(0, ls - 4000)
        while i >= lo:
            ch = t[i]
            if ch in ")]}":
                depth += 1
            elif ch in "([{":
                if depth == 0:
                    a = t.rfind("\n", 0, i) + 1
                    line = t[a:i]
                    return line[: len(line) - len(line.lstrip(" \t"))]
                depth -= 1
            i -= 1
        return None

    def enter(self):
        f = self.cur_file
        s = self.take_selection()
        if s:
            first = [self.apply(f, s[0], s[1] - s[0], "")]
            self.cur = s[0]
        else:
            first = []
        t = self.files[f]
        p = self.cur
        ls = t.rfind("\n", 0, p) + 1
        before = t[ls:p]
        lang = lang_of(f)
        if not self.autoindent:
            return first + [self.insert_plain("\n")[0]]
        ws = before[: len(before) - len(before.lstrip(" \t"))]
        if ext_of(f) == ".md" and self.md_continue:
            m = re.match(r"^(\s*)([-*]) (.*)$", before)
            if m:
                if m.group(3).strip() == "":
                    ch = self.apply(f, ls, p - ls, "")
                    self.cur = ls
                    return first + [ch]
                ins = "\n" + m.group(1) + m.group(2) + " "
                ch = self.apply(f, p, 0, ins)
                self.cur = p + len(ins)
                return first + [ch]
            ins = "\n" + ws
            ch = self.apply(f, p, 0, ins)
            self.cur = p + len(ins)
            return first + [ch]
        unit = lang["unit"]
        prev = t[p - 1] if p > 0 else ""
        nxt = t[p] if p < len(t) else ""
        if prev in "([{" and nxt == CLOSE.get(prev) and self.autoclose:
            ins = "\n" + ws + unit + "\n" + ws
            ch = self.apply(f, p, 0, ins)
            self.cur = p + 1 + len(ws) + len(unit)
            return first + [ch]
        if before.strip() == "" and p > ls:
            ins = "\n" + before
            ch = self.apply(f, ls, p - ls, ins)
            self.cur = ls + len(ins)
            return first + [ch]
        stripped = before.rstrip()
        extra = unit if stripped and stripped[-1] in lang["openers"] else ""
        ins = "\n" + ws + extra
        ch = self.apply(f, p, 0, ins)
        self.cur = p + len(ins)
        return first + [ch]

    def tab(self):
        f = self.cur_file
        unit = self.unit()
        if not self.autoindent:
            return self.insert_plain("\t" if unit == "\t" else unit)
        self.sel = None
        ls = self.line_start(self.cur)
        ch = self.apply(f, ls, 0, unit)
        self.cur += len(unit)
        return [ch]

    def backspace(self, word=False):
        f = self.cur_file
        s = self.take_selection()
        if s:
            ch = self.apply(f, s[0], s[1] - s[0], "")
            self.cur = s[0]
            return [ch]
        t = self.files[f]
        p = self.cur
        if p == 0:
            return []
        ls = t.rfind("\n", 0, p) + 1
        before = t[ls:p]
        if word:
            q = p
            while q > ls and t[q - 1] in " \t":
                q -= 1
            if q > ls and is_word(t[q - 1]):
                while q > ls and is_word(t[q - 1]):
                    q -= 1
            elif q > ls:
                q -= 1
            if q == p:
                q = p - 1
            ch = self.apply(f, q, p - q, "")
            self.cur = q
            return [ch]
        if self.autoindent and before and before.strip() == "" and "\t" not in before and len(self.unit()) > 1:
            u = len(self.unit())
            col = len(before)
            d = col - ((col - 1) // u) * u
            ch = self.apply(f, p - d, d, "")
            self.cur = p - d
            return [ch]
        if self.autoindent and ext_of(f) == ".md" and re.match(r"^\s*[-*] $", before):
            ch = self.apply(f, p - 2, 2, "")
            self.cur = p - 2
            return [ch]
        if p < len(t) and t[p - 1] in "([{\"'`" and t[p] == CLOSE.get(t[p - 1]) and self.is_auto(f, p):
            ch = self.apply(f, p - 1, 2, "")
            self.cur = p - 1
            return [ch]
        d = 2 if p >= 2 and 0xDC00 <= ord(t[p - 1]) <= 0xDFFF and 0xD800 <= ord(t[p - 2]) <= 0xDBFF else 1
        ch = self.apply(f, p - d, d, "")
        self.cur = p - d
        return [ch]

    def delete_forward(self):
        f = self.cur_file
        s = self.take_selection()
        if s:
            ch = self.apply(f, s[0], s[1] - s[0], "")
            self.cur = s[0]
            return [ch]
        t = self.files[f]
        if self.cur >= len(t):
            return []
        d = 2 if 0xD800 <= ord(t[self.cur]) <= 0xDBFF and self.cur + 1 < len(t) else 1
        return [self.apply(f, self.cur, d, "")]


def _map(p, pos, deleted, n, right):
    if p < pos or (p == pos and not right):
        return p
    if p >= pos + deleted and p != pos:
        return p + n - deleted
    return pos + n if right else pos


# ---------------------------------------------------------------------------------------------
# Browsers, keyboards, clocks
# ---------------------------------------------------------------------------------------------

BROWSERS = {
    # name: (grid in ms, chrome-style jitter)
    "chrome": (0.1, True),
    "edge": (0.1, True),
    "firefox": (1.0, False),
    "safari": (1.0, False),
    "firefox_rfp": (100.0, False),
    "firefox_rfp_old": (50.0 / 3.0, False),
    "firefox_old_2ms": (2.0, False),
}


def quantize(x: float, grid: float, jitter: bool, salt: int) -> float:
    """Coarsen a clock reading to the browser's grid. Chrome-style jitter: within each grid cell a
    keyed-hash threshold decides whether a reading rounds down or up (monotonic, not invertible)."""
    q = x / grid
    f = math.floor(q + 1e-4)
    if jitter:
        frac = q - f
        if frac > 1e-4:
            h = ((f * 0x9E3779B1) ^ salt) & 0xFFFFFFFF
            h = (h * 0x85EBCA6B) & 0xFFFFFFFF
            if frac > 0.05 + 0.9 * (h / 4294967296.0):
                f += 1
    return f * grid


class Env:
    """The candidate's machine: OS, browser, keyboard, layout, editor configuration."""

    def __init__(self, rng: random.Random, force: dict | None = None):
        force = force or {}
        self.os = force.get("os") or rng.choices(["windows", "mac", "linux"], [55, 30, 15])[0]
        if "browser" in force:
            self.browser = force["browser"]
        elif self.os == "mac":
            self.browser = rng.choices(["chrome", "safari", "firefox", "edge"], [55, 30, 12, 3])[0]
        elif self.os == "windows":
            self.browser = rng.choices(["chrome", "edge", "firefox"], [65, 20, 15])[0]
        else:
            self.browser = rng.choices(["chrome", "firefox"], [55, 45])[0]
        self.keyboard = force.get("keyboard") or rng.choices(
            ["laptop", "usb_office", "mechanical_1khz", "bluetooth"], [50, 25, 10, 15])[0]
        self.layout = force.get("layout") or rng.choices(["us", "uk", "de", "fr", "us_intl"], [70, 10, 9, 5, 6])[0]
        # Keyboard report timing: USB full-speed office keyboards poll at 125 Hz; gaming boards
        # at 1 kHz; Bluetooth LE has a 7.5-15 ms connection interval and occasional stalls.
        self.poll = {"laptop": None, "usb_office": 8.0, "mechanical_1khz": 1.0,
                     "bluetooth": rng.choice([7.5, 11.25, 15.0])}[self.keyboard]
        self.poll_phase = rng.uniform(0, self.poll or 1.0)
        self.bt_stall_p = 0.004 if self.keyboard == "bluetooth" else 0.0
        # Auto-repeat: delay and interval (Windows default 500/33 ms, macOS ~225-500/30-83, X11 660/40)
        if self.os == "windows":
            self.rep_delay, self.rep_int = rng.choice([(500, 33.3), (250, 33.3), (500, 40), (750, 33.3)])
        elif self.os == "mac":
            self.rep_delay, self.rep_int = rng.choice([(225, 30), (375, 30), (500, 83), (225, 15)])
        else:
            self.rep_delay, self.rep_int = rng.choice([(660, 40), (500, 33.3), (250, 30)])
        self.mod_repeat = self.os == "windows"     # Windows repeats held modifiers, macOS does not
        self.primary = "Meta" if self.os == "mac" else "Control"
        self.editor_mode = force.get("editor_mode") or rng.choices(["cm_full", "cm_noclose", "plain"], [80, 14, 6])[0]


class Tele:
    """Emission of telemetry events: clocks, rounding, `ts`, cursor throttling, face checks."""

    def __init__(self, rng, env: Env, started_ms: int, preload_ms: float, face=None):
        self.rng = rng
        self.env = env
        self.events: list = []
        self.grid, self.jit = BROWSERS[env.browser]
        self.salt = rng.getrandbits(32)
        self.start_ms = started_ms
        self.wall0 = started_ms - preload_ms       # true wall clock (ms) at session time t = 0
        self.page_t0 = 0.0                          # session time at which performance.now() was 0
        self.skew = rng.gauss(0, 120)               # client clock offset that the capture did not correct
        self.drift = rng.gauss(0, 25e-6)            # wall clock vs monotonic clock drift (ppm)
        self.step_at = rng.uniform(10 * 60e3, 90 * 60e3) if rng.random() < 0.15 else None
        self.step = rng.uniform(5100, 9000) if self.step_at else 0.0   # capture relearns offset (>5 s)
        self.last_ts = started_ms
        self.cur_pending = None
        self.cur_timer = None
        self.last_cur = -1e18
        self.face = face
        self.next_face = None
        self.keys = 0
        self.jank_until = -1.0

    # -- clocks --
    def mono(self, t: float) -> float:
        v = t - self.page_t0
        return fmt_num(quantize(max(v, 0.0), self.grid, self.jit, self.salt))

    def ts(self, t: float) -> int:
        w = self.wall0 + t + self.skew + self.drift * t
        if self.step_at is not None and t >= self.step_at:
            w += self.step
        # the handler runs a little after the event's hardware timestamp; sometimes much later
        if t < self.jank_until:
            w += self.jank_until - t
        elif self.rng.random() < 0.002:
            self.jank_until = t + self.rng.uniform(30, 400)
            w += self.rng.uniform(0, 3)
        else:
            w += self.rng.uniform(0.0, 2.5)
        if self.grid >= 16:   # resistFingerprinting also coarsens Date
            w = math.floor(w / self.grid + 1e-6) * self.grid
        w = int(math.floor(w))
        if w < self.last_ts:
            w = self.last_ts
        self.last_ts = w
        return w

    # -- emission --
    def _push(self, t, data):
        self.events.append([self.ts(t), data])

    def flush(self, t: float):
        while True:
            cand = []
            if self.cur_pending is not None and self.cur_timer is not None and self.cur_timer <= t:
                cand.append((self.cur_timer, 0))
            if self.face is not None and self.next_face is not None and self.next_face <= t:
                cand.append((self.next_face, 1))
            if not cand:
                return
            tt, kind = min(cand)
            if kind == 0:
                data = self.cur_pending
                self.cur_pending = None
                self.cur_timer = None
                self.last_cur = tt
                self._push(tt, data)
            else:
                self._push(tt, self.face.check(tt))
                self.next_face = tt + self.face.interval()

    def emit(self, t: float, data: dict):
        self.flush(t)
        if data["type"] == "cursor":
            if self.cur_pending is None and t - self.last_cur >= 250:
                self.last_cur = t
                self._push(t, data)
            else:
                self.cur_pending = data
                if self.cur_timer is None:
                    self.cur_timer = max(t, self.last_cur + 250)
            return
        if self.cur_pending is not None:
            data0 = self.cur_pending
            self.cur_pending = None
            self.cur_timer = None
            self.last_cur = t
            self._push(t, data0)
        self._push(t, data)
        if data["type"] == "keystroke":
            self.keys += 1

    def release_cursor(self, t):
        if self.cur_pending is not None:
            data0 = self.cur_pending
            self.cur_pending = None
            self.cur_timer = None
            self.last_cur = t
            self._push(t, data0)

# ---------------------------------------------------------------------------------------------
# Face continuity: three on-device models with their own score scales and noise.
# A model's score of a pair is drawn from a cosine-similarity model that depends on image quality
# and on pose/occlusion penalties, then mapped to the model's reported scale.
# ---------------------------------------------------------------------------------------------

FACE_MODELS = {
    # ArcFace-style ResNet-100 (large, accurate); this SDK reports (cos + 1) / 2.
    "g2-arcface-r100": dict(version="glint360k-r100-fp16-2.3.1", scale="half",
                            mu_g=0.66, sd_g=0.075, kq=0.32, mu_i=0.03, sd_i=0.065, kq_i=0.10, same=0.12),
    # MobileFaceNet-style small model (int8, on laptops without a GPU); reports clipped cosine.
    "g2-mobilefacenet": dict(version="1.1.0-tflite-int8", scale="clip",
                             mu_g=0.58, sd_g=0.11, kq=0.42, mu_i=0.16, sd_i=0.10, kq_i=0.14, same=0.12),
    # SFace-style (OpenCV zoo, int8 quantised); clipped cosine, noisier under bad light.
    "g2-sface-int8": dict(version="2021dec-int8bq", scale="clip",
                          mu_g=0.52, sd_g=0.12, kq=0.48, mu_i=0.08, sd_i=0.09, kq_i=0.12, same=0.12),
}


def face_cos(rng, m, q, genuine=True, penalty=0.0, lift=0.0, sd_scale=1.0):
    if genuine:
        return m["mu_g"] - m["kq"] * (1 - q) - penalty + rng.gauss(0, m["sd_g"] * (1 + 0.8 * (1 - q)) * sd_scale)
    return m["mu_i"] + m["kq_i"] * (1 - q) + lift + rng.gauss(0, m["sd_i"] * sd_scale)


def face_cos_live(rng, m, q, q_ref, penalty=0.0):
    """Genuine score against the reference captured at the start of the same session: same camera,
    same room, so higher than cross-session pairs, falling as conditions drift from the reference."""
    return (m["mu_g"] + m["same"] - 0.5 * m["kq"] * (1 - q) - 0.6 * abs(q - q_ref) - penalty
            + rng.gauss(0, m["sd_g"] * 0.8 * (1 + 0.8 * (1 - q))))


def face_report(m, cos):
    v = (cos + 1) / 2 if m["scale"] == "half" else cos
    return round(clamp(v, 0.0, 1.0), 4)


def calibration(seed) -> list:
    """Labelled genuine/impostor scores per model, from their own stream (an operator's
    registration set: mostly frontal, decent light, some hard pairs)."""
    out = []
    for mid, m in FACE_MODELS.items():
        rng = srng(seed, "face-calibration", mid)
        gen, imp = [], []
        for _ in range(500):
            q = rng.uniform(0.55, 0.97) if rng.random() < 0.85 else rng.uniform(0.25, 0.55)
            pen = rng.uniform(0, 0.08) if rng.random() < 0.25 else 0.0
            gen.append(face_report(m, face_cos(rng, m, q, True, pen)))
            q2 = rng.uniform(0.55, 0.97) if rng.random() < 0.85 else rng.uniform(0.25, 0.55)
            imp.append(face_report(m, face_cos(rng, m, q2, False)))
        out.append({"model_id": mid, "model_version": m["version"], "genuine": gen, "impostor": imp})
    return out


class Face:
    """What the camera sees over a session. Intervals (registered as the session unfolds) say who
    is in front of it; per-check noise covers light, pose, glasses, people passing behind."""

    def __init__(self, rng, model_id: str, style: str = "honest"):
        self.rng = rng
        self.mid = model_id
        self.m = FACE_MODELS[model_id]
        cond = rng.choices(["good", "dim", "backlit", "sunset"], [50, 25, 15, 10])[0]
        self.q0 = {"good": rng.uniform(0.72, 0.95), "dim": rng.uniform(0.42, 0.68),
                   "backlit": rng.uniform(0.3, 0.52), "sunset": rng.uniform(0.7, 0.9)}[cond]
        self.trend = -rng.uniform(0.15, 0.35) / 3.6e6 if cond == "sunset" else 0.0
        self.q_ref = clamp(self.q0 + rng.gauss(0, 0.04), 0.05, 1.0)
        self.cadence = rng.choice(["fixed60", "fixed30", "rand", "fixed90"])
        self.p_lookdown = rng.choice([0.02, 0.05, 0.1, 0.15])
        self.p_passer = rng.choice([0.0, 0.0, 0.005, 0.02])
        self.p_occl = rng.uniform(0.01, 0.05)
        self.glasses_at = rng.uniform(5, 80) * 60e3 if rng.random() < 0.2 else None
        self.glasses_pen = rng.uniform(0.03, 0.10)
        self.intervals: list[tuple[float, float, str, dict]] = []
        self.static = None

    def add(self, t0, t1, kind, **kw):
        self.intervals.append((t0, t1, kind, kw))

    def interval(self) -> float:
        c = self.cadence
        if c == "fixed60":
            return 60e3 + self.rng.uniform(-1500, 1500)
        if c == "fixed30":
            return 30e3 + self.rng.uniform(-800, 800)
        if c == "fixed90":
            return 90e3 + self.rng.uniform(-2000, 2000)
        return self.rng.uniform(30e3, 120e3)

    def check(self, t: float) -> dict:
        rng, m = self.rng, self.m
        kind, kw = "genuine", {}
        for (a, b, k, p) in self.intervals:
            if a <= t < b:
                kind, kw = k, p
        q = clamp(self.q0 + self.trend * t + rng.gauss(0, 0.05), 0.05, 1.0)
        pen = 0.0
        if self.glasses_at is not None and t > self.glasses_at:
            pen += self.glasses_pen
        count = 1
        genuine = True
        lift = 0.0
        if kind == "absent" or kind == "covered":
            qq = rng.uniform(0.02, 0.12) if kind == "covered" else clamp(q - rng.uniform(0, 0.3), 0.05, 1)
            if kind == "covered" and rng.random() < kw.get("peek", 0.0):
                genuine = False
            else:
                return self._data(0.0, 0, qq)
        elif kind == "impostor":
            genuine = False
            lift = kw.get("lift", 0.0)
        elif kind == "two_faces":
            count = 2
            genuine = rng.random() < 0.7
        elif kind == "photo":
            if self.static is None:
                self.static = face_cos(rng, m, 0.6, True, rng.uniform(0.04, 0.12))
            s = self.static + rng.gauss(0, 0.012)
            return self._data(face_report(m, s), 1, round(clamp(rng.gauss(0.42, 0.03), 0, 1), 3))
        elif kind == "lookdown":
            if rng.random() < kw.get("p", 0.5):
                pen += rng.uniform(0.08, 0.25)
                q = clamp(q - rng.uniform(0.05, 0.25), 0.05, 1)
                if rng.random() < 0.15:
                    return self._data(0.0, 0, q)
        # per-check events for whoever sits there
        r = rng.random()
        if r < self.p_lookdown:
            pen += rng.uniform(0.05, 0.22)
            q = clamp(q - rng.uniform(0.05, 0.2), 0.05, 1)
            if rng.random() < 0.1:
                return self._data(0.0, 0, q)
        elif r < self.p_lookdown + self.p_occl:
            pen += rng.uniform(0.08, 0.2)
        elif r < self.p_lookdown + self.p_occl + self.p_passer:
            count = 2
            if rng.random() < 0.15:
                genuine = not genuine
        if rng.random() < 0.003:   # camera hiccup: black frame
            return self._data(0.0, 0, round(rng.uniform(0.0, 0.05), 3))
        if genuine:
            cos = face_cos_live(rng, m, q, self.q_ref, pen)
        else:
            cos = face_cos(rng, m, q, False, lift=lift + 0.03)   # same room and camera: a little closer
        return self._data(face_report(m, cos), count, q)

    def _data(self, sim, count, q):
        return {"type": "face_check", "similarity": sim, "model_id": self.mid,
                "model_version": self.m["version"], "face_count": count, "quality": round(clamp(q, 0, 1), 3)}


# ---------------------------------------------------------------------------------------------
# Actors: who produces the key presses. Humans (several profiles) and bots (several tools).
# gap(): ms from the previous key-down to this one; hold(): key-down to key-up.
# ---------------------------------------------------------------------------------------------

class Actor:
    hw = True              # events pass through a physical keyboard (polling, Bluetooth stalls)
    sends_mods = True      # Shift/AltGr key events accompany shifted characters
    holds_mod_runs = True  # keeps Shift down across consecutive capitals
    human = True
    typo_p = 0.0
    late_typo_frac = 0.0
    autocomplete_p = 0.0
    dead_keys = False
    ime = False
    undo_p = 0.0
    ctrl_bs = False
    hold_bs_p = 0.0
    kbd_nav_p = 0.3
    transcribe = False
    sticky = False
    name = "actor"

    def eps(self):
        return 0.0

    def react(self):
        return 300.0

    def line_pause(self, line: str, kind: str) -> float:
        return 0.0

    def mod_lead(self):
        return 60.0

    def mod_lag(self):
        return 40.0

    def mod_cost(self):
        return 0.0


class Human(Actor):
    def __init__(self, rng: random.Random, profile: str, env: Env, mode: str = "normal"):
        self.rng = rng
        self.name = profile
        self.env = env
        r = rng.uniform
        P = dict(iki=r(150, 230), sig=r(0.38, 0.52), hold=r(85, 115), hsig=r(0.2, 0.3), word=r(60, 160),
                 plan=r(700, 2200), plan_sig=r(0.7, 1.0), p_think=r(0.03, 0.08), think=r(6e3, 20e3),
                 digit=r(1.2, 1.5), punct=r(1.25, 1.6), space=r(0.85, 1.0), enter=r(1.1, 1.5),
                 prose=r(0.85, 0.95), typo=r(0.006, 0.02), shift=r(35, 90), alt=r(0.8, 0.9),
                 common=r(0.75, 0.9), rep=r(0.85, 1.05), dg=r(0.1, 0.2), min_gap=r(18, 35),
                 ac=r(0.0, 0.25), undo=r(0.0, 0.02), hold_bs=r(0.1, 0.5), ctrl_bs=rng.random() < 0.3,
                 kbd_nav=r(0.1, 0.6), fatigue=r(0.0, 0.1), drift=r(0.006, 0.014), react=r(250, 600),
                 late=r(0.02, 0.08))
        if profile == "fast_touch_typist":
            P.update(iki=r(95, 135), sig=r(0.33, 0.45), hold=r(75, 100), word=r(30, 90), plan=r(500, 1500),
                     typo=r(0.008, 0.02), digit=r(1.15, 1.4), punct=r(1.2, 1.45), ac=r(0.1, 0.4), ctrl_bs=rng.random() < 0.6)
        elif profile == "very_fast_even_typist":
            P.update(iki=r(78, 105), sig=r(0.2, 0.28), hold=r(62, 82), hsig=r(0.12, 0.18), word=r(10, 40),
                     plan=r(350, 900), plan_sig=r(0.5, 0.7), p_think=r(0.01, 0.03), typo=r(0.004, 0.01),
                     digit=r(1.05, 1.2), punct=r(1.05, 1.25), enter=r(1.0, 1.2), dg=r(0.05, 0.1), drift=r(0.003, 0.006))
        elif profile == "two_finger_typist":
            P.update(iki=r(280, 430), sig=r(0.5, 0.65), hold=r(105, 150), hsig=r(0.25, 0.35), word=r(150, 400),
                     plan=r(1200, 3000), digit=r(1.4, 1.9), punct=r(1.5, 2.1), shift=r(150, 300), alt=r(0.95, 1.05),
                     common=r(0.95, 1.0), typo=r(0.01, 0.025), ac=r(0.0, 0.15), hold_bs=0.05, min_gap=r(60, 110))
        elif profile == "tremor_rsi_slow_even":
            P.update(iki=r(380, 620), sig=r(0.16, 0.24), hold=r(160, 300), hsig=r(0.12, 0.18), word=r(50, 150),
                     plan=r(1500, 3500), plan_sig=r(0.5, 0.7), digit=r(1.05, 1.2), punct=r(1.05, 1.25),
                     alt=r(0.97, 1.0), common=r(0.97, 1.0), dg=r(0.03, 0.07), typo=r(0.01, 0.02),
                     ac=r(0.5, 0.85), shift=r(120, 220), min_gap=r(120, 200), drift=r(0.003, 0.006))
        elif profile == "pause_then_burst":
            P.update(iki=r(100, 150), sig=r(0.35, 0.5), plan=r(2500, 7000), plan_sig=r(0.9, 1.2),
                     p_think=r(0.15, 0.3), think=r(15e3, 60e3), word=r(20, 70))
        elif profile == "non_native_english":
            P.update(prose=r(1.15, 1.45), typo=r(0.012, 0.03), plan=r(900, 2500))
        elif profile == "ime_cjk_comments":
            P.update(iki=r(120, 180), prose=r(1.1, 1.3))
        elif profile == "heavy_refactorer":
            P.update(undo=r(0.04, 0.1), ac=r(0.2, 0.5), kbd_nav=r(0.4, 0.8), ctrl_bs=rng.random() < 0.6)
        elif profile == "doc_reader_paster":
            P.update(ac=r(0.1, 0.4))
        elif profile == "marathon":
            P.update(fatigue=r(0.08, 0.2))
        self.P = P
        self.iki, self.sig = P["iki"], P["sig"]
        self.hold_med, self.hold_sig = P["hold"], P["hsig"]
        kb = env.keyboard
        if kb == "laptop":
            self.hold_med *= 0.92
        elif kb == "mechanical_1khz":
            self.hold_med *= 1.08
        self.typo_p = P["typo"]
        self.late_typo_frac = P["late"]
        self.autocomplete_p = P["ac"]
        self.undo_p = P["undo"]
        self.ctrl_bs = P["ctrl_bs"]
        self.hold_bs_p = P["hold_bs"]
        self.kbd_nav_p = P["kbd_nav"]
        self.dead_keys = env.layout == "us_intl"
        self.ime = profile == "ime_cjk_comments"
        self.sticky = profile == "tremor_rsi_slow_even" and rng.random() < 0.5
        self.two_finger = profile == "two_finger_typist"
        self.nonnative = profile in ("non_native_english", "ime_cjk_comments")
        self.transcribe = mode == "transcribe"
        self.source = None
        if self.transcribe:
            self.span_left = 0
            self.glance = r(350, 900)
            self.span = r(8, 22)
            self.P["p_think"] = 0.0
            self.late_typo_frac = 0.0
            self.undo_p = 0.0
        self.x = 0.0
        self.dgt: dict = {}
        self.t0 = None

    def _dg(self, pair):
        v = self.dgt.get(pair)
        if v is None:
            v = math.exp(self.rng.gauss(0, self.P["dg"]))
            self.dgt[pair] = v
        return v

    def eps(self):
        return self.rng.uniform(0.3, 2.5)

    def react(self):
        return lognorm(self.rng, self.P["react"], 0.35)

    def mod_cost(self):
        return lognorm(self.rng, self.P["shift"], 0.4)

    def mod_lead(self):
        return lognorm(self.rng, 0.55 * self.P["shift"] + 25, 0.35)

    def mod_lag(self):
        return lognorm(self.rng, 35, 0.5)

    def gap(self, prev, key, word_start=False, prose=False, t=0.0):
        rng, P = self.rng, self.P
        self.x = self.x * 0.996 + rng.gauss(0, P["drift"])
        f = math.exp(self.x) * (1 + P["fatigue"] * (t / 3.6e6))
        if len(key) == 1:
            if key.isalpha():
                if prev and len(prev) == 1 and prev.isalpha():
                    pair = (prev + key).lower()
                    f *= self._dg(pair)
                    if pair in COMMON_DIGRAPHS:
                        f *= P["common"]
                    a, b = finger(prev), finger(key)
                    if pair[0] == pair[1]:
                        f *= P["rep"]
                    elif a >= 0 and a == b:
                        f *= 1.25
                    elif a >= 0 and b >= 0 and (a < 4) != (b < 4):
                        f *= P["alt"]
            elif key.isdigit():
                f *= P["digit"]
            elif key == " ":
                f *= P["space"]
            elif key == "\n":
                f *= P["enter"]
            else:
                f *= P["punct"]
        elif key == "Enter":
            f *= P["enter"]
        elif key == "Backspace":
            f *= 0.85
        elif key in ("Tab", "Delete"):
            f *= 1.2
        else:
            f *= 1.3
        if prose:
            f *= P["prose"]
        g = self.iki * f * math.exp(rng.gauss(0, self.sig))
        if word_start:
            g += lognorm(rng, P["word"], 0.6)
            if prose and self.nonnative and rng.random() < 0.07:
                g += lognorm(rng, 1100, 0.7)
            if prose and prev in (".", "?") and rng.random() < 0.6:
                g += lognorm(rng, 600, 0.7)
        if self.two_finger and rng.random() < 0.1:
            g += lognorm(rng, 420, 0.5)
        if self.transcribe:
            self.span_left -= 1
            if self.span_left <= 0:
                self.span_left = max(3, int(lognorm(rng, self.span, 0.35)))
                g += lognorm(rng, self.glance, 0.45)
        return max(g, P["min_gap"])

    def hold(self, key):
        f = 1.0
        if key == " ":
            f = 1.08
        elif key in ("Enter", "\n"):
            f = 1.1
        elif key == "Backspace":
            f = 0.93
        elif len(key) > 1:
            f = 1.12
        return max(lognorm(self.rng, self.hold_med * f, self.hold_sig), 12.0)

    def line_pause(self, line, kind):
        rng, P = self.rng, self.P
        if self.transcribe:
            return lognorm(rng, self.glance * 1.3, 0.45) if kind != "blank" else lognorm(rng, 200, 0.4)
        if kind == "blank":
            return lognorm(rng, P["plan"] * 0.3, 0.6)
        med = P["plan"] * (0.55 if kind in ("prose", "comment") else 1.0)
        p = lognorm(rng, med, P["plan_sig"])
        if rng.random() < P["p_think"]:
            p += lognorm(rng, P["think"], 0.8)
        return p


class Bot(Actor):
    """Scripted typing. `variant` names the tool and its settings."""
    human = False
    hw = False
    kbd_nav_p = 0.0

    def __init__(self, rng, cls: str, variant: str, env: Env, pool=None):
        self.rng = rng
        self.cls = cls
        self.name = variant
        self.env = env
        self.quantum = None          # Windows default timer: Sleep() wakes on 15.625 ms ticks
        self.phase = rng.uniform(0, 15.625)
        self.no_keyup = False
        self.mode = "aware"
        self.outlier_p = 0.003
        self.lead = 0.3
        self.lag = 0.3
        self.pool = pool or []
        self.pause_every = None
        r = rng.uniform
        v = variant
        self.hold_fn = lambda: r(0.02, 0.12)
        if v == "ahk_sendevent_default":
            self.base = lambda: 10.0
            self.quantum = 15.625
            self.lead = 10.0
        elif v == "ahk_keydelay_custom":
            d, p = rng.choice([(30, 20), (50, 30), (40, -1), (70, 25)])
            self.base = lambda: d + max(p, 0)
            self.quantum = 15.625 if rng.random() < 0.7 else None
            self.hold_fn = (lambda: p + r(0, 0.3)) if p > 0 else (lambda: r(0.02, 0.1))
            self.lead = d
        elif v == "xdotool_type_default":
            self.base = lambda: 12.0 + r(0.05, 0.25)
            self.hold_fn = lambda: 6.0 + r(0.02, 0.12)
        elif v == "xdotool_delay_custom":
            d = rng.choice([40, 60, 90, 120, 150])
            self.base = lambda: d + r(0.05, 0.3)
            self.hold_fn = lambda: d / 2 + r(0.02, 0.15)
        elif v == "pyautogui_interval":
            d = rng.choice([30, 50, 80, 100, 150, 200])
            self.base = lambda: d + r(0.4, 1.8)
            self.hold_fn = lambda: r(0.08, 0.6)
        elif v == "extension_settimeout":
            d = rng.choice([20, 35, 50, 80, 120])
            self.base = lambda: max(d, 4) + r(0.1, 1.6)
            self.hold_fn = lambda: r(0.0, 0.08)
            self.no_keyup = rng.random() < 0.5
            self.mode = "insert"
            self.sends_mods = False
        elif v == "sendinput_bursts":
            self.base = lambda: r(0.01, 0.08)
            self.hold_fn = lambda: r(0.005, 0.03)
            self.pause_every = ("line", lambda: r(400, 2500))
        # uniform jitter
        elif v == "ahk_random_sleep":
            lo, hi = rng.choice([(30, 120), (50, 150), (80, 250), (20, 90)])
            self.base = lambda: r(lo, hi)
            self.quantum = 15.625 if rng.random() < 0.6 else None
            self.lead = lo
        elif v == "pyautogui_uniform":
            lo, hi = rng.choice([(50, 200), (80, 250), (30, 180), (100, 300)])
            self.base = lambda: r(lo, hi) + r(0.4, 1.5)
            self.hold_fn = lambda: r(0.08, 0.6)
        elif v == "extension_math_random":
            lo, hi = rng.choice([(40, 160), (60, 220), (25, 125)])
            self.base = lambda: r(lo, hi) + r(0.1, 1.2)
            self.hold_fn = lambda: r(0.0, 0.08)
            self.mode = "insert"
            self.sends_mods = False
            self.no_keyup = rng.random() < 0.3
        elif v == "xdotool_shell_loop":
            lo, hi = rng.choice([(80, 250), (60, 200), (100, 350)])
            self.base = lambda: r(lo, hi) + r(2.0, 6.0)    # a sleep(1) process per key
            self.hold_fn = lambda: r(0.05, 0.3)
        elif v == "pynput_uniform_hold":
            lo, hi = rng.choice([(60, 220), (90, 260)])
            hlo, hhi = rng.choice([(30, 120), (50, 150), (20, 80)])
            self.base = lambda: r(lo, hi)
            self.hold_fn = lambda: r(hlo, hhi)
        # iid human-like
        elif v == "iid_lognormal":
            med, s = r(140, 230), r(0.35, 0.6)
            hm, hs = r(80, 120), r(0.2, 0.35)
            self.base = lambda: lognorm(rng, med, s)
            self.hold_fn = lambda: lognorm(rng, hm, hs)
        elif v == "iid_gamma":
            k, th = r(2.0, 4.5), r(35, 70)
            self.base = lambda: rng.gammavariate(k, th)
            self.hold_fn = lambda: max(20.0, rng.gauss(r(85, 110), r(15, 25)))
        elif v == "iid_exgauss":
            mu, sd, tau = r(90, 140), r(15, 35), r(50, 120)
            self.base = lambda: max(15.0, rng.gauss(mu, sd) + rng.expovariate(1 / tau))
            self.hold_fn = lambda: max(25.0, rng.gauss(r(90, 105), r(12, 22)))
        elif v == "iid_bootstrap_own_typing":
            gaps = [g for g in self.pool[0] if 15 < g < 2000] or [150.0]
            holds = [h for h in self.pool[1] if h > 5] or [90.0]
            self.base = lambda: rng.choice(gaps) + r(-0.5, 0.5)
            self.hold_fn = lambda: rng.choice(holds)
        elif v == "iid_weibull":
            a, b = r(160, 240), r(1.6, 2.6)
            self.base = lambda: rng.weibullvariate(a, b)
            self.hold_fn = lambda: lognorm(rng, r(85, 110), 0.25)
        # humanized
        elif v in ("typo_pause_script", "word_burst", "digraph_markov", "fatigue_drift", "extension_human_typer"):
            self.human_like = True
            self.typo_p = r(0.01, 0.05)
            med = r(110, 200)
            self.hold_fn = lambda: lognorm(rng, r(70, 110), 0.25)
            if v == "typo_pause_script":
                self.base = lambda: r(0.5, 1.5) * med
            elif v == "word_burst":
                self.base = lambda: max(20.0, rng.gauss(med * 0.6, med * 0.12))
            elif v == "digraph_markov":
                table: dict = {}

                def base():
                    return lognorm(rng, med, 0.35)
                self.base = base
                self.table = table
            elif v == "fatigue_drift":
                self.base = lambda: lognorm(rng, med, 0.4)
                self.drift_period = r(200, 900)
            else:
                self.base = lambda: r(50, 300)
                self.mode = "insert"
                self.sends_mods = False
            self.word_pause = (r(80, 400), r(0.3, 0.8))
            self.punct_pause = (r(200, 900), r(0.4, 0.8))
            self.line_pause_p = (r(500, 3000), r(0.5, 1.0))
            self.think = (r(0.005, 0.03), r(3000, 15000))
            self.react_ms = (r(150, 500),)
        if cls in ("constant_interval", "uniform_jitter", "iid_human_like") or v in ("word_burst", "digraph_markov", "fatigue_drift", "typo_pause_script"):
            if self.mode != "insert":
                # how the script copes with the editor's auto-indent: it sends keys that end up
                # right (aware), strips leading whitespace and trusts auto-indent (strip), or
                # types everything as is and lets the editor stack indentation (raw)
                self.mode = rng.choices(["aware", "strip", "raw"], [60, 25, 15])[0]
        self.k = 0

    def eps(self):
        return 0.0

    def react(self):
        return lognorm(self.rng, self.react_ms[0], 0.4) if hasattr(self, "react_ms") else 0.0

    def mod_lead(self):
        return self.lead if self.quantum is None else self.quantum

    def mod_lag(self):
        return self.lag

    def gap(self, prev, key, word_start=False, prose=False, t=0.0):
        rng = self.rng
        g = self.base()
        v = self.name
        self.k += 1
        if v == "digraph_markov" and prev and len(key) == 1 and len(prev) == 1:
            pair = prev + key
            f = self.table.get(pair)
            if f is None:
                f = math.exp(rng.gauss(0, 0.3)) * (0.8 if pair.lower() in COMMON_DIGRAPHS else 1.0)
                self.table[pair] = f
            g *= f
        if v == "fatigue_drift":
            g *= 1 + 0.25 * math.sin(self.k / self.drift_period * 2 * math.pi)
        if getattr(self, "human_like", False):
            if word_start:
                g += lognorm(rng, *self.word_pause)
            if prev in (".", ",", ";", ":", ")"):
                g += lognorm(rng, *self.punct_pause) * 0.5
            if rng.random() < self.think[0]:
                g += lognorm(rng, self.think[1], 0.6)
        if rng.random() < self.outlier_p:
            g += rng.uniform(4, 60)
        if self.quantum is not None:
            # wake on the next timer tick after the requested delay, with interrupt jitter
            tt = t + g
            q = self.quantum
            tt = self.phase + math.ceil((tt - self.phase) / q) * q + rng.uniform(0.0, 0.6)
            g = max(tt - t, 0.2)
        return max(g, 0.01)

    def hold(self, key):
        return max(self.hold_fn(), 0.0)

    def line_pause(self, line, kind):
        if getattr(self, "human_like", False):
            return lognorm(self.rng, *self.line_pause_p)
        if self.pause_every:
            return self.pause_every[1]()
        return 0.0


class Replayer(Actor):
    """Replays the exact key-down gaps and holds of a recorded honest session onto new text."""
    human = False
    hw = False
    kbd_nav_p = 0.0

    def __init__(self, rng, variant, source_keys, env):
        self.rng = rng
        self.name = variant
        self.env = env
        self.sends_mods = variant == "replay_with_os_shift"
        self.mode = "aware"
        # source_keys: list of (monotone time, hold or None)
        self.src = source_keys
        hs = sorted(h for _, h in source_keys if h is not None) or [90.0]
        self.hmed = hs[len(hs) // 2]
        self.i = 0
        if variant == "replay_offset_start":
            self.i = rng.randrange(0, max(1, len(source_keys) // 3))
        self.trim = variant == "replay_trimmed_pauses"
        self.lead = 0.4
        self.lag = 0.3
        self.base_time = None

    def eps(self):
        return 0.0

    def mod_lead(self):
        return self.lead

    def mod_lag(self):
        return self.lag

    def next_time(self):
        """Absolute source time of the next key (for exact alignment)."""
        j = self.i % len(self.src)
        wrap = self.i // len(self.src)
        span = self.src[-1][0] - self.src[0][0] + 500.0
        return self.src[j][0] - self.src[0][0] + wrap * span

    def advance(self):
        j = self.i % len(self.src)
        h = self.src[j][1]
        self.i += 1
        return h if h is not None else self.hmed

    def gap(self, prev, key, word_start=False, prose=False, t=0.0):
        return 0.0   # unused: the session aligns replayed keys on the source timeline

    def hold(self, key):
        return self.hmed

# ---------------------------------------------------------------------------------------------
# A session under construction: the editor, the clocks and every primitive a person or a script
# can do. Time `t` is ms since the first page load (true time, not rounded).
# ---------------------------------------------------------------------------------------------

class HeldMod:
    __slots__ = ("mods", "datas", "t_up", "last_down", "hw")

    def __init__(self, mods, datas, t_up, last_down, hw):
        self.mods, self.datas, self.t_up, self.last_down, self.hw = mods, datas, t_up, last_down, hw


class Session:
    def __init__(self, sid, cls, profile, slug, seed, env: Env, started_ms: int, budget: int,
                 face: Face | None, consent_face=True, starter=None):
        self.sid, self.cls, self.profile, self.slug = sid, cls, profile, slug
        self.rng = srng(seed, sid, "behaviour")
        self.env = env
        mode = env.editor_mode
        self.ed = Editor(starter, autoindent=mode != "plain", autoclose=mode == "cm_full",
                         md_continue=mode == "cm_full")
        self.preload = self.rng.uniform(4e3, 60e3)
        self.face = face if consent_face else None
        self.tele = Tele(srng(seed, sid, "clock"), env, started_ms, self.preload, self.face)
        self.t_start = self.preload
        self.t = self.t_start + self.rng.uniform(300, 2500)
        if self.face is not None:
            self.tele.next_face = self.t_start + self.rng.uniform(2e3, 25e3)
        self.t_true = self.t
        self.prev_key = None
        self.keys = 0
        self.budget = budget
        self.hist: list = []
        self.redo_stack: list = []
        self.late_fixes: list = []
        self.held_mod: HeldMod | None = None
        self.bt_until = -1.0
        self.actor: Actor | None = None
        self.operator: Human | None = None
        self.limit_ms = None
        self.runs = 0
        self.progress = 0.0
        self.created: list[str] = []
        self.replay_anchor = None
        self.meta: dict = {}

    # -- clocks and raw events --------------------------------------------------------------
    def _kb(self, t, up=False):
        env = self.env
        if env.poll:
            t = env.poll_phase + math.ceil((t - env.poll_phase) / env.poll - 1e-9) * env.poll
        if env.bt_stall_p:
            if t < self.bt_until:
                t = self.bt_until + self.rng.uniform(0.5, 2.5)
                if not up:
                    self.bt_until = t
            elif not up and self.rng.random() < env.bt_stall_p:
                self.bt_until = t + self.rng.uniform(40, 250)
        return t

    def wait(self, ms):
        self.t += max(ms, 0.0)

    def emit(self, t, data):
        if t < self.t:
            t = self.t
        self.tele.emit(t, data)
        self.t = t

    def _upval(self, t_up, te, hw):
        tu = self._kb(t_up, up=True) if hw else t_up
        return self.tele.mono(max(tu, te))

    def keystroke(self, kclass, t_down, hold, hw=True, no_up=False):
        if self.keys >= KEY_CAP:
            raise StopSession()
        to = self._kb(t_down) if hw else t_down
        te = max(to, self.t)
        data = {"type": "keystroke", "down_ms": self.tele.mono(te)}
        if not no_up and hold <= 5000:
            data["up_ms"] = self._upval(te + hold, te, hw)
        data["key_class"] = kclass
        self.tele.emit(te, data)
        self.t = te
        self.keys += 1
        return data, te

    def emit_edit(self, t, ch, origin):
        f, pos, d, ins, gone = ch
        self.emit(t, {"type": "edit", "file": f, "position": pos, "deleted": d, "inserted": ins, "origin": origin})
        self._hist(ch, origin, t)

    def emit_cursor(self, t=None):
        ed = self.ed
        data = {"type": "cursor", "file": ed.cur_file, "position": ed.cur}
        if ed.sel is not None and ed.sel[0] != ed.sel[1]:
            data["position"] = ed.sel[1]
            data["selection_end"] = ed.sel[0]
        self.emit(self.t if t is None else t, data)

    def _hist(self, ch, origin, t):
        if origin in ("undo", "redo"):
            return
        self.redo_stack.clear()
        f, pos, d, ins, gone = ch
        g = self.hist[-1] if self.hist else None
        if origin == "typed" and g is not None and g.get("f") == f and g.get("origin") == "typed" and t - g["t"] < 500:
            if d == 0 and not g["gone"] and pos == g["pos"] + len(g["ins"]):
                g["ins"] += ins
                g["t"] = t
                return
            if not ins and not g["ins"] and d > 0 and pos + d == g["pos"]:
                g["pos"] = pos
                g["gone"] = gone + g["gone"]
                g["t"] = t
                return
        self.hist.append({"f": f, "pos": pos, "ins": ins, "gone": gone, "t": t, "origin": origin})
        if len(self.hist) > 300:
            del self.hist[:150]

    def barrier(self):
        self.hist.append({"barrier": True, "t": self.t})

    # -- typing primitives ----------------------------------------------------------------
    def _base(self):
        return self.t_true if self.t <= self.t_true + 60 else self.t

    def _replay_time(self, actor: Replayer):
        if self.replay_anchor is None:
            grid = self.tele.grid
            start = self.t + self.rng.uniform(200, 1500)
            mono_start = start - self.tele.page_t0
            aligned = math.ceil(mono_start / grid - 1e-6) * grid
            self.replay_anchor = (aligned + self.tele.page_t0) - actor.next_time()
            self.replay_shift = 0.0
        nt = actor.next_time()
        if actor.trim and actor.i > 0:
            prev = actor.src[(actor.i - 1) % len(actor.src)][0] - actor.src[0][0]
            gapv = nt - prev
            if gapv > 2000:
                self.replay_shift -= gapv - 2000
        return self.replay_anchor + nt + self.replay_shift

    def _effect(self, key, effect, autoclose):
        if effect is not None:
            r = effect()
            return r if isinstance(r, tuple) else (r, False)
        ed = self.ed
        if key == "Enter":
            return ed.enter(), False
        if key == "Tab":
            return ed.tab(), False
        if key == "Backspace":
            return ed.backspace(), False
        if key == "Delete":
            return ed.delete_forward(), False
        if len(key) == 1:
            return ed.press_char(key, autoclose)
        return [], False

    def press(self, key, actor=None, pause=0.0, word_start=False, prose=False, effect=None, autoclose=True,
              mods=None, kclass=None, origin="typed", no_up=None):
        actor = actor or self.actor
        rng = self.rng
        if mods is None:
            mods = modifiers_for(key, self.env.layout, self.env.os) if (actor.sends_mods and len(key) == 1) else []
        if self.keys + len(mods) + 1 > KEY_CAP:
            raise StopSession()
        if isinstance(actor, Replayer):
            t_down = max(self._replay_time(actor), self.t)
            hold = actor.advance()
        else:
            g = actor.gap(self.prev_key, key, word_start, prose, self._base() - self.t_start) + pause
            continuing = (self.held_mod is not None and mods and self.held_mod.mods == mods and actor.holds_mod_runs
                          and self._base() + g - self.held_mod.last_down < 450)
            if mods and actor.human and not continuing:
                g += actor.mod_cost()
            t_down = max(self._base() + g, self.t + 0.01)
            hold = actor.hold(key)
        if mods:
            self._mods(mods, t_down, hold, actor)
        else:
            self.held_mod = None
        if no_up is None:
            no_up = getattr(actor, "no_keyup", False)
        data, te = self.keystroke(kclass or key_class(key), t_down, hold, hw=actor.hw, no_up=no_up)
        self.prev_key = key
        self.t_true = t_down
        te2 = te + actor.eps()
        changes, moved = self._effect(key, effect, autoclose)
        for ch in changes:
            self.emit_edit(te2, ch, origin)
        if len(changes) > 1:
            self.barrier()
        if moved:
            self.emit_cursor(te2)
        return data

    def _mods(self, mods, t_down, hold, actor):
        rng = self.rng
        hm = self.held_mod
        if (hm is not None and hm.mods == mods and actor.holds_mod_runs and t_down - hm.last_down < 450
                and hm.t_up > t_down - 80):
            new_up = t_down + hold + actor.mod_lag()
            for d, t0 in hm.datas:
                if new_up - t0 <= 5000 and "up_ms" in d:
                    d["up_ms"] = self._upval(new_up, t0, hm.hw)
                elif "up_ms" in d:
                    del d["up_ms"]
            hm.t_up = new_up
            hm.last_down = t_down
            return
        lead = min(actor.mod_lead(), max(t_down - self.t - 0.02, 0.01))
        datas = []
        if actor.sticky:
            # Sticky Keys: the modifier is pressed and released before the key
            h = min(lognorm(rng, 110, 0.2), lead * 0.8)
            for i, m in enumerate(mods):
                d, te = self.keystroke("modifier", t_down - lead + i * 0.5, h, hw=actor.hw)
            self.held_mod = None
            return
        t_up = t_down + hold + actor.mod_lag()
        for i, m in enumerate(mods):
            tm = t_down - lead + i * (rng.uniform(0.0, 0.05) if not actor.human else rng.uniform(0, 0.4))
            d, te = self.keystroke("modifier", tm, t_up - tm, hw=actor.hw, no_up=getattr(actor, "no_keyup", False))
            datas.append((d, te))
        self.held_mod = HeldMod(mods, datas, t_up, t_down, actor.hw)

    def chord(self, mods, keys, actor=None, pause=0.0):
        """`mods` held down while `keys` [(key, effect, origin)] are pressed (Ctrl+V, Ctrl+Z x3, Shift+arrows)."""
        actor = actor or self.actor
        rng = self.rng
        if self.keys + len(mods) + len(keys) > KEY_CAP:
            raise StopSession()
        g0 = actor.gap(self.prev_key, mods[0], False, False, self._base() - self.t_start) + pause
        t0 = max(self._base() + g0, self.t + 0.01)
        times = []
        t = t0 + (lognorm(rng, 120, 0.35) if actor.human else actor.mod_lead())
        for i, k in enumerate(keys):
            if i:
                t += lognorm(rng, 150 if k[0].startswith("Arrow") else 190, 0.35) if actor.human else actor.gap(None, k[0])
            times.append(t)
        holds = [actor.hold(k[0]) for k in keys]
        t_rel = times[-1] + holds[-1] + actor.mod_lag()
        reps = []
        if self.env.mod_repeat and actor.hw and t_rel - t0 > self.env.rep_delay:
            tr = t0 + self.env.rep_delay
            while tr < t_rel and len(reps) < 300:
                reps.append(tr)
                tr += self.env.rep_int + rng.uniform(-1.2, 1.2)
        if self.keys + len(mods) + len(keys) + len(reps) > KEY_CAP:
            raise StopSession()
        self.held_mod = None
        for i, m in enumerate(mods):
            tm = t0 + i * (rng.uniform(15, 60) if actor.human else 0.05)
            lost = bool(reps) and i == len(mods) - 1
            self.keystroke("modifier", tm, max(t_rel - tm, 1.0), hw=actor.hw, no_up=lost)
        seq = [(tt, 0, -1) for tt in reps] + [(tt, 1, i) for i, tt in enumerate(times)]
        seq.sort()
        for tt, kind, i in seq:
            if kind == 0:
                self.keystroke("modifier", tt, 0.0, hw=actor.hw, no_up=True)
                continue
            key, eff, origin = keys[i]
            data, te = self.keystroke(key_class(key), tt, holds[i], hw=actor.hw)
            changes, moved = self._effect(key, eff, False)
            for ch in changes:
                self.emit_edit(te + actor.eps(), ch, origin)
            if len(changes) > 1:
                self.barrier()
            if moved:
                self.emit_cursor(te + actor.eps())
        self.prev_key = keys[-1][0]
        self.t_true = times[-1]

    def hold_key(self, key, n, actor=None, effect=None):
        """A key held down: one press and n - 1 auto-repeats (none with its own key-up)."""
        actor = actor or self.actor
        if n <= 1:
            self.press(key, actor, effect=effect)
            return
        if self.keys + n > KEY_CAP:
            raise StopSession()
        g = actor.gap(self.prev_key, key, False, False, self._base() - self.t_start)
        t = max(self._base() + g, self.t + 0.01)
        kc = key_class(key)
        self.held_mod = None
        for i in range(n):
            data, te = self.keystroke(kc, t, 0.0, hw=actor.hw, no_up=True)
            changes, moved = self._effect(key, effect, False)
            for ch in changes:
                self.emit_edit(te + actor.eps(), ch, "typed")
            if moved:
                self.emit_cursor(te + actor.eps())
            self.t_true = t
            t += (self.env.rep_delay if i == 0 else 0) + self.env.rep_int + self.rng.uniform(-1.0, 1.0)
        self.prev_key = key

    # -- cursor, navigation, selection ------------------------------------------------------
    def click(self, file, pos, actor=None, sel_anchor=None):
        ed = self.ed
        self.wait(lognorm(self.rng, 650, 0.5) if file == ed.cur_file else lognorm(self.rng, 1400, 0.4))
        ed.cur_file = file
        ed.cur = pos
        ed.sel = (sel_anchor, pos) if sel_anchor is not None and sel_anchor != pos else None
        ed.clear_auto()
        self.held_mod = None
        self.emit_cursor()

    def _vmove(self, down):
        ed = self.ed
        t = ed.text()
        ls = ed.line_start(ed.cur)
        col = ed.cur - ls
        if down:
            le = ed.line_end(ed.cur)
            if le >= len(t):
                ed.cur = len(t)
            else:
                ns = le + 1
                ed.cur = min(ns + col, ed.line_end(ns))
        else:
            if ls == 0:
                ed.cur = 0
            else:
                ps = ed.line_start(ls - 1)
                ed.cur = min(ps + col, ls - 1)
        ed.sel = None
        return [], True

    def _hmove(self, d):
        ed = self.ed
        ed.cur = clamp(ed.cur + d, 0, len(ed.text()))
        ed.sel = None
        return [], True

    def _set(self, pos):
        def f():
            self.ed.cur = pos
            self.ed.sel = None
            return [], True
        return f

    def goto(self, file, pos, actor=None):
        actor = actor or self.actor
        ed = self.ed
        if ed.cur_file == file and ed.cur == pos and ed.sel is None:
            return
        if file != ed.cur_file or not actor.human or self.rng.random() >= actor.kbd_nav_p:
            self.click(file, pos, actor)
            return
        t = ed.text()
        cl = t.count("\n", 0, ed.cur)
        tl = t.count("\n", 0, pos)
        if abs(tl - cl) > 25:
            self.click(file, pos, actor)
            return
        ed.sel = None
        ed.clear_auto()
        steps = abs(tl - cl)
        key = "ArrowDown" if tl > cl else "ArrowUp"
        if steps > 5 and self.rng.random() < 0.6:
            self.hold_key(key, steps, actor, effect=lambda: self._vmove(key == "ArrowDown"))
        else:
            for _ in range(steps):
                self.press(key, actor, effect=lambda: self._vmove(key == "ArrowDown"))
        ls = ed.line_start(ed.cur)
        le = ed.line_end(ed.cur)
        if ed.cur == pos:
            return
        if pos == le:
            self.press("End", actor, effect=self._set(pos))
        elif pos == ls:
            self.press("Home", actor, effect=self._set(pos))
        elif abs(pos - ed.cur) <= 10:
            d = 1 if pos > ed.cur else -1
            key = "ArrowRight" if d > 0 else "ArrowLeft"
            n = abs(pos - ed.cur)
            if n > 5 and self.rng.random() < 0.5:
                self.hold_key(key, n, actor, effect=lambda: self._hmove(d))
            else:
                for _ in range(n):
                    self.press(key, actor, effect=lambda: self._hmove(d))
        else:
            self.click(file, pos, actor)

    def select_range(self, file, a, b, actor=None):
        """Select [a, b) with anchor a and head b: mouse drag, double click, or Shift+arrows."""
        actor = actor or self.actor
        ed = self.ed
        rng = self.rng
        t = ed.files[file]
        seg = t[a:b]
        whole_lines = (a == 0 or t[a - 1] == "\n") and (b == len(t) or t[b - 1] == "\n")
        r = rng.random()
        if actor.human and file == ed.cur_file and "\n" not in seg and 0 < b - a <= 14 and r < 0.35:
            self.goto(file, a, actor)
            ed.clear_auto()

            def grow():
                h = ed.sel[1] if ed.sel else ed.cur
                ed.sel = (a, h + 1)
                ed.cur = h + 1
                return [], True
            self.chord(["Shift"], [("ArrowRight", grow, "typed")] * (b - a), actor)
            return
        if actor.human and whole_lines and file == ed.cur_file and 0 < seg.count("\n") <= 12 and r < 0.55:
            self.goto(file, a, actor)
            ed.clear_auto()

            def grow_line():
                h = ed.sel[1] if ed.sel else ed.cur
                nl = t.find("\n", h)
                nh = len(t) if nl < 0 else nl + 1
                ed.sel = (a, nh)
                ed.cur = nh
                return [], True
            self.chord(["Shift"], [("ArrowDown", grow_line, "typed")] * seg.count("\n"), actor)
            ed.sel = (a, b)
            ed.cur = b
            return
        # mouse: press at a, drag to b (a few throttled positions), or a double click on a word
        self.wait(lognorm(rng, 700, 0.45) if file == ed.cur_file else lognorm(rng, 1500, 0.4))
        ed.cur_file = file
        ed.clear_auto()
        self.held_mod = None
        if re.fullmatch(r"\w+", seg or "-"):
            ed.cur = b
            ed.sel = (a, b)
            self.emit_cursor()
            return
        ed.cur = a
        ed.sel = None
        self.emit_cursor()
        steps = rng.randint(1, 4)
        for i in range(1, steps + 1):
            self.wait(lognorm(rng, 140, 0.4))
            h = a + (b - a) * i // steps
            ed.cur = h
            ed.sel = (a, h)
            self.emit_cursor()

    def nav_past(self, file, target, actor):
        """Leave the line through an auto-inserted closing bracket (ArrowDown + End/arrows)."""
        ed = self.ed
        if not actor.human:
            self.press("ArrowDown", actor, effect=self._set(target))
            return
        self.press("ArrowDown", actor, effect=lambda: self._vmove(True))
        if ed.cur != target:
            if target == ed.line_end(ed.cur):
                self.press("End", actor, effect=self._set(target))
            else:
                n = target - ed.cur
                key = "ArrowRight" if n > 0 else "ArrowLeft"
                for _ in range(min(abs(n), 6)):
                    self.press(key, actor, effect=lambda: self._hmove(1 if n > 0 else -1))
                if ed.cur != target:
                    self.press("End", actor, effect=self._set(target))

    def time_up(self) -> bool:
        return self.limit_ms is not None and self.t - self.t_start > self.limit_ms

    def out(self) -> bool:
        return self.keys >= self.budget or self.time_up()

    # -- the typing engine ------------------------------------------------------------------
    def type_region(self, file, pos, T, actor=None, sel_len=0, mode=None, interlude=True):
        """Types T at `pos` of `file` (replacing `sel_len` units first) so that the file then holds
        T there, whatever the editor inserts on its own. Returns False if stopped early."""
        actor = actor or self.actor
        mode = mode or getattr(actor, "mode", "aware")
        ed = self.ed
        if not T and not sel_len:
            return True
        over = False
        if sel_len:
            self.select_range(file, pos, pos + sel_len, self.operator if not actor.human else actor)
            if T and T[0].isalnum() and actor.human and self.rng.random() < 0.7:
                over = True
            else:
                op = self.operator if not actor.human else actor
                self.press("Backspace" if self.rng.random() < 0.8 else "Delete", op)
        else:
            self.goto(file, pos, self.operator if not actor.human else actor)
        if mode == "raw":
            return self._type_raw(T, actor)
        if mode == "strip":
            return self._type_raw("\n".join(ln.lstrip(" \t") for ln in T.split("\n")), actor)
        if mode == "insert":
            return self._type_insert(T, actor)
        S = ed.marker(file, ed.cur if not over else min(ed.sel), False)
        E = ed.marker(file, ed.cur if not over else max(ed.sel), True)
        is_md = file.endswith(".md")
        k = 0
        n = len(T)
        late = []
        try:
            at_ls = ed.cur == ed.line_start(ed.cur)
            if at_ls and not over and k < n and T[k] in " \t-*":
                k = self._reconcile(file, T, k, actor, is_md)
            while k < n:
                if self.out():
                    return False
                t = ed.files[file]
                cur = ed.cur
                P = t[cur:E.pos]
                c = T[k]
                if P:
                    if c == P[0] and c in CLOSERS and ed.is_auto(file, cur):
                        self.press(c, actor)
                        k += 1
                        continue
                    if P[0] == "\n":
                        j = 1
                        while j < len(P) and P[j] in " \t":
                            j += 1
                        if j < len(P) and P[j] in ")]}":
                            Q = P[:j + 1]
                            if T.startswith(Q, k):
                                self.nav_past(file, cur + len(Q), actor)
                                k += len(Q)
                                continue
                if c == "\n":
                    self.press("Enter", actor)
                    k += 1
                    k = self._reconcile(file, T, k, actor, is_md)
                    at_ls = True
                    continue
                pause = 0.0
                prose = is_md or self._in_comment(T, k, file)
                if at_ls:
                    at_ls = False
                    e = T.find("\n", k)
                    line = T[k:e if e >= 0 else n]
                    kind = "prose" if is_md else ("comment" if prose else "code")
                    pause = actor.line_pause(line, kind)
                    if interlude and actor.human and not P:
                        self.within_typing(actor)
                        if actor.undo_p and self.rng.random() < actor.undo_p:
                            nk = self._undo_episode(actor, file, S, E, T)
                            if nk != k:
                                k = nk
                                at_ls = k == 0 or T[k - 1] == "\n"
                                continue
                ws = is_word(c) and (k == 0 or not is_word(T[k - 1]))
                if actor.dead_keys and c in DEAD_INTL:
                    k = self._dead_key(T, k, actor, pause)
                    continue
                if actor.ime and is_cjk(c):
                    k = self._ime(T, k, actor, pause)
                    continue
                if is_emoji_start(c):
                    k = self._emoji(T, k, actor, pause)
                    continue
                if ws and actor.autocomplete_p and (c.isalpha() or c == "_"):
                    m = re.match(r"[A-Za-z_][A-Za-z0-9_]*", T[k:k + 60])
                    w = m.group(0)
                    if len(w) >= 6 and self.rng.random() < actor.autocomplete_p and w in t:
                        k = self._autocomplete(w, k, actor, pause)
                        continue
                if (ws and actor.human and not actor.transcribe and ed.sel is None and self.B.get("p_idpaste", 0)
                        and (c.isalpha() or c == "_")):
                    m = re.match(r"[A-Za-z_][A-Za-z0-9_]*", T[k:k + 60])
                    w = m.group(0)
                    if len(w) >= 8 and self.rng.random() < self.B["p_idpaste"]:
                        src = self._find_elsewhere(w, file)
                        if src is not None:
                            self._copy_word_and_paste(src, w, file, actor)
                            k += len(w)
                            continue
                if (actor.typo_p and c.isalpha() and k > 0 and T[k - 1].isalpha()
                        and self.rng.random() < actor.typo_p * (1.4 if prose else 1.0)):
                    r = self._typo(file, T, k, actor, S, late)
                    if r == "recover":
                        k = self._recover(file, S, E, T, actor)
                        at_ls = k == 0 or T[k - 1] == "\n"
                        continue
                    if r is not None:
                        T, k = r
                        n = len(T)
                        continue
                self.press(c, actor, pause=pause, word_start=ws, prose=prose)
                k += 1
            # the region is typed: tidy what the editor added on its own
            t = ed.files[file]
            P = t[ed.cur:E.pos]
            if P:
                if len(P) > 6 and actor.human and self.rng.random() < 0.5:
                    self.hold_key("Delete", len(P), actor)
                else:
                    for _ in range(len(P)):
                        self.press("Delete", actor)
            guard = 0
            while guard < 8:
                t = ed.files[file]
                got = t[S.pos:ed.cur]
                if got == T or not got.startswith(T) or got[len(T):].strip(" \t") != "":
                    break
                self.press("Backspace", actor)
                guard += 1
            for m, right, wrong in late:
                self.late_fixes.append((m, right, wrong))
            late = []
            return True
        finally:
            for m, _, _ in late:
                ed.drop(m)
            ed.drop(S)
            ed.drop(E)

    def _find_elsewhere(self, w, file):
        pat = re.compile(r"\b%s\b" % re.escape(w))
        for f in sorted(self.ed.files):
            if f == file:
                continue
            m = pat.search(self.ed.files[f])
            if m:
                return f, m.start()
        return None

    def _copy_word_and_paste(self, src, w, file, actor):
        """Double-click a name in another file, Ctrl+C, click back, Ctrl+V."""
        ed = self.ed
        back = ed.cur
        f, p = src
        self.wait(lognorm(self.rng, 1200, 0.5))
        ed.cur_file = f
        ed.cur = p + len(w)
        ed.sel = (p, p + len(w))
        ed.clear_auto()
        self.held_mod = None
        self.emit_cursor()
        self.chord([self.env.primary], [("c", lambda: ([], False), "typed")], actor, pause=lognorm(self.rng, 350, 0.5))
        self.click(file, back, actor)

        def put():
            ch = ed.apply(file, ed.cur, 0, w)
            ed.cur += len(w)
            return [ch], False
        self.chord([self.env.primary], [("v", put, "paste")], actor, pause=lognorm(self.rng, 300, 0.5))

    def _in_comment(self, T, k, file):
        ls = T.rfind("\n", 0, k) + 1
        pre = T[ls:k].lstrip()
        cm = lang_of(file)["comment"].strip()
        return bool(cm) and pre.startswith(cm)

    def _reconcile(self, file, T, k, actor, is_md):
        """After Enter: make the new line's indentation (or list marker) what T wants."""
        ed = self.ed
        m = re.match(r"[ \t]*(?:[-*] )?" if is_md else r"[ \t]*", T[k:k + 200])
        tw = m.group(0)
        j = k + len(tw)
        blank = j >= len(T) or T[j] == "\n"
        t = ed.files[file]
        ls = ed.line_start(ed.cur)
        ai = t[ls:ed.cur]
        if blank and ai.strip() == "" and tw.strip(" \t") == "" and not tw:
            return k
        guard = 0
        while not tw.startswith(ai) and guard < 12:
            self.press("Backspace", actor)
            guard += 1
            t = ed.files[file]
            ls = ed.line_start(ed.cur)
            ai = t[ls:ed.cur]
        if not tw.startswith(ai):
            return k
        rest = tw[len(ai):]
        unit = ed.unit(file)
        while rest:
            if self.out():
                return j - len(rest)
            if ed.autoindent and rest.startswith(unit) and ai.strip() == "" and len(unit) > 0 and not is_md:
                self.press("Tab", actor)
                rest = rest[len(unit):]
            else:
                c = rest[0]
                self.press(c if c != "\t" else "Tab", actor, autoclose=False)
                rest = rest[1:]
            ai = ed.files[file][ed.line_start(ed.cur):ed.cur]
        return j

    def _type_raw(self, T, actor):
        """A script sending every character as a key, whatever the editor does with it."""
        at_ls = True
        for i, c in enumerate(T):
            if self.out():
                return False
            pause = 0.0
            if at_ls:
                e = T.find("\n", i)
                pause = actor.line_pause(T[i:e if e >= 0 else len(T)], "code")
                at_ls = False
            key = "Enter" if c == "\n" else ("Tab" if c == "\t" else c)
            if key == "Tab" and self.ed.autoindent:
                self.press("Tab", actor, pause=pause, effect=lambda: (self.ed.insert_plain(self.ed.unit()), False))
            else:
                self.press(key, actor, pause=pause, word_start=is_word(c) and i > 0 and not is_word(T[i - 1]))
            if c == "\n":
                at_ls = True
        return True

    def _type_insert(self, T, actor):
        """Text injected by a browser extension: synthetic key events plus insertText, which
        bypasses the editor's auto-indent and auto-close."""
        at_ls = True
        for i, c in enumerate(T):
            if self.out():
                return False
            pause = 0.0
            if at_ls:
                e = T.find("\n", i)
                pause = actor.line_pause(T[i:e if e >= 0 else len(T)], "code")
                at_ls = False
            ch = c
            if actor.typo_p and c.isalpha() and self.rng.random() < actor.typo_p and neighbours(c):
                wrong = self.rng.choice(neighbours(c))
                self.press(wrong, actor, pause=pause, effect=lambda w=wrong: (self.ed.insert_plain(w), False))
                self.press("Backspace", actor, pause=actor.react(), effect=lambda: (self.ed.backspace(), False))
                pause = 0.0
            self.press("Enter" if c == "\n" else c, actor, pause=pause, kclass=key_class(c),
                       word_start=is_word(c) and i > 0 and not is_word(T[i - 1]),
                       effect=lambda ch=ch: (self.ed.insert_plain(ch), False))
            if c == "\n":
                at_ls = True
        return True

    def _typo(self, file, T, k, actor, S, late):
        rng = self.rng
        ed = self.ed
        c = T[k]
        we = k
        while we < len(T) and T[we].isalpha():
            we += 1
        nb = neighbours(c)
        r = rng.random()
        if actor.human and r < actor.late_typo_frac and nb:
            x = rng.choice(nb)
            self.press(x, actor)
            m = ed.marker(file, ed.cur - 1, True)
            late.append((m, c, x))
            return T[:k] + x + T[k + 1:], k + 1
        r = rng.random()
        typed_extra = []
        if r < 0.55 and nb:                       # substitution
            first = rng.choice(nb)
            typed_extra = [first] + list(T[k + 1:min(we, k + 1 + self._notice())])
        elif r < 0.72:                            # extra letter (double or neighbour)
            first = c if rng.random() < 0.5 or not nb else rng.choice(nb)
            typed_extra = [first] + list(T[k:min(we, k + self._notice())])
        elif r < 0.86 and k + 1 < we:              # transposition
            typed_extra = [T[k + 1], c] + list(T[k + 2:min(we, k + 2 + self._notice())])
        elif k + 1 < we:                          # omission
            typed_extra = list(T[k + 1:min(we, k + 1 + max(1, self._notice()))])
        else:
            return None
        for i, ch in enumerate(typed_extra):
            self.press(ch, actor)
        self._erase(len(typed_extra), actor, S, T)
        nk = ed.cur - S.pos
        if ed.cur_file != file or nk < 0 or ed.files[file][S.pos:ed.cur] != T[:nk]:
            return "recover"
        return T, nk

    def _notice(self):
        r = self.rng.random()
        return 0 if r < 0.45 else 1 if r < 0.75 else 2 if r < 0.92 else 3

    def _erase(self, count, actor, S=None, T=None):
        """Delete `count` characters before the cursor: backspaces, a held backspace, or Ctrl+Backspace."""
        rng = self.rng
        ed = self.ed
        pause = actor.react()
        if count >= 4 and actor.ctrl_bs and rng.random() < 0.5:
            self.chord([self.env.primary if self.env.os != "mac" else "Alt"],
                       [("Backspace", lambda: (ed.backspace(word=True), False), "typed")], actor, pause=pause)
            return
        if count >= 5 and rng.random() < actor.hold_bs_p:
            n = count + (rng.randint(1, 2) if rng.random() < 0.3 else 0)
            if S is not None:
                n = min(n, ed.cur - S.pos)
                t = ed.text()
                n2 = 0
                while n2 < n and t[ed.cur - n2 - 1].isalpha():
                    n2 += 1
                n = max(min(n, n2), count) if n2 >= count else count
            self.wait(pause)
            self.hold_key("Backspace", n, actor)
            return
        for i in range(count):
            self.press("Backspace", actor, pause=pause if i == 0 else 0.0)

    def _autocomplete(self, w, k, actor, pause):
        rng = self.rng
        ed = self.ed
        n = rng.randint(2, min(4, len(w) - 3))
        for i in range(n):
            self.press(w[i], actor, pause=pause if i == 0 else 0.0, word_start=i == 0)
        start = ed.cur - n
        if ed.text()[start:ed.cur] != w[:n]:
            return k + n

        def accept():
            ch = ed.apply(ed.cur_file, start, n, w)
            ed.cur = start + len(w)
            return [ch], False
        key = rng.choice(["Enter", "Tab", "Enter"])
        self.press(key, actor, pause=lognorm(rng, 280, 0.5), effect=accept, origin="autocomplete")
        return k + len(w)

    def _dead_key(self, T, k, actor, pause):
        """US-International: ' " ` ~ ^ are dead keys; the character appears with the next key."""
        ed = self.ed
        c = T[k]
        nxt = T[k + 1] if k + 1 < len(T) else ""
        combining = set("aeiouycnAEIOUYCN")
        shift = ["Shift"] if c in '"~^' else []
        self.press("Dead", actor, pause=pause, mods=shift, kclass="other", effect=lambda: ([], False))
        if nxt and nxt not in combining and nxt not in "\n\t" and nxt not in DEAD_INTL and nxt not in CLOSERS \
                and self.rng.random() < 0.5 and ed.sel is None:
            text = c + nxt
            self.press(nxt, actor, effect=lambda: (ed.insert_plain(text), False))
            return k + 2
        self.press(" ", actor, effect=lambda: (ed.insert_plain(c), False))
        return k + 1

    def _emoji(self, T, k, actor, pause):
        """An emoji from the OS picker (Win+. / Ctrl+Cmd+Space / Ctrl+.): the shortcut's keys reach
        the page, the picking does not; the emoji arrives as one typed insertion a moment later."""
        ed = self.ed
        e = k + 1
        if 0xD800 <= ord(T[k]) <= 0xDBFF and e < len(T):
            e += 1
        if e < len(T) and T[e] == "\ufe0f":
            e += 1
        cluster = T[k:e]
        os_name = self.env.os
        if os_name == "mac":
            self.chord(["Control", "Meta"], [(" ", lambda: ([], False), "typed")], actor, pause=pause)
        elif os_name == "windows":
            self.chord(["Meta"], [(".", lambda: ([], False), "typed")], actor, pause=pause)
        else:
            self.chord(["Control"], [(".", lambda: ([], False), "typed")], actor, pause=pause)
        self.wait(lognorm(self.rng, 2200, 0.45))
        changes = ed.insert_plain(cluster)
        for ch in changes:
            self.emit_edit(self.t, ch, "typed")
        self.t_true = self.t
        return e

    def _ime(self, T, k, actor, pause):
        """CJK through an IME: `Process` key-downs for the pinyin, one edit at composition end."""
        rng = self.rng
        ed = self.ed
        e = k
        while e < len(T) and is_cjk(T[e]):
            e += 1
        run = T[k:e]
        i = 0
        first = True
        while i < len(run):
            chunk = run[i:i + rng.randint(1, 4)]
            i += len(chunk)
            nkeys = sum(rng.randint(*PINYIN_KEYS) for _ in chunk)
            for j in range(nkeys):
                self.press("Process", actor, pause=pause if first else 0.0, kclass="other", mods=[],
                           effect=lambda: ([], False))
                first = False
            # selection key (space or a digit), then the composed text arrives
            self.press("Process", actor, pause=lognorm(rng, 350, 0.5), kclass="other", mods=[],
                       effect=lambda ch=chunk: (ed.insert_plain(ch), False))
        return e

    # -- undo / redo ----------------------------------------------------------------------
    def undo_one(self):
        if not self.hist or self.hist[-1].get("barrier"):
            return [], False
        g = self.hist[-1]
        ed = self.ed
        t = ed.files.get(g["f"])
        if t is None or t[g["pos"]:g["pos"] + len(g["ins"])] != g["ins"]:
            return [], False
        self.hist.pop()
        ch = ed.apply(g["f"], g["pos"], len(g["ins"]), g["gone"])
        ed.cur_file = g["f"]
        ed.cur = g["pos"] + len(g["gone"])
        ed.sel = None
        self.redo_stack.append(g)
        return [ch], False

    def redo_one(self):
        if not self.redo_stack:
            return [], False
        g = self.redo_stack[-1]
        ed = self.ed
        t = ed.files.get(g["f"])
        if t is None or t[g["pos"]:g["pos"] + len(g["gone"])] != g["gone"]:
            return [], False
        self.redo_stack.pop()
        ch = ed.apply(g["f"], g["pos"], len(g["gone"]), g["ins"])
        ed.cur_file = g["f"]
        ed.cur = g["pos"] + len(g["ins"])
        ed.sel = None
        self.hist.append(g)
        return [ch], False

    def _undo_episode(self, actor, file, S, E, T):
        """Ctrl+Z a few times (maybe held), then perhaps redo some. Returns the new k, or None."""
        rng = self.rng
        ed = self.ed
        n = 0
        for g in reversed(self.hist):
            if g.get("barrier") or g["f"] != file or g["pos"] < S.pos:
                break
            n += 1
        if n == 0:
            return ed.cur - S.pos
        nu = min(n, rng.choice([1, 1, 2, 2, 3, 4]))
        prim = self.env.primary
        self.chord([prim], [("z", self.undo_one, "undo")] * nu, actor, pause=lognorm(rng, 600, 0.6))
        if self.redo_stack and rng.random() < 0.45:
            nr = rng.randint(1, min(len(self.redo_stack), nu))
            mods = [prim, "Shift"] if self.env.os != "windows" or rng.random() < 0.5 else [prim]
            key = "z" if len(mods) == 2 else "y"
            self.chord(mods, [(key, self.redo_one, "redo")] * nr, actor, pause=lognorm(rng, 500, 0.6))
        return self._recover(file, S, E, T, actor)

    def _recover(self, file, S, E, T, actor):
        """Bring a region back to 'a prefix of T, cursor after it': keep the longest correct
        prefix and delete whatever follows it inside the region (what a person does after an
        undo that went too far or a correction that went wrong)."""
        ed = self.ed
        t = ed.files[file]
        seg = t[S.pos:E.pos]
        L = 0
        m = min(len(seg), len(T))
        while L < m and seg[L] == T[L]:
            L += 1
        if ed.cur_file == file and ed.cur == S.pos + L and ed.sel is None:
            if E.pos == ed.cur or all(ch in CLOSERS or ch in " \t\n" for ch in seg[L:]):
                return L
        if E.pos > S.pos + L:
            self.select_range(file, S.pos + L, E.pos, actor)
            self.press("Backspace", actor)
        else:
            self.goto(file, S.pos + L, actor)
        return L

    # -- bigger edits ---------------------------------------------------------------------
    def morph(self, file, pos, old, new, actor=None):
        """Turn old (at pos) into new with the smallest sensible edits, left to right, as a person
        editing in place: token-level diff hunks, each selected and retyped."""
        actor = actor or self.actor
        tok = re.compile(r"\w+|\s+|[^\w\s]")
        a = tok.findall(old)
        b = tok.findall(new)
        sm = difflib.SequenceMatcher(None, a, b, autojunk=False)
        ops = sm.get_opcodes()
        hunks = []
        cur = None
        for tag, i1, i2, j1, j2 in ops:
            if tag == "equal":
                if cur is not None and sum(len(x) for x in a[i1:i2]) < 4 and i2 - i1 <= 2:
                    cur[1] = i2
                    cur[3] = j2
                elif cur is not None:
                    hunks.append(cur)
                    cur = None
                continue
            if cur is None:
                cur = [i1, i2, j1, j2]
            else:
                cur[1] = i2
                cur[3] = j2
        if cur is not None:
            hunks.append(cur)
        ed = self.ed
        M = ed.marker(file, pos, False)
        try:
            for i1, i2, j1, j2 in hunks:
                if self.out():
                    return False
                hp = M.pos + sum(len(x) for x in b[:j1])
                dl = sum(len(x) for x in a[i1:i2])
                ins = "".join(b[j1:j2])
                oldseg = "".join(a[i1:i2])
                if ed.files[file][hp:hp + dl] != oldseg:
                    return False
                if not ins:
                    self.select_range(file, hp, hp + dl, actor)
                    self.press("Backspace" if self.rng.random() < 0.7 else "Delete", actor)
                    continue
                if not self.type_region(file, hp, ins, actor, sel_len=dl):
                    return False
            return True
        finally:
            ed.drop(M)

    def paste(self, file, pos, text, actor=None, sel_len=0, origin="paste", via=None):
        actor = actor or self.actor
        ed = self.ed
        rng = self.rng
        if sel_len:
            self.select_range(file, pos, pos + sel_len, actor)
        else:
            self.goto(file, pos, actor)
        via = via or rng.choices(["keys", "menu", "middle"], [88, 9, 3 if self.env.os == "linux" else 0])[0]
        if origin == "drop":
            via = "mouse"

        def put():
            s = ed.take_selection()
            if s:
                ch = ed.apply(file, s[0], s[1] - s[0], text)
                ed.cur = s[0] + len(text)
            else:
                ch = ed.apply(file, ed.cur, 0, text)
                ed.cur += len(text)
            return [ch], False
        if via == "keys":
            self.chord([self.env.primary], [("v", put, origin)], actor, pause=lognorm(rng, 400, 0.6))
        else:
            self.wait(lognorm(rng, 1200, 0.5))
            changes, _ = put()
            for ch in changes:
                self.emit_edit(self.t + 0.5, ch, origin)
        self.barrier()

    def copy(self, file, a, b, actor=None, cut=False):
        actor = actor or self.actor
        ed = self.ed
        self.select_range(file, a, b, actor)
        if cut:
            def eff():
                s = ed.take_selection() or (a, b)
                ch = ed.apply(file, s[0], s[1] - s[0], "")
                ed.cur = s[0]
                return [ch], False
            self.chord([self.env.primary], [("x", eff, "other")], actor, pause=lognorm(self.rng, 300, 0.5))
        else:
            self.chord([self.env.primary], [("c", lambda: ([], False), "typed")], actor, pause=lognorm(self.rng, 300, 0.5))
        return ed.files[file][a:b] if not cut else None

    # -- session activities ---------------------------------------------------------------
    def create_file(self, f, actor=None):
        self.wait(lognorm(self.rng, 2500, 0.5))
        self.emit(self.t, {"type": "file_created", "file": f, "content": ""})
        self.ed.files[f] = ""
        self.ed.cur_file = f
        self.ed.cur = 0
        self.ed.sel = None
        self.ed.clear_auto()
        self.created.append(f)

    def tab_away(self, actor, dur, left_desk=False, keys_ok=True):
        rng = self.rng
        self.held_mod = None
        t0 = self.t + lognorm(rng, 400, 0.5)
        if keys_ok and actor.human and rng.random() < 0.55:
            # Alt+Tab / Cmd+Tab: the modifier's key-down reaches the page, the Tab and the key-up do not
            self.keystroke("modifier", t0, 0.0, hw=actor.hw, no_up=True)
            t0 = self.t + rng.uniform(30, 160)
        self.emit(t0, {"type": "focus_lost"})
        if left_desk and self.face is not None and dur > 20e3:
            self.face.add(t0 + rng.uniform(2e3, 8e3), t0 + dur - rng.uniform(2e3, 6e3), "absent")
        self.t = t0 + dur
        self.emit(self.t, {"type": "focus_regained"})
        self.t_true = self.t
        self.replay_anchor = None

    def code_run(self, actor=None):
        rng = self.rng
        C = CONTENT[self.slug]
        self.wait(lognorm(rng, 1800, 0.5))
        lang = C["run"].split()[0]
        dur = {"python3": lognorm(rng, 2600, 0.5), "npm": lognorm(rng, 5200, 0.35),
               "go": lognorm(rng, 9000, 0.5)}.get(lang, 3000.0)
        base = C["tests_total"]
        extra = 0
        for f in self.created:
            t = self.ed.files.get(f, "")
            extra += t.count("def test_") + t.count("func Test") + t.count(" it(\"")
        total = base + extra
        failing0 = {"bug-hunt": 4, "async-task-queue": 5, "database-schema-optimization": 4,
                    "distributed-cache-strategy": 2, "microservice-orchestration": 3, "rate-limiting": 2,
                    "rest-api-design": 4}.get(self.slug, 3)
        p = self.progress
        failed = max(0, int(round(failing0 * (1 - p) + rng.gauss(0, 0.7))))
        if p > 0.5 and extra and rng.random() < 0.3:
            failed += 1
        failed = min(failed, total)
        cmd = C["run"] if self.meta.get("cmd_style", 0) == 0 else "run tests"
        data = {"type": "code_run", "command": cmd}
        r = rng.random()
        if lang in ("go", "npm") and p < 0.9 and r < 0.12:
            data.update(exit_code=1 if lang == "npm" else 2, tests_passed=0, tests_failed=0)
            dur *= 0.4
        elif r < 0.015:
            data.update(exit_code=124, tests_passed=max(0, total - failed - 2), tests_failed=failed)
            dur = 60000.0 + rng.uniform(0, 500)
        else:
            data.update(exit_code=0 if failed == 0 else 1, tests_passed=total - failed, tests_failed=failed)
        data["duration_ms"] = int(dur)
        self.wait(dur)
        self.emit(self.t, data)
        self.runs += 1

    def reload(self, actor):
        rng = self.rng
        ed = self.ed
        t0 = self.t + lognorm(rng, 800, 0.5)
        how = rng.choice(["f5", "ctrl_r", "button", "crash"])
        if how == "f5" and actor.human:
            self.keystroke("other", t0, 0.0, no_up=True)
        elif how == "ctrl_r" and actor.human:
            self.keystroke("modifier", t0, 0.0, no_up=True)     # Ctrl/Cmd+R
            self.keystroke("letter", t0 + rng.uniform(60, 180), 0.0, no_up=True)
        self.emit(self.t + rng.uniform(5, 60), {"type": "focus_lost"})
        down = lognorm(rng, 2500, 0.5) if how != "crash" else rng.uniform(20e3, 120e3)
        self.t += down
        restart = rng.random() < 0.7
        if restart:
            self.tele.page_t0 = self.t - rng.uniform(30, 400)
        self.meta["reloads"] = self.meta.get("reloads", 0) + 1
        self.meta.setdefault("reload_kinds", []).append("mono_restart" if restart else "mono_continues")
        self.tele.last_cur = -1e18
        self.tele.cur_pending = None
        self.tele.cur_timer = None
        ed.cur_file = next(iter(ed.files))
        ed.cur = 0
        ed.sel = None
        ed.clear_auto()
        self.hist = []
        self.redo_stack = []
        self.held_mod = None
        self.t_true = self.t
        self.wait(lognorm(rng, 1500, 0.5))

    def ctrl_s(self, actor):
        self.chord([self.env.primary], [("s", lambda: ([], False), "typed")], actor, pause=lognorm(self.rng, 300, 0.5))

    def find(self, actor):
        rng = self.rng
        ed = self.ed
        words = re.findall(r"[A-Za-z_]{5,}", ed.text())
        if not words:
            return
        w = rng.choice(words)[: rng.randint(4, 9)]
        self.chord([self.env.primary], [("f", lambda: ([], False), "typed")], actor, pause=lognorm(rng, 500, 0.5))
        for i, c in enumerate(w):
            self.press(c, actor, pause=lognorm(rng, 300, 0.4) if i == 0 else 0.0, effect=lambda: ([], False))
        i = ed.text().find(w)
        if i >= 0:
            def jump():
                ed.sel = (i, i + len(w))
                ed.cur = i + len(w)
                return [], True
            self.press("Enter", actor, effect=jump)
        self.press("Escape", actor, pause=lognorm(rng, 900, 0.6), effect=lambda: ([], False))
        ed.sel = None

    def scroll_read(self, actor, secs):
        """Reading a file: PageDown/arrows for keyboard people, the wheel (no events) for others."""
        rng = self.rng
        ed = self.ed
        f = rng.choice(list(ed.files))
        self.click(f, rng.randint(0, len(ed.files[f])) if ed.files[f] else 0, actor)
        end = self.t + secs
        while self.t < end:
            if actor.human and rng.random() < actor.kbd_nav_p * 0.5:
                key = rng.choice(["PageDown", "PageDown", "ArrowDown", "PageUp"])
                n = rng.randint(1, 4) if key.startswith("Page") else rng.randint(2, 12)
                down = key in ("PageDown", "ArrowDown")
                step = 30 if key.startswith("Page") else 1

                def mv(down=down, step=step):
                    for _ in range(step):
                        self._vmove(down)
                    return [], True
                if key == "ArrowDown" and n > 6 and rng.random() < 0.5:
                    self.hold_key(key, n, actor, effect=mv)
                else:
                    for _ in range(n):
                        self.press(key, actor, pause=lognorm(rng, 2500, 0.8), effect=mv)
            else:
                t = ed.files[f]
                if t:
                    self.click(f, rng.randint(0, len(t)), actor)
            self.wait(lognorm(rng, 9000, 0.8))

    def late_fix(self, actor):
        m, right, wrong = self.late_fixes.pop(0)
        ed = self.ed
        ed.drop(m)
        t = ed.files.get(m.file)
        if t is None or m.pos >= len(t) or t[m.pos] != wrong:
            return
        self.goto(m.file, m.pos + 1, actor)
        self.press("Backspace", actor, pause=lognorm(self.rng, 500, 0.5))
        self.press(right, actor)

    def within_typing(self, actor):
        """Small things that happen at the start of a line while typing (cursor stays put)."""
        rng = self.rng
        B = self.B
        r = rng.random()
        if r < B.get("p_line_lookup", 0.004):
            self.tab_away(actor, lognorm(rng, 12e3, 0.8))
        elif r < B.get("p_line_lookup", 0.004) + B.get("p_ctrl_s_line", 0.0):
            self.ctrl_s(actor)
        elif self.meta.get("tx_alt_tab") and rng.random() < 0.45:
            self.tab_away(actor, lognorm(rng, 3500, 0.5))

    def interlude(self, actor, idx):
        rng = self.rng
        B = self.B
        if rng.random() < B["p_idle"]:
            self.wait(lognorm(rng, B["idle_med"], 0.9))
        if B.get("think_med"):
            # reading code, thinking, scribbling on paper: most of a real session
            self.think(actor, min(lognorm(rng, B["think_med"], 0.8), 25 * 60e3))
        if self.runs == 0 and idx > 0 and rng.random() < 0.5 or rng.random() < B["p_run"]:
            self.code_run(actor)
        if rng.random() < B["p_docs"]:
            self.tab_away(actor, min(lognorm(rng, 35e3, 1.0), 6 * 60e3))
        if rng.random() < B["p_break"]:
            self.tab_away(actor, rng.uniform(2 * 60e3, 14 * 60e3), left_desk=rng.random() < 0.8)
        if rng.random() < B["p_ctrl_s"]:
            self.ctrl_s(actor)
        if self.late_fixes and rng.random() < B["p_latefix"]:
            self.late_fix(actor)
        if rng.random() < B["p_find"]:
            self.find(actor)
        if rng.random() < B["p_scroll"]:
            self.scroll_read(actor, lognorm(rng, 40e3, 0.8))
        if rng.random() < B["p_refactor"]:
            self.refactor(actor)
        if rng.random() < B["p_reload"]:
            self.reload(actor)
        if rng.random() < B["p_scratch"] and not self.meta.get("scratch"):
            self.scratch(actor)

    def think(self, actor, total):
        """Time spent reading and thinking: clicks into files, a little scrolling, documentation."""
        rng = self.rng
        ed = self.ed
        end = self.t + total
        while self.t < end and not self.time_up():
            r = rng.random()
            if r < 0.4:
                f = rng.choice(sorted(ed.files))
                if ed.files[f]:
                    self.click(f, rng.randint(0, len(ed.files[f])), actor)
            elif r < 0.46 and actor.human and self.keys < self.budget - 20:
                key = rng.choice(["PageDown", "ArrowDown", "PageUp", "ArrowUp"])
                down = key in ("PageDown", "ArrowDown")
                step = 25 if key.startswith("Page") else 1

                def mv(down=down, step=step):
                    for _ in range(step):
                        self._vmove(down)
                    return [], True
                for _ in range(rng.randint(1, 5)):
                    self.press(key, actor, pause=lognorm(rng, 1500, 0.7), effect=mv)
            elif r < 0.53:
                self.tab_away(actor, min(lognorm(rng, 30e3, 0.9), max(end - self.t, 5e3)))
            left = end - self.t
            if left <= 0:
                break
            self.wait(min(lognorm(rng, 40e3, 0.9), left))

    def scratch(self, actor):
        rng = self.rng
        name = rng.choice(["scratch.txt", "notes.txt", "todo.md", "tmp.md"])
        if name in self.ed.files:
            return
        self.meta["scratch"] = name
        self.create_file(name, actor)
        lines = rng.sample(GENERIC_SCRATCH, rng.randint(2, 4))
        self.type_region(name, 0, "\n".join(lines) + "\n", actor, interlude=False)
        if rng.random() < 0.5:
            self.wait(lognorm(rng, 20e3, 0.8))
            if rng.random() < 0.5:
                self.emit(self.t, {"type": "file_deleted", "file": name})
                del self.ed.files[name]
                self.created.remove(name)
                if self.ed.cur_file == name:
                    self.ed.cur_file = next(iter(self.ed.files))
                    self.ed.cur = 0
            else:
                new = "NOTES-draft.md" if not name.endswith(".md") else "draft-" + name
                if new not in self.ed.files:
                    self.emit(self.t, {"type": "file_renamed", "file": name, "new_file": new})
                    self.ed.files[new] = self.ed.files.pop(name)
                    self.created[self.created.index(name)] = new
                    for m in self.ed.markers:
                        if m.file == name:
                            m.file = new
                    if self.ed.cur_file == name:
                        self.ed.cur_file = new
                    self.late_fixes = [x for x in self.late_fixes if x[0].file != name]

    # -- refactoring ----------------------------------------------------------------------
    def refactor(self, actor):
        rng = self.rng
        kinds = ["move_block", "rename", "comment_toggle", "move_line", "dup_line", "rewrite_line"]
        k = rng.choice(kinds)
        files = [f for f in set(self.created) | set(self.meta.get("touched", [])) if f in self.ed.files]
        files.sort()
        if not files:
            return
        f = rng.choice(files)
        getattr(self, "_rf_" + k)(f, actor)
        self.barrier()

    def _blocks(self, t):
        out = []
        i = 0
        for m in re.finditer(r"\n\n+", t):
            out.append((i, m.end()))
            i = m.end()
        if i < len(t):
            out.append((i, len(t)))
        return [(a, b) for a, b in out if t[a:b].strip() and b - a > 20]

    def _rf_move_block(self, f, actor):
        rng = self.rng
        ed = self.ed
        t = ed.files[f]
        bl = self._blocks(t)
        if len(bl) < 3:
            return
        a, b = rng.choice(bl[1:])
        if not t[a:b].endswith("\n"):
            return
        text = t[a:b]
        self.copy(f, a, b, actor, cut=True)
        t = ed.files[f]
        bl = [x for x in self._blocks(t)]
        if not bl:
            return
        dest = rng.choice([x[0] for x in bl])
        self.paste(f, dest, text, actor)
        if rng.random() < 0.3 and self.hist:     # second thoughts: undo the move
            self.chord([self.env.primary], [("z", self.undo_one, "undo")] * 2, actor, pause=lognorm(rng, 1500, 0.6))

    def _rf_rename(self, f, actor):
        rng = self.rng
        ed = self.ed
        t = ed.files[f]
        cands = []
        for name, opts in CONTENT[self.slug]["vars"].items():
            v = self.vars.get(name, "")
            vv = v.split(".")[-1]
            if vv and re.fullmatch(r"[A-Za-z_]\w*", vv) and len(re.findall(r"\b%s\b" % re.escape(vv), t)) >= 2:
                alts = [o.split(".")[-1] for o in opts if o.split(".")[-1] != vv and re.fullmatch(r"[A-Za-z_]\w*", o.split(".")[-1])]
                alts = [x for x in alts if x not in t]
                if alts:
                    cands.append((vv, rng.choice(alts)))
        if not cands:
            return self._rf_rewrite_line(f, actor)
        old, new = rng.choice(cands)
        occ = [m.start() for m in re.finditer(r"\b%s\b" % re.escape(old), t)][:8]
        L = len(old)
        if rng.random() < 0.5:
            # multi-cursor: select the first occurrence, Ctrl+D for each next one, then type
            self.select_range(f, occ[0], occ[0] + L, actor)
            if len(occ) > 1:
                self.chord([self.env.primary], [("d", lambda: ([], True), "typed")] * (len(occ) - 1), actor)
            cursors = list(occ)
            state = {"first": True}

            def typer(c):
                def eff():
                    changes = []
                    for i in range(len(cursors)):
                        p = cursors[i]
                        d = L if state["first"] else 0
                        ch = ed.apply(f, p, d, c)
                        changes.append(ch)
                        delta = len(c) - d
                        cursors[i] = p + len(c)
                        for j in range(i + 1, len(cursors)):
                            cursors[j] += delta
                    state["first"] = False
                    ed.sel = None
                    ed.cur = cursors[0]
                    return changes, False
                return eff
            for i, c in enumerate(new):
                self.press(c, actor, effect=typer(c), word_start=i == 0)
            self.barrier()
        else:
            for _ in range(len(occ)):
                t = ed.files[f]
                m = re.search(r"\b%s\b" % re.escape(old), t)
                if not m:
                    break
                self.type_region(f, m.start(), new, actor, sel_len=L, interlude=False)

    def _rf_comment_toggle(self, f, actor):
        rng = self.rng
        ed = self.ed
        cm = lang_of(f)["comment"]
        if not cm or f.endswith(".md"):
            return
        t = ed.files[f]
        lines = [m.start() for m in re.finditer(r"^[ \t]*\S", t, re.M)]
        if not lines:
            return
        ls = rng.choice(lines)
        ind = len(t[ls:]) - len(t[ls:].lstrip(" \t"))
        self.goto(f, ls + ind + rng.randint(0, 3) if ls + ind + 3 <= len(t) else ls + ind, actor)
        key = "/"

        def on():
            ch = ed.apply(f, ls + ind, 0, cm)
            ed.cur += len(cm)
            return [ch], False
        self.chord([self.env.primary], [(key, on, "typed")], actor, pause=lognorm(rng, 500, 0.5))
        self.wait(lognorm(rng, 6000, 0.9))

        def off():
            tt = ed.files[f]
            if tt[ls + ind:ls + ind + len(cm)] != cm:
                return [], False
            ch = ed.apply(f, ls + ind, len(cm), "")
            ed.cur = max(ls + ind, ed.cur - len(cm))
            return [ch], False
        self.chord([self.env.primary], [(key, off, "typed")], actor, pause=lognorm(rng, 500, 0.5))

    def _line_at(self, t, pos):
        a = t.rfind("\n", 0, pos) + 1
        b = t.find("\n", pos)
        return a, (len(t) if b < 0 else b)

    def _rf_move_line(self, f, actor):
        rng = self.rng
        ed = self.ed
        t = ed.files[f]
        nls = [m.start() for m in re.finditer("\n", t)]
        if len(nls) < 4:
            return
        i = rng.randrange(0, len(nls) - 2)
        a = 0 if i == 0 else nls[i - 1] + 1
        b = nls[i]
        c = nls[i + 1]
        self.goto(f, a + min(2, b - a), actor)

        def swap(a=a, b=b, c=c):
            tt = ed.files[f]
            l1, l2 = tt[a:b], tt[b + 1:c]
            ch = ed.apply(f, a, c - a, l2 + "\n" + l1)
            ed.cur = a + len(l2) + 1 + min(2, len(l1))
            return [ch], False
        self.chord(["Alt"], [("ArrowDown", swap, "paste")], actor, pause=lognorm(rng, 500, 0.5))
        if rng.random() < 0.6:
            self.wait(lognorm(rng, 1500, 0.6))
            self.chord(["Alt"], [("ArrowUp", swap, "paste")], actor, pause=lognorm(rng, 400, 0.5))

    def _rf_dup_line(self, f, actor):
        rng = self.rng
        ed = self.ed
        t = ed.files[f]
        lines = [(m.start(), m.end()) for m in re.finditer(r"^[^\n]*\S[^\n]*\n", t, re.M)]
        if not lines:
            return
        a, b = rng.choice(lines)
        self.goto(f, a + min(3, b - a - 1), actor)
        text = t[a:b]

        def dup():
            ch = ed.apply(f, b, 0, text)
            ed.cur = b + min(3, len(text) - 1)
            return [ch], False
        mods = ["Shift", "Alt"] if self.env.os != "mac" else ["Shift", "Alt"]
        self.chord(mods, [("ArrowDown", dup, "paste")], actor, pause=lognorm(rng, 500, 0.5))
        self.wait(lognorm(rng, 2000, 0.6))
        # then delete the copy again (select the line, backspace)
        if ed.files[f][b:b + len(text)] == text:
            self.select_range(f, b, b + len(text), actor)
            self.press("Backspace", actor)

    def _rf_rewrite_line(self, f, actor):
        rng = self.rng
        ed = self.ed
        t = ed.files[f]
        if not f.endswith(".md"):
            return
        lines = [(m.start(), m.end()) for m in re.finditer(r"^[^#\n][^\n]{30,}$", t, re.M)]
        if not lines:
            return
        a, b = rng.choice(lines)
        old = t[a:b]
        words = old.split(" ")
        if len(words) < 6:
            return
        i = rng.randrange(1, len(words) - 3)
        new = " ".join(words[:i] + words[i + 2:i + 4] + words[i:i + 2] + words[i + 4:])
        if new == old:
            return
        self.morph(f, a, old, new, actor)

    # -- pastes from documentation and from one's own code ------------------------------------
    def genericize(self, text):
        rng = self.rng
        generic = ["foo", "bar", "items", "result", "value", "data", "obj", "key", "conn", "row", "ctx", "x"]
        words = sorted(set(w for w in re.findall(r"\b[a-z_][a-z0-9_]{3,}\b", text)
                           if w not in ("self", "return", "import", "from", "func", "const", "async", "await",
                                        "true", "false", "None", "null", "string", "error", "select", "where")))
        if not words:
            return text
        pick = rng.sample(words, min(len(words), rng.randint(1, 4)))
        out = text
        for w in pick:
            out = re.sub(r"\b%s\b" % re.escape(w), rng.choice(generic), out)
        return out

    def doc_paste_then_adapt(self, f, pos, T, actor):
        """Look something up, paste the example, then edit it into shape; returns the rest of T."""
        rng = self.rng
        lines = T.split("\n")
        if len(lines) < 4:
            return T
        nh = rng.randint(2, min(8, len(lines) - 1))
        head = "\n".join(lines[:nh]) + "\n"
        rest = T[len(head):]
        doc = self.genericize(head)
        if rng.random() < 0.4:
            doc = lang_of(f)["comment"] + "from the docs\n" + doc if lang_of(f)["comment"] else doc
        self.tab_away(actor, min(lognorm(rng, 45e3, 0.9), 5 * 60e3))
        self.paste(f, pos, doc, actor)
        self.wait(lognorm(rng, 4000, 0.7))
        ok = self.morph(f, pos, doc, head, actor)
        if not ok:
            return None
        return rest

    def dup_then_adapt(self, f, pos, T, actor):
        """Copy the previous block of the same file, paste it, and edit it into the new one."""
        rng = self.rng
        ed = self.ed
        t = ed.files[f]
        bl = self._blocks(t)
        if not bl:
            return T
        a, b = bl[-1]
        src = t[a:b]
        if not src.endswith("\n"):
            return T
        parts = re.split(r"(?<=\n)(?=\n)", T)
        target_len = len(src)
        head = ""
        for p in parts:
            head += p
            if len(head) >= target_len * 0.7:
                break
        if not head or difflib.SequenceMatcher(None, src, head, autojunk=False).quick_ratio() < 0.55:
            return T
        self.copy(f, a, b, actor)
        self.paste(f, pos, src, actor)
        ok = self.morph(f, pos, src, head, actor)
        if not ok:
            return None
        return T[len(head):]

    # -- items ----------------------------------------------------------------------------
    def do_item(self, it, actor, style="human"):
        ed = self.ed
        rng = self.rng
        kind = it["kind"]
        f = it["file"]
        touched = self.meta.setdefault("touched", [])
        if f not in touched:
            touched.append(f)
        if kind == "append":
            op = actor if actor.human else self.operator
            if f not in ed.files:
                self.create_file(f, op)
            t = ed.files[f]
            T = it["text"]
            if t and not t.endswith("\n"):
                T = "\n" + T
            if t and t.endswith("\n\n") and T.startswith("\n"):
                T = T[1:]
            pos = len(t)
            if style == "human" and actor.human and not actor.transcribe and not f.endswith(".md"):
                if rng.random() < self.B.get("p_docpaste", 0.0):
                    r = self.doc_paste_then_adapt(f, pos, T, actor)
                    if r is None:
                        return
                    T = r
                elif ed.files[f] and rng.random() < self.B.get("p_dup", 0.0):
                    r = self.dup_then_adapt(f, pos, T, actor)
                    if r is None:
                        return
                    T = r
                pos = len(ed.files[f])
            self.type_region(f, pos, T, actor)
        elif kind == "replace":
            t = ed.files.get(f)
            if t is None:
                return
            i = t.find(it["old"])
            if i < 0:
                return
            if style == "human" and actor.human:
                self.morph(f, i, it["old"], it["new"], actor)
            else:
                self.type_region(f, i, it["new"], actor, sel_len=len(it["old"]))

    def filler_text(self):
        """More to write when the planned items run out: unused notes, scratch lines."""
        rng = self.rng
        C = CONTENT[self.slug]
        pool = []
        for it in C["items"]:
            if it["kind"] == "notes":
                for heads, sents in it["sections"]:
                    pool.extend(sents)
        rng.shuffle(pool)
        return pool

    def finish(self, actor):
        rng = self.rng
        if rng.random() < 0.85:
            self.code_run(actor)
        if rng.random() < 0.3:
            self.ctrl_s(actor)
        self.wait(rng.uniform(2e3, 40e3))
        self.tele.flush(self.t)
        self.tele.release_cursor(self.t)

    # -- fill, floor ----------------------------------------------------------------------
    def notes_file(self):
        for it in CONTENT[self.slug]["items"]:
            if it["kind"] == "notes":
                return it["file"]
        return "NOTES.md"

    def fill_to_budget(self, actor, frac=0.85, floor_only=False):
        """When the planned work is done early: keep writing notes (people polish their notes)."""
        rng = self.rng
        if self.time_up() and self.keys >= KEY_FLOOR:
            return
        target = KEY_FLOOR if floor_only else max(KEY_FLOOR, int(self.budget * frac))
        if self.keys >= target:
            return
        f = self.notes_file()
        pool = self.filler_text() + GENERIC_SCRATCH
        saved = self.limit_ms
        if self.keys < KEY_FLOOR:
            self.limit_ms = None
            self.budget = max(self.budget, KEY_FLOOR)
        for s in pool:
            if self.keys >= target or self.keys >= self.budget or self.time_up():
                break
            op = actor if actor.human else self.operator
            if f not in self.ed.files:
                self.create_file(f, op)
            t = self.ed.files[f]
            text = ("\n" if t and not t.endswith("\n") else "") + ("- " if rng.random() < 0.5 else "\n") + s + "\n"
            if rng.random() < 0.3 and actor.human:
                self.interlude(actor, 1)
            self.type_region(f, len(self.ed.files[f]), text, actor)
        self.limit_ms = saved

    def reading(self, actor):
        rng = self.rng
        B = self.B
        self.wait(lognorm(rng, B["read_med"], 0.6))
        if rng.random() < 0.7:
            self.scroll_read(actor, lognorm(rng, B["read_med"] * 0.4, 0.7))
        if rng.random() < 0.45:
            self.code_run(actor)


# ---------------------------------------------------------------------------------------------
# Items: the work of one session, rendered from the templates.
# ---------------------------------------------------------------------------------------------

def render(tpl: str, rng: random.Random, vars: dict) -> str:
    out = []
    for ln in tpl.split("\n"):
        if ln.startswith("?? "):
            if rng.random() < 0.5:
                continue
            ln = ln[3:]
        out.append(ln)
    s = "\n".join(out)
    s = re.sub(r"@\{([^{}]*)\}", lambda m: rng.choice(m.group(1).split("|")), s)
    s = re.sub(r"@\[(\w+)\]", lambda m: vars[m.group(1)], s)
    return s


def add_cjk_comments(text: str, file: str, rng) -> str:
    cm = lang_of(file)["comment"]
    if not cm or file.endswith(".md"):
        return text
    out = []
    for ln in text.split("\n"):
        st = ln.rstrip()
        if st and st[-1] in ":{" and not st.lstrip().startswith(cm.strip()) and rng.random() < 0.3:
            ind = ln[: len(ln) - len(ln.lstrip(" \t"))]
            out.append(ind + cm + rng.choice(CJK_COMMENTS))
        out.append(ln)
    return "\n".join(out)


def plan_items(slug: str, rng: random.Random, canonical: bool, ime=False, emoji=False, wrap_prob=0.2):
    import textwrap
    C = CONTENT[slug]
    vars = {k: rng.choice(v) for k, v in C["vars"].items()}
    items = []
    bullets = rng.random() < 0.45
    keep = rng.uniform(0.55, 1.0) if not canonical else 1.0
    wrap = rng.randint(78, 100) if rng.random() < wrap_prob else None
    when = "end" if canonical else rng.choice(["interleave", "end", "start", "interleave"])
    for it in C["items"]:
        if it["kind"] == "notes":
            f = it["file"]
            items.append(dict(kind="append", file=f, text=it["title"] + "\n",
                              group=(-1 if when == "start" else 99 if when == "end" else 0.5)))
            for si, (heads, sents) in enumerate(it["sections"]):
                chosen = [s for s in sents if rng.random() < keep] or sents[:1]
                if emoji and rng.random() < 0.3:
                    j = rng.randrange(len(chosen))
                    chosen[j] = chosen[j] + " " + rng.choice(["\u2705", "\U0001F680", "\U0001F44D", "\u26a0\ufe0f"])
                if bullets:
                    lines = []
                    for s in chosen:
                        if wrap:
                            lines.append(textwrap.fill(s, wrap, initial_indent="- ", subsequent_indent="  "))
                        else:
                            lines.append("- " + s)
                    body = "\n".join(lines)
                else:
                    paras, cur = [], []
                    for s in chosen:
                        cur.append(s)
                        if len(cur) >= rng.randint(2, 4):
                            paras.append(" ".join(cur))
                            cur = []
                    if cur:
                        paras.append(" ".join(cur))
                    if wrap:
                        paras = [textwrap.fill(p, wrap) for p in paras]
                    body = "\n\n".join(paras)
                text = "\n" + rng.choice(heads) + "\n\n" + body + "\n"
                g = 100 + si if when == "end" else (0 if when == "start" else 1 + si * 1.3)
                items.append(dict(kind="append", file=f, text=text, group=g))
            continue
        if it["kind"] == "replace":
            new = render(it["new"], rng, vars)
            if ime:
                new = add_cjk_comments(new, it["file"], rng)
            items.append(dict(kind="replace", file=it["file"], old=it["old"], new=new, group=it["group"]))
        else:
            text = render(it["text"], rng, vars)
            if ime:
                text = add_cjk_comments(text, it["file"], rng)
            items.append(dict(kind="append", file=it["file"], text=text, group=it["group"]))
    order = list(range(len(items)))
    if canonical:
        order.sort(key=lambda i: (items[i]["group"] >= 99, items[i]["group"], i))
    else:
        jit = [rng.uniform(0, 1.6) for _ in items]
        order.sort(key=lambda i: (items[i]["group"] + jit[i], i))
    # notes sections must follow their title: keep the notes' own order
    out = [items[i] for i in order]
    titles = [i for i, it in enumerate(out) if it["kind"] == "append" and it["text"].startswith("# ")]
    for ti in titles:
        f = out[ti]["file"]
        first = min(i for i, it in enumerate(out) if it["file"] == f and it["kind"] == "append")
        if first < ti:
            out.insert(first, out.pop(ti))
    # appends to one new file must keep their relative order (tests, modules)
    byfile: dict = {}
    for i, it in enumerate(out):
        if it["kind"] == "append":
            byfile.setdefault(it["file"], []).append(i)
    for f, idxs in byfile.items():
        orig = [it for it in items if it["kind"] == "append" and it["file"] == f]
        for i, it in zip(idxs, orig):
            out[i] = it
    return vars, out


# ---------------------------------------------------------------------------------------------
# Profiles and behaviour parameters
# ---------------------------------------------------------------------------------------------

HONEST_PROFILES = [
    ("average_laptop_typist", 18), ("fast_touch_typist", 14), ("two_finger_typist", 12),
    ("very_fast_even_typist", 12), ("non_native_english", 12), ("ime_cjk_comments", 8),
    ("tremor_rsi_slow_even", 10), ("pause_then_burst", 12), ("doc_reader_paster", 12),
    ("heavy_refactorer", 12), ("short_task_reader", 14), ("marathon", 10),
    ("privacy_browser_coarse_timer", 10), ("no_camera_consent", 4),
]

VARIANTS = {
    "constant_interval": ["ahk_sendevent_default", "ahk_keydelay_custom", "xdotool_type_default",
                          "xdotool_delay_custom", "pyautogui_interval", "extension_settimeout", "sendinput_bursts"],
    "uniform_jitter": ["ahk_random_sleep", "pyautogui_uniform", "extension_math_random", "xdotool_shell_loop",
                       "pynput_uniform_hold"],
    "iid_human_like": ["iid_lognormal", "iid_gamma", "iid_exgauss", "iid_bootstrap_own_typing", "iid_weibull"],
    "humanized_bot": ["typo_pause_script", "word_burst", "digraph_markov", "fatigue_drift", "extension_human_typer"],
    "replayed_timing": ["replay_same_browser", "replay_offset_start", "replay_other_browser",
                        "replay_trimmed_pauses", "replay_with_os_shift"],
    "whole_paste": ["single_paste_new_file", "paste_over_starter", "few_chunk_pastes", "drag_drop",
                    "paste_then_retouch"],
    "transcription": ["phone_chatgpt", "second_monitor", "alt_tab_reader", "printed_sheet_two_finger",
                      "fast_transcriber"],
    "face_swap": ["clean_handover_absent", "visible_handover_two_faces", "swap_and_return", "lookalike_sibling",
                  "camera_covered_after_swap", "printed_photo_spoof"],
}
CLASSES = ["honest", "constant_interval", "uniform_jitter", "iid_human_like", "humanized_bot",
           "replayed_timing", "whole_paste", "transcription", "face_swap"]


def behaviour(profile: str, rng) -> dict:
    B = dict(p_idle=0.5, idle_med=8e3, p_run=0.22, p_docs=0.12, p_break=0.02, p_ctrl_s=0.0, p_latefix=0.5,
             p_find=0.05, p_scroll=0.12, p_refactor=0.03, p_reload=0.008, p_scratch=0.06, p_docpaste=0.04,
             p_dup=0.12, read_med=150e3, p_line_lookup=0.004, p_ctrl_s_line=0.0, p_idpaste=rng.uniform(0.0, 0.08))
    if rng.random() < 0.3:
        B.update(p_ctrl_s=0.5, p_ctrl_s_line=0.012)
    if profile == "doc_reader_paster":
        B.update(p_docs=0.45, p_docpaste=0.6, p_dup=0.4, p_line_lookup=0.012, p_idpaste=0.25)
    elif profile == "heavy_refactorer":
        B.update(p_refactor=0.5, p_find=0.15, p_dup=0.3, p_idpaste=0.12)
    elif profile == "short_task_reader":
        B.update(read_med=420e3, p_scroll=0.6, p_idle=0.8, idle_med=30e3, p_run=0.4, p_find=0.2)
    elif profile == "marathon":
        B.update(p_break=0.12, p_reload=0.07, p_run=0.35, p_docs=0.2)
    elif profile == "pause_then_burst":
        B.update(p_idle=0.7, idle_med=30e3)
    elif profile in ("two_finger_typist", "tremor_rsi_slow_even"):
        B.update(p_docs=0.08)
    elif profile == "transcribe":
        B = {k: 0.0 for k in B}
        B.update(read_med=60e3, idle_med=3e3, p_idle=0.2)
    elif profile == "operator":
        B = {k: 0.0 for k in B}
        B.update(read_med=50e3, idle_med=6e3, p_idle=0.6, p_run=0.15)
    return B


def draw_budget(rng, profile=""):
    if profile == "short_task_reader":
        return rng.randint(300, 590)
    if profile == "marathon":
        return rng.randint(4200, 5900)
    r = rng.random()
    if r < 0.32:
        return rng.randint(320, 590)
    if r < 0.80:
        return int(math.exp(rng.uniform(math.log(600), math.log(1600))))
    if r < 0.94:
        return rng.randint(1600, 3000)
    return rng.randint(3000, 5800)


def think_budget(S, prof, rng) -> float:
    """Median thinking/reading pause per work item, so that the session lasts a plausible share
    of the time limit: typing is a small part of a real take-home session."""
    limit = S.limit_ms
    if prof == "short_task_reader":
        D = rng.uniform(0.25, 0.75) * limit
    elif prof == "marathon":
        D = rng.uniform(0.85, 1.0) * limit
    elif prof == "very_fast_even_typist":
        D = rng.uniform(0.25, 0.8) * limit
    else:
        D = rng.uniform(0.3, 0.95) * limit
    a = S.actor
    typing = S.budget * (a.iki * 1.5 + 120)
    remaining = D - typing - S.B["read_med"] * 1.6
    chars = 0
    n = 0
    for it in S.items:
        n += 1
        chars += len(it.get("text", it.get("new", "")))
        if chars >= S.budget * 0.9:
            break
    if remaining <= 0:
        return 5e3
    return max(5e3, remaining / max(n, 1) / 1.4)


def pick_face_model(rng):
    return rng.choices(list(FACE_MODELS), [45, 35, 20])[0]


# ---------------------------------------------------------------------------------------------
# Drivers: how each class of session unfolds
# ---------------------------------------------------------------------------------------------

def drive_honest(S: Session):
    S.reading(S.actor)
    for idx, it in enumerate(S.items):
        if S.out():
            break
        if S.hook:
            S.hook(S)
        S.interlude(S.actor, idx)
        if S.out():
            break
        S.do_item(it, S.actor)
        S.progress = (idx + 1) / len(S.items)
    if S.hook:
        S.hook(S)
    S.fill_to_budget(S.actor)
    if S.hook:
        S.hook(S, final=True)
    S.fill_to_budget(S.actor, floor_only=True)
    S.finish(S.actor)


def drive_transcription(S: Session, variant: str):
    rng = S.rng
    S.reading(S.actor)
    S.wait(min(lognorm(rng, 6 * 60e3, 0.8), 30 * 60e3))   # ask the chatbot / the friend, wait for the answer
    S.tab_away(S.actor, lognorm(rng, 90e3, 0.7))         # fetch the answer elsewhere
    for idx, it in enumerate(S.items):
        if S.out():
            break
        if rng.random() < 0.4:
            S.wait(lognorm(rng, 5e3, 0.7))
        S.do_item(it, S.actor, style="human")
        S.progress = (idx + 1) / len(S.items)
    S.fill_to_budget(S.actor, floor_only=True)
    S.finish(S.actor)


def drive_bot(S: Session):
    rng = S.rng
    op = S.operator
    S.reading(op)
    S.wait(min(lognorm(rng, 5 * 60e3, 1.0), 45 * 60e3))     # pretend to work before starting the script
    for idx, it in enumerate(S.items):
        if S.out():
            break
        S.wait(lognorm(rng, 6e3, 0.8))
        if rng.random() < 0.3:
            S.wait(lognorm(rng, 60e3, 0.8))
        if rng.random() < 0.35:
            S.tab_away(op, lognorm(rng, 8e3, 0.6))          # start the script from a terminal
        elif rng.random() < 0.1:
            S.code_run(op)
        S.replay_anchor = None
        S.do_item(it, S.actor, style="bot")
        S.progress = (idx + 1) / len(S.items)
    S.replay_anchor = None
    S.fill_to_budget(S.actor, frac=0.85)
    S.fill_to_budget(op, floor_only=True)
    S.finish(op)


def drive_paste(S: Session, variant: str):
    rng = S.rng
    op = S.actor
    ed = S.ed
    S.reading(op)
    S.wait(min(lognorm(rng, 6 * 60e3, 1.0), 40 * 60e3))
    S.tab_away(op, lognorm(rng, 150e3, 0.7))
    notes_files = {it["file"] for it in CONTENT[S.slug]["items"] if it["kind"] == "notes"}
    code = [it for it in S.items if it["file"] not in notes_files]
    notes = [it for it in S.items if it["file"] in notes_files]
    origin = "drop" if variant == "drag_drop" else "paste"
    files = []
    for it in code:
        if it["file"] not in files:
            files.append(it["file"])
    for fi, f in enumerate(files):
        its = [it for it in code if it["file"] == f]
        if variant == "few_chunk_pastes" and fi:
            S.tab_away(op, lognorm(rng, 50e3, 0.7))
        if f not in ed.files:
            S.create_file(f, op)
            text = "".join(it["text"] for it in its if it["kind"] == "append")
            S.paste(f, 0, text, op, origin=origin)
            continue
        if variant == "paste_over_starter":
            final = ed.files[f]
            for it in its:
                if it["kind"] == "replace" and it["old"] in final:
                    final = final.replace(it["old"], it["new"], 1)
                elif it["kind"] == "append":
                    final = final + ("" if final.endswith("\n") else "\n") + it["text"]
            S.goto(f, 0, op)

            def select_all(f=f):
                ed.sel = (0, len(ed.files[f]))
                ed.cur = len(ed.files[f])
                return [], True
            S.chord([S.env.primary], [("a", select_all, "typed")], op, pause=lognorm(rng, 500, 0.5))
            n = len(ed.files[f])
            ed.sel = None
            S.paste(f, 0, final, op, sel_len=n, origin=origin, via="keys")
            continue
        for it in its:
            t = ed.files[f]
            if it["kind"] == "replace":
                i = t.find(it["old"])
                if i >= 0:
                    S.paste(f, i, it["new"], op, sel_len=len(it["old"]), origin=origin)
            else:
                S.paste(f, len(t), ("" if t.endswith("\n") or not t else "\n") + it["text"], op, origin=origin)
            if variant == "few_chunk_pastes" and rng.random() < 0.5:
                S.tab_away(op, lognorm(rng, 25e3, 0.7))
    S.progress = 1.0
    S.code_run(op)
    if variant == "paste_then_retouch":
        for _ in range(rng.randint(1, 3)):
            S.refactor(op)
    if variant == "single_paste_new_file" and notes and rng.random() < 0.5:
        f = notes[0]["file"]
        if f not in ed.files:
            S.create_file(f, op)
        S.paste(f, 0, "".join(it["text"] for it in notes), op)
    else:
        for it in notes:
            if S.out():
                break
            S.do_item(it, op)
    S.fill_to_budget(op, frac=1.0)
    S.fill_to_budget(op, floor_only=True)
    S.finish(op)


def make_swap_hook(variant, rng, env, face):
    st = {"done": False, "back": False}
    at = rng.uniform(0.22, 0.55)
    back_at = rng.uniform(0.75, 0.9)

    def hook(S: Session, final=False):
        if not st["done"] and (S.keys >= S.budget * at or final):
            st["done"] = True
            t = S.t
            gap = rng.uniform(20e3, 120e3)
            far = 1e15
            S.meta["swap_t"] = t
            if variant == "visible_handover_two_faces":
                face.add(t, t + gap, "two_faces")
                face.add(t + gap, far, "impostor")
            elif variant == "lookalike_sibling":
                face.add(t, t + gap, "absent")
                m = face.m
                face.add(t + gap, far, "impostor", lift=(m["mu_g"] - m["mu_i"]) * rng.uniform(0.35, 0.6))
            elif variant == "camera_covered_after_swap":
                face.add(t, t + gap, "absent")
                face.add(t + gap, far, "covered", peek=rng.uniform(0.05, 0.25))
            elif variant == "printed_photo_spoof":
                face.add(t, t + gap, "absent")
                face.add(t + gap, far, "photo")
            else:
                face.add(t, t + gap, "absent")
                face.add(t + gap, far, "impostor")
            S.wait(gap + rng.uniform(2e3, 10e3))
            old = S.actor.name
            choices = [p for p, _ in HONEST_PROFILES if p not in (old, "no_camera_consent", "short_task_reader",
                                                                   "marathon", "privacy_browser_coarse_timer")]
            prof = rng.choice(choices)
            S.actor = Human(srng(S.sid, "friend"), prof, env)
            S.operator = S.actor
            S.meta["friend_profile"] = prof
            S.t_true = S.t
        if final and st["done"] and not st["back"]:
            # the friend keeps working (reading, testing) for a while: several checks see them
            need = st.setdefault("need", rng.uniform(6, 16) * 60e3)
            done = S.t - S.meta["swap_t"]
            if done < need:
                S.think(S.actor, need - done)
            return
        if (variant == "swap_and_return" and st["done"] and not st["back"]
              and (S.keys >= S.budget * back_at)):
            st["back"] = True
            t = S.t
            gap = rng.uniform(15e3, 60e3)
            # the candidate comes back: only the last interval changes
            a, b, k, p = face.intervals[-1]
            face.intervals[-1] = (a, t, k, p)
            face.add(t, t + gap, "absent")
            S.wait(gap)
            S.actor = S.meta["orig_actor"]
            S.operator = S.actor
            S.t_true = S.t
    return hook


# ---------------------------------------------------------------------------------------------
# One session, end to end
# ---------------------------------------------------------------------------------------------

CATALOGUE = {}


def load_catalogue(root: str):
    for slug in CONTENT:
        d = os.path.join(root, slug)
        with open(os.path.join(d, "assessment.json"), encoding="utf-8") as fh:
            spec = json.load(fh)
        files = []
        for p in spec["tasks"][0]["starter_files"]:
            with open(os.path.join(d, "starter", p), encoding="utf-8", newline="") as fh:
                files.append((p, fh.read()))
        CATALOGUE[slug] = dict(limit=spec.get("time_limit_minutes", 120), files=files,
                               units=[(p, to_units(c)) for p, c in files])


def started_at(rng) -> int:
    base = datetime(2026, 10, 5, tzinfo=timezone.utc)
    day = rng.randrange(0, 150)
    sec = rng.randrange(5 * 3600, 23 * 3600)
    return int((base + timedelta(days=day, seconds=sec)).timestamp()) * 1000


def build_session(seed, sid, cls, profile, slug, source=None, honest_pool=None):
    rng = srng(seed, sid, "plan")
    force = {}
    if cls == "honest":
        if profile == "privacy_browser_coarse_timer":
            force["browser"] = rng.choice(["firefox_rfp", "firefox_rfp", "firefox_rfp_old", "firefox_old_2ms"])
            force["os"] = rng.choice(["windows", "linux", "mac"])
        if profile == "non_native_english":
            force["layout"] = rng.choice(["de", "fr", "us_intl", "us_intl", "de"])
        if profile == "ime_cjk_comments":
            force["layout"] = "us"
    elif cls in ("constant_interval", "uniform_jitter", "iid_human_like", "humanized_bot"):
        if profile.startswith("ahk") or profile == "sendinput_bursts":
            force["os"] = "windows"
        elif profile.startswith("xdotool"):
            force["os"] = "linux"
    elif cls == "replayed_timing" and source is not None:
        if profile == "replay_other_browser":
            others = [b for b in ("chrome", "firefox", "safari", "firefox_rfp") if BROWSERS[b][0] != BROWSERS[source["browser"]][0]]
            force["browser"] = rng.choice(others)
        else:
            force["browser"] = source["browser"]
            force["os"] = source["os"]
    env = Env(srng(seed, sid, "env"), force)
    consent_face = profile != "no_camera_consent"
    face = Face(srng(seed, sid, "face"), pick_face_model(rng)) if consent_face else None
    budget = draw_budget(rng, profile if cls == "honest" else "")
    if cls == "whole_paste":
        budget = rng.randint(300, 900)
    if cls == "replayed_timing" and source is not None and profile != "replay_offset_start":
        budget = min(budget, max(KEY_FLOOR, len(source["keys"]) - 5))
    cat = CATALOGUE[slug]
    starter = dict(cat["units"])
    S = Session(sid, cls, profile, slug, seed, env, started_at(rng), budget, face, consent_face, starter)
    S.meta["cmd_style"] = 0 if rng.random() < 0.7 else 1
    S.hook = None
    canonical = cls != "honest" and cls != "face_swap"
    emoji = cls == "honest" and env.os != "linux" and rng.random() < 0.05
    ime = profile == "ime_cjk_comments"
    S.vars, S.items = plan_items(slug, rng, canonical, ime=ime, emoji=emoji)
    for it in S.items:
        for k in ("text", "new"):
            if k in it:
                it[k] = to_units(it[k])
    if cls == "honest" or cls == "face_swap":
        prof = profile if cls == "honest" else rng.choice(["average_laptop_typist", "fast_touch_typist",
                                                             "non_native_english", "pause_then_burst"])
        if prof in ("privacy_browser_coarse_timer", "no_camera_consent"):
            prof = "average_laptop_typist"
        S.actor = Human(srng(seed, sid, "typist"), prof, env)
        S.operator = S.actor
        S.B = behaviour(prof, rng)
        S.limit_ms = (cat["limit"] + (rng.choice([0, 0, 0, 15, 30]) if prof == "marathon" else 0)) * 60e3
        S.B["think_med"] = think_budget(S, prof, rng)
        if cls == "face_swap":
            S.meta["orig_actor"] = S.actor
            S.hook = make_swap_hook(profile, srng(seed, sid, "swap"), env, face)
            S.limit_ms = None
        drive_honest(S)
    elif cls == "transcription":
        base = {"printed_sheet_two_finger": "two_finger_typist", "fast_transcriber": "fast_touch_typist",
                "phone_chatgpt": rng.choice(["average_laptop_typist", "two_finger_typist"]),
                "second_monitor": rng.choice(["average_laptop_typist", "fast_touch_typist"]),
                "alt_tab_reader": "average_laptop_typist"}[profile]
        S.actor = Human(srng(seed, sid, "typist"), base, env, mode="transcribe")
        S.operator = S.actor
        S.B = behaviour("transcribe", rng)
        if profile == "alt_tab_reader":
            S.meta["tx_alt_tab"] = True
            S.B["p_line_lookup"] = 0.0
        if face is not None and profile in ("phone_chatgpt", "printed_sheet_two_finger", "second_monitor"):
            p = {"phone_chatgpt": 0.55, "printed_sheet_two_finger": 0.45, "second_monitor": 0.3}[profile]
            face.add(0, 1e15, "lookdown", p=p)
        drive_transcription(S, profile)
    elif cls == "whole_paste":
        S.actor = Human(srng(seed, sid, "typist"), rng.choice(["average_laptop_typist", "fast_touch_typist"]), env)
        S.operator = S.actor
        S.B = behaviour("operator", rng)
        drive_paste(S, profile)
    else:
        op = Human(srng(seed, sid, "operator"), "average_laptop_typist", env)
        S.operator = op
        S.B = behaviour("operator", rng)
        if cls == "replayed_timing":
            S.actor = Replayer(srng(seed, sid, "bot"), profile, source["keys"], env)
        else:
            pool = None
            if profile == "iid_bootstrap_own_typing" and honest_pool:
                pool = honest_pool[rng.randrange(len(honest_pool))]
            S.actor = Bot(srng(seed, sid, "bot"), cls, profile, env, pool=pool)
        drive_bot(S)
    return S


def source_summary(S: Session):
    """The keystroke timing of an honest session, for replays and bootstrap pools."""
    keys = []
    gaps = []
    holds = []
    off = 0.0
    prev = None
    for ts, d in S.tele.events:
        if d["type"] != "keystroke":
            continue
        down = d["down_ms"]
        if prev is not None:
            pdown, pts, poff = prev
            if down < pdown:
                off = pdown + poff + max(ts - pts, 1) - down
            else:
                gaps.append(down - pdown)
        h = (d["up_ms"] - down) if "up_ms" in d else None
        if h is not None:
            holds.append(h)
        keys.append((down + off, h))
        prev = (down, ts, off)
    return {"keys": keys, "browser": S.env.browser, "os": S.env.os, "gaps": gaps, "holds": holds}


def session_json(S: Session, source_id=None) -> str:
    obj = {
        "id": S.sid,
        "class": S.cls,
        "profile": S.profile,
        "assessment": S.slug,
        "source": source_id,
        "consent": {"keystroke_dynamics": True, "face_continuity": S.face is not None},
        "started_at": iso_ms(S.tele.start_ms)[:-5] + "Z",
        "starter_files": [{"path": p, "content": c} for p, c in CATALOGUE[S.slug]["files"]],
        "events": [{"seq": i, "ts": iso_ms(ts), "data": d} for i, (ts, d) in enumerate(S.tele.events, 1)],
    }
    return json.dumps(obj, ensure_ascii=True, separators=(",", ":"))


def allocate(weights, total):
    s = sum(w for _, w in weights)
    raw = [(n, w * total / s) for n, w in weights]
    base = [(n, int(x)) for n, x in raw]
    left = total - sum(c for _, c in base)
    rema = sorted(range(len(raw)), key=lambda i: -(raw[i][1] - int(raw[i][1])))
    out = dict(base)
    for i in rema[:left]:
        out[raw[i][0]] += 1
    return out


def generate(seed: int, out: str, per_class: int, quiet=False):
    os.makedirs(out, exist_ok=True)
    plan = srng(seed, "corpus-plan")
    slugs = sorted(CONTENT)
    path = os.path.join(out, "sessions.jsonl")
    honest_sources = []
    honest_pool = []
    stats = []
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for cls in CLASSES:
            if cls == "honest":
                alloc = allocate(HONEST_PROFILES, 4 * per_class)
                profiles = [p for p, _ in HONEST_PROFILES for _ in range(alloc[p])]
            else:
                vs = VARIANTS[cls]
                profiles = [vs[i % len(vs)] for i in range(per_class)]
            plan.shuffle(profiles)
            assess = [slugs[i % len(slugs)] for i in range(len(profiles))]
            plan.shuffle(assess)
            for i, (prof, slug) in enumerate(zip(profiles, assess), 1):
                sid = f"{GEN}-{cls}-{i:04d}"
                source = None
                source_id = None
                if cls == "replayed_timing":
                    cands = [s for s in honest_sources if len(s["keys"]) >= 600] or honest_sources
                    src = cands[plan.randrange(len(cands))]
                    source, source_id = src, src["id"]
                    if slug == src["slug"]:
                        slug = slugs[(slugs.index(slug) + 1 + plan.randrange(len(slugs) - 1)) % len(slugs)]
                t0 = time.time()
                try:
                    S = build_session(seed, sid, cls, prof, slug, source=source, honest_pool=honest_pool)
                except StopSession:
                    raise
                line = session_json(S, source_id)
                fh.write(line + "\n")
                if cls == "honest":
                    summ = source_summary(S)
                    summ["id"] = sid
                    summ["slug"] = slug
                    honest_sources.append(summ)
                    honest_pool.append((summ["gaps"], summ["holds"]))
                stats.append((cls, prof, S.keys, len(S.tele.events), len(line), time.time() - t0))
                if not quiet and len(stats) % 40 == 0:
                    print(f"  {len(stats)} sessions ...", file=sys.stderr)
    with open(os.path.join(out, "face_models.json"), "w", encoding="utf-8", newline="\n") as fh:
        json.dump(calibration(seed), fh, separators=(",", ":"))
        fh.write("\n")
    here = os.path.dirname(os.path.abspath(__file__))
    readme = os.path.join(here, "README.md")
    if os.path.exists(readme):
        with open(readme, encoding="utf-8") as src, open(os.path.join(out, "README.md"), "w", encoding="utf-8", newline="\n") as dst:
            dst.write(src.read())
    return stats


def main(argv=None):
    ap = argparse.ArgumentParser(description="g2 (field): labelled Clarity candidate sessions")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--per-class", type=int, default=40)
    ap.add_argument("--catalogue", default=None, help="path to catalogue/ (default: found from this file)")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    root = a.catalogue
    if root is None:
        here = os.path.dirname(os.path.abspath(__file__))
        root = os.path.normpath(os.path.join(here, "..", "..", "..", "..", "catalogue"))
    load_catalogue(root)
    t0 = time.time()
    stats = generate(a.seed, a.out, a.per_class, a.quiet)
    if not a.quiet:
        size = os.path.getsize(os.path.join(a.out, "sessions.jsonl"))
        print(f"{len(stats)} sessions, {sum(s[2] for s in stats)} key presses, {size / 1e6:.1f} MB, "
              f"{time.time() - t0:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
