#!/usr/bin/env python3
"""g1 ("lab"): labelled candidate sessions for Clarity's integrity detectors, modelled on the
keystroke-dynamics and writing-process literature (see README.md), written without knowledge of
the detectors.

    python3 generate.py --seed 1 --out /tmp/g1-corpus [--per-class 40] [--check]

Python 3.11 standard library only; the same arguments give the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import re
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

GEN = "g1"
HERE = Path(__file__).resolve().parent
DEFAULT_CATALOGUE = HERE.parents[3] / "catalogue"

# ---------------------------------------------------------------------------------------------
# Content: what candidates write, per assessment.
#
# Each assessment has work items in the order a candidate would plausibly do them. An item is
#   {"op": "edit", "file", "old", "new"}  replace `old` (unique in the file) by `new`; the writer
#                                         edits only the part that differs, like a person would;
#   {"op": "new", "file", "text"}         create the file and type it;
#   {"op": "notes", "file", ...}          a Markdown document assembled from a sentence pool.
# Text may hold alternatives, chosen once per session: ⟪a¦b¦c⟫, named (reused) ⟪@name¦a¦b⟫ and
# ⟪@name⟫. Go text is written with four spaces and turned into tabs.
# ---------------------------------------------------------------------------------------------

BUG_HUNT = {
    "run": ("python3 -m unittest discover -s tests -v", (1200, 5200), 8),
    "items": [
        {"id": "pages", "short": True, "op": "edit", "file": "invoices/listing.py",
         "old": "    total_pages = max(total // PAGE_SIZE, 1)\n",
         "new": "    ⟪# round up: 47 invoices are three pages, not two\n¦# ceil division, the last page may be partial\n¦⟫"
                "    total_pages = max(⟪-(-total // PAGE_SIZE)¦(total + PAGE_SIZE - 1) // PAGE_SIZE⟫, 1)\n"},
        {"id": "tz-import", "op": "edit", "file": "invoices/listing.py",
         "old": "from datetime import date, datetime\n",
         "new": "from datetime import date, datetime, timezone\nfrom zoneinfo import ZoneInfo\n"},
        {"id": "overdue", "short": True, "op": "edit", "file": "invoices/listing.py",
         "old": "def is_overdue(invoice: Invoice) -> bool:\n"
                "    return invoice.status == \"open\" and datetime.utcnow().date() > invoice.due_date\n",
         "new": "def is_overdue(invoice: Invoice, account: Account, now: datetime | None = None) -> bool:\n"
                "    ⟪# due_date is payable until the end of that day in the account's own time zone¦# \"due\" means the end of the due date where the customer is, not in UTC¦# compare dates in the account's zone, utcnow() flips at 4/5pm on the US west coast⟫\n"
                "    if invoice.status != \"open\":\n"
                "        return False\n"
                "    ⟪@now¦now¦now_utc⟫ = now or datetime.now(timezone.utc)\n"
                "    ⟪@today¦local_today¦today¦today_there⟫ = ⟪@now⟫.astimezone(ZoneInfo(account.timezone)).date()\n"
                "    return ⟪@today⟫ > invoice.due_date\n"},
        {"id": "overdue-call1", "op": "edit", "file": "invoices/listing.py",
         "old": "        \"overdue\": is_overdue(invoice),\n",
         "new": "        \"overdue\": is_overdue(invoice, account),\n"},
        {"id": "overdue-call2", "op": "edit", "file": "invoices/listing.py",
         "old": "            if not is_overdue(invoice):\n",
         "new": "            if not is_overdue(invoice, account):\n"},
        {"id": "payment", "op": "edit", "file": "invoices/payments.py",
         "old": "    already = db.execute(\n"
                "        \"SELECT 1 FROM payments WHERE provider_ref = %s\", (provider_ref,)\n"
                "    ).fetchone()\n"
                "    if already:\n"
                "        return\n"
                "\n"
                "    invoice = db.execute(\n"
                "        \"SELECT balance_cents, status FROM invoices WHERE id = %s\", (invoice_id,)\n"
                "    ).fetchone()\n"
                "    if invoice is None:\n"
                "        raise LookupError(f\"invoice {invoice_id} not found\")\n"
                "\n"
                "    db.execute(\n"
                "        \"INSERT INTO payments (invoice_id, amount_cents, provider_ref, received_at)\"\n"
                "        \" VALUES (%s, %s, %s, now())\",\n"
                "        (invoice_id, amount_cents, provider_ref),\n"
                "    )\n"
                "\n"
                "    balance = invoice.balance_cents - amount_cents\n"
                "    db.execute(\n"
                "        \"UPDATE invoices SET balance_cents = %s, status = %s WHERE id = %s\",\n"
                "        (balance, \"paid\" if balance <= 0 else \"open\", invoice_id),\n"
                "    )\n",
         "new": "    ⟪# one transaction: a crash between the insert and the update used to leave the payment\n    # recorded and the invoice open, and the retry then returned early.\n¦# autocommit made the insert visible before the balance update (SUP-1207), and the\n    # read-modify-write lost one of two concurrent part payments.\n¦⟫"
                "    with db.transaction():\n"
                "        invoice = db.execute(\n"
                "            \"SELECT balance_cents, status FROM invoices WHERE id = %s FOR UPDATE\",\n"
                "            (invoice_id,),\n"
                "        ).fetchone()\n"
                "        if invoice is None:\n"
                "            raise LookupError(f\"invoice {invoice_id} not found\")\n"
                "        ⟪@ins¦inserted¦new_payment¦created⟫ = db.execute(\n"
                "            \"INSERT INTO payments (invoice_id, amount_cents, provider_ref, received_at)\"\n"
                "            \" VALUES (%s, %s, %s, now())\"\n"
                "            \" ON CONFLICT (provider_ref) DO NOTHING\",\n"
                "            (invoice_id, amount_cents, provider_ref),\n"
                "        ).rowcount\n"
                "        if not ⟪@ins⟫:\n"
                "            return  # already applied\n"
                "        db.execute(\n"
                "            \"UPDATE invoices SET balance_cents = balance_cents - %s,\"\n"
                "            \" status = CASE WHEN balance_cents - %s <= 0 THEN 'paid' ELSE status END\"\n"
                "            \" WHERE id = %s\",\n"
                "            (amount_cents, amount_cents, invoice_id),\n"
                "        )\n"},
        {"id": "fx-import", "op": "edit", "file": "invoices/fx.py",
         "old": "import json\nimport time\n",
         "new": "import json\nimport threading\nimport time\n"},
        {"id": "fx-lock", "op": "edit", "file": "invoices/fx.py",
         "old": "        self._fetched_at: float | None = None\n",
         "new": "        self._fetched_at: float | None = None\n        self._lock = threading.Lock()\n"},
        {"id": "fx-refresh", "short": True, "op": "edit", "file": "invoices/fx.py",
         "old": "        # Mark the table fresh first so that concurrent requests don't all call the FX service.\n"
                "        self._fetched_at = now\n"
                "        self._rates.clear()\n"
                "        self._rates.update(self._fetch())\n",
         "new": "        with self._lock:\n"
                "            if self._fetched_at is not None and now - self._fetched_at < self._ttl:\n"
                "                return  # ⟪another thread refreshed it¦someone else got here first⟫\n"
                "            try:\n"
                "                ⟪@fresh¦fresh¦table¦new_rates⟫ = self._fetch()\n"
                "            except Exception:\n"
                "                if not self._rates:\n"
                "                    raise\n"
                "                ⟪# keep serving the old table and retry in a minute¦# FX is down: stale rates beat a KeyError, try again soon⟫\n"
                "                self._fetched_at = now - self._ttl + 60\n"
                "                return\n"
                "            # swap the whole table, never clear() it under readers\n"
                "            self._rates = ⟪@fresh⟫\n"
                "            self._fetched_at = now\n"},
        {"id": "tests", "op": "new", "file": "tests/test_defects.py", "kind": "test",
         "text": "\"\"\"⟪Regression tests for the defects in FINDINGS.md.¦One test per defect, each fails on the shipped code.⟫\"\"\"\n"
                 "\n"
                 "import unittest\n"
                 "from datetime import date, datetime, timezone\n"
                 "from decimal import Decimal\n"
                 "from unittest import mock\n"
                 "\n"
                 "from invoices.fx import RateCache\n"
                 "from invoices.listing import Account, Invoice, is_overdue\n"
                 "\n"
                 "\n"
                 "def ⟪@mk¦make_invoice¦an_invoice¦invoice⟫(**overrides):\n"
                 "    fields = dict(id=1, number=\"INV-00001\", customer_name=\"Acme\", currency=\"USD\",\n"
                 "                  amount_cents=10000, balance_cents=10000, due_date=date(2025, 3, 20),\n"
                 "                  status=\"open\", late_fee_applied=False)\n"
                 "    fields.update(overrides)\n"
                 "    return Invoice(**fields)\n"
                 "\n"
                 "\n"
                 "class ⟪OverdueUsesAccountTimeZone¦IsOverdueTests¦SUP1201Tests⟫(unittest.TestCase):\n"
                 "    LA = Account(8830, \"Sunset Pilates\", \"owner@example.com\", \"America/Los_Angeles\", \"USD\")\n"
                 "\n"
                 "    def test_not_overdue_on_the_evening_of_the_due_date(self):\n"
                 "        # 17:12 in Los Angeles on the due date is already the next day in UTC\n"
                 "        now = datetime(2025, 3, 21, 0, 12, tzinfo=timezone.utc)\n"
                 "        self.assertFalse(is_overdue(⟪@mk⟫(), self.LA, now))\n"
                 "\n"
                 "    def test_overdue_the_next_morning(self):\n"
                 "        now = datetime(2025, 3, 21, 16, 0, tzinfo=timezone.utc)\n"
                 "        self.assertTrue(is_overdue(⟪@mk⟫(), self.LA, now))\n"
                 "\n"
                 "    def test_paid_invoice_is_never_overdue(self):\n"
                 "        now = datetime(2025, 4, 1, tzinfo=timezone.utc)\n"
                 "        self.assertFalse(is_overdue(⟪@mk⟫(status=\"paid\"), self.LA, now))\n"
                 "\n"
                 "\n"
                 "class RateCacheTests(unittest.TestCase):\n"
                 "    def test_failed_refresh_keeps_the_old_rates(self):\n"
                 "        clock = mock.Mock(return_value=0.0)\n"
                 "        fetch = mock.Mock(return_value={\"EUR\": Decimal(1), \"USD\": Decimal(\"1.08\")})\n"
                 "        cache = RateCache(fetch=fetch, ttl_seconds=300, clock=clock)\n"
                 "        self.assertEqual(cache.rate(\"USD\"), Decimal(\"1.08\"))\n"
                 "        clock.return_value = 301.0\n"
                 "        fetch.side_effect = TimeoutError(\"fx timed out\")\n"
                 "        self.assertEqual(cache.rate(\"USD\"), Decimal(\"1.08\"))\n"
                 "\n"
                 "    def test_readers_never_see_an_empty_table(self):\n"
                 "        ⟪@seen¦seen¦errors⟫ = []\n"
                 "        def slow_fetch():\n"
                 "            ⟪@seen⟫.append(len(cache._rates))\n"
                 "            return {\"EUR\": Decimal(1), \"USD\": Decimal(\"1.09\")}\n"
                 "        cache = RateCache(fetch=slow_fetch, ttl_seconds=0)\n"
                 "        cache.rate(\"USD\")\n"
                 "        cache.rate(\"USD\")\n"
                 "        self.assertEqual(⟪@seen⟫[1:], [2])\n"
                 "\n"
                 "\n"
                 "if __name__ == \"__main__\":\n"
                 "    unittest.main()\n"},
    ],
    "notes": {
        "file": "FINDINGS.md",
        "title": "# ⟪Findings¦FINDINGS¦Ledgerline invoices: findings⟫",
        "sections": [
            ("## 1. ⟪Part payments and webhook retries lose money (SUP-1207)¦Payments not applied (SUP-1207)⟫", [
                "`record_payment` in `invoices/payments.py` inserts the payment and updates the invoice in two autocommit statements.",
                "If the process dies between them, the payment row exists and the retry returns early at the `already` check, so the invoice stays open ⟪forever¦with its full balance⟫.",
                "Two part payments at the same minute both read the same balance and the second update overwrites the first: a lost update.",
                "Fix: one transaction, lock the invoice row with `FOR UPDATE`, insert with `ON CONFLICT (provider_ref) DO NOTHING` and subtract in SQL.",
                "Impact: money. Customers are chased for invoices they paid and get late fees on top.",
                "To find affected customers: invoices with status open where the sum of payments is at least the amount, and payments received within a minute of each other for the same invoice.",
            ]),
            ("## 2. ⟪Overdue a day early on the US west coast (SUP-1201)¦Late fees before the due date (SUP-1201)⟫", [
                "`is_overdue` compares `datetime.utcnow().date()` with the due date, but the due date is a calendar day in the account's time zone.",
                "For Los Angeles the UTC date changes at 4 or 5 pm, so the hourly job adds the fee in the afternoon of the due date.",
                "Europe is ahead of UTC so it never happens there, which matches the tickets.",
                "Fix: convert now to the account's zone with `ZoneInfo(account.timezone)` before taking the date.",
                "Impact: money and trust, a $15 fee charged wrongly; refund the fees.",
                "Query: late_fee_applied invoices whose fee was added before the end of the due date in the account's zone (needs the reminder log or the audit table).",
            ]),
            ("## 3. ⟪KeyError after an FX refresh (SUP-1212)¦Intermittent KeyError: 'USD' (SUP-1212)⟫", [
                "`RateCache._refresh_if_stale` clears the shared dict before fetching, so other threads read an empty table for the length of the HTTP call.",
                "When the fetch raises, `_fetched_at` was already set, so the table stays empty for the whole TTL: five minutes of errors, as on 11 March.",
                "Fix: fetch first, then swap in the new dict under a lock, and keep the old table if the fetch fails.",
                "Impact: availability, error pages for accounts with a different display currency.",
            ]),
            ("## 4. ⟪Missing last page (SUP-1184)¦Pagination drops the last partial page (SUP-1184)⟫", [
                "`total_pages = max(total // PAGE_SIZE, 1)` rounds down, so 47 invoices give two pages and page 3 answers 404.",
                "With exactly 60 invoices it works, which is why only some customers noticed.",
                "Fix: round up. Impact: annoyance, the invoices are still there.",
            ]),
            ("## Other things I noticed", [
                "The reminder job loads every active account and then every invoice one account at a time; fine now, slow later.",
                "`serialize` converts with a shared cache that is not thread safe in other ways either.",
                "There is no index on `payments.provider_ref` unless the unique constraint is added; the ON CONFLICT needs it.",
                "I did not have time to look at the signing code in detail.",
            ]),
        ],
    },
}

ASYNC_QUEUE = {
    "run": ("python3 -m unittest discover -s tests -v", (2500, 14000), 4),
    "items": [
        {"id": "schema", "short": True, "op": "edit", "file": "jobqueue/schema.sql",
         "old": "    created_at timestamptz NOT NULL DEFAULT now()\n"
                "    -- TODO: state, attempts, lease, last error, dedupe key, finished_at, ...\n",
         "new": "    created_at timestamptz NOT NULL DEFAULT now(),\n"
                "    state      text        NOT NULL DEFAULT 'pending'\n"
                "               CHECK (state IN ('pending', 'running', 'succeeded', 'dead')),\n"
                "    attempts   integer     NOT NULL DEFAULT 0,\n"
                "    ⟪@lease¦locked_until¦lease_until¦lease_expires_at⟫ timestamptz,\n"
                "    ⟪@owner¦locked_by¦worker_id⟫ text,\n"
                "    last_error text,\n"
                "    dedupe_key text,\n"
                "    finished_at timestamptz\n"},
        {"id": "indexes", "op": "edit", "file": "jobqueue/schema.sql",
         "old": "-- TODO: indexes for claiming and for deduplication.\n",
         "new": "-- claim order: priority first, then run_at; only rows that can still be claimed\n"
                "CREATE INDEX jobs_claim_idx ON jobs (priority DESC, run_at)\n"
                "    WHERE state IN ('pending', 'running');\n"
                "\n"
                "-- a dedupe key is unique among jobs that have not finished\n"
                "CREATE UNIQUE INDEX jobs_dedupe_idx ON jobs (dedupe_key)\n"
                "    WHERE dedupe_key IS NOT NULL AND state IN ('pending', 'running');\n"},
        {"id": "retry", "short": True, "op": "edit", "file": "jobqueue/worker.py",
         "old": "    TODO: exponential from config.backoff_base, capped at config.backoff_cap, with jitter.\n"
                "    \"\"\"\n"
                "    raise NotImplementedError\n",
         "new": "    Full jitter: uniform between zero and min(cap, base * 2 ** (attempt - 1)).\n"
                "    \"\"\"\n"
                "    rng = rng or random\n"
                "    ⟪@ceil¦ceiling¦upper¦limit⟫ = min(\n"
                "        config.backoff_cap.total_seconds(),\n"
                "        config.backoff_base.total_seconds() * 2 ** (attempt - 1),\n"
                "    )\n"
                "    return timedelta(seconds=rng.uniform(⟪0¦⟪@ceil⟫ / 2⟫, ⟪@ceil⟫))\n"},
        {"id": "enqueue", "op": "edit", "file": "jobqueue/worker.py",
         "old": "        still pending or running, returns that job's id instead.\"\"\"\n"
                "        raise NotImplementedError  # TODO\n",
         "new": "        still pending or running, returns that job's id instead.\"\"\"\n"
                "        import json\n"
                "\n"
                "        ⟪@row¦row¦rec¦result⟫ = await self._pool.fetchrow(\n"
                "            \"\"\"\n"
                "            INSERT INTO jobs (kind, payload, dedupe_key, run_at, priority)\n"
                "            VALUES ($1, $2::jsonb, $3, coalesce($4, now()), $5)\n"
                "            ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL\n"
                "                AND state IN ('pending', 'running') DO NOTHING\n"
                "            RETURNING id\n"
                "            \"\"\",\n"
                "            kind, json.dumps(payload), dedupe_key, run_at, priority,\n"
                "        )\n"
                "        if ⟪@row⟫ is not None:\n"
                "            return ⟪@row⟫[\"id\"]\n"
                "        ⟪# lost the race to an existing job with the same key¦# the key is taken: return the job that holds it⟫\n"
                "        existing = await self._pool.fetchval(\n"
                "            \"SELECT id FROM jobs WHERE dedupe_key = $1 AND state IN ('pending', 'running')\",\n"
                "            dedupe_key,\n"
                "        )\n"
                "        if existing is None:\n"
                "            return await self.enqueue(kind, payload, dedupe_key=dedupe_key,\n"
                "                                      run_at=run_at, priority=priority)\n"
                "        return existing\n"},
        {"id": "get", "op": "edit", "file": "jobqueue/worker.py",
         "old": "        \"\"\"The job's current state, or None if there is no such job.\"\"\"\n"
                "        raise NotImplementedError  # TODO\n",
         "new": "        \"\"\"The job's current state, or None if there is no such job.\"\"\"\n"
                "        row = await self._pool.fetchrow(\n"
                "            \"SELECT id, kind, state, attempts, last_error, priority, run_at\"\n"
                "            \" FROM jobs WHERE id = $1\",\n"
                "            job_id,\n"
                "        )\n"
                "        return None if row is None else JobInfo(**dict(row))\n"},
        {"id": "run", "op": "edit", "file": "jobqueue/worker.py",
         "old": "        run, record success, retry or death, and drain on shutdown.\n"
                "        \"\"\"\n"
                "        raise NotImplementedError\n",
         "new": "        run, record success, retry or death, and drain on shutdown.\n"
                "        \"\"\"\n"
                "        ⟪@running¦running¦tasks¦in_flight⟫: set[asyncio.Task] = set()\n"
                "        while not self._stopping.is_set():\n"
                "            free = self._config.concurrency - len(⟪@running⟫)\n"
                "            jobs = await self._claim(free) if free > 0 else []\n"
                "            for job in jobs:\n"
                "                task = asyncio.create_task(self._execute(job))\n"
                "                ⟪@running⟫.add(task)\n"
                "                task.add_done_callback(⟪@running⟫.discard)\n"
                "            if not jobs:\n"
                "                try:\n"
                "                    await asyncio.wait_for(\n"
                "                        self._stopping.wait(), self._config.poll_interval.total_seconds()\n"
                "                    )\n"
                "                except TimeoutError:\n"
                "                    pass\n"
                "        if ⟪@running⟫:\n"
                "            done, pending = await asyncio.wait(\n"
                "                ⟪@running⟫, timeout=self._config.shutdown_grace.total_seconds()\n"
                "            )\n"
                "            for task in pending:\n"
                "                task.cancel()\n"
                "            await asyncio.gather(*pending, return_exceptions=True)\n"
                "\n"
                "    async def _claim(self, limit: int) -> list[Job]:\n"
                "        # SKIP LOCKED: concurrent workers never block on, or claim, the same row\n"
                "        rows = await self._pool.fetch(\n"
                "            \"\"\"\n"
                "            UPDATE jobs SET state = 'running', attempts = attempts + 1,\n"
                "                   ⟪@lease⟫ = now() + $2::interval\n"
                "            WHERE id IN (\n"
                "                SELECT id FROM jobs\n"
                "                WHERE (state = 'pending' AND run_at <= now())\n"
                "                   OR (state = 'running' AND ⟪@lease⟫ < now())\n"
                "                ORDER BY priority DESC, run_at\n"
                "                LIMIT $1\n"
                "                FOR UPDATE SKIP LOCKED\n"
                "            )\n"
                "            RETURNING id, kind, payload, attempts\n"
                "            \"\"\",\n"
                "            limit, self._config.lease,\n"
                "        )\n"
                "        return [Job(r[\"id\"], r[\"kind\"], r[\"payload\"], r[\"attempts\"]) for r in rows]\n"
                "\n"
                "    async def _execute(self, job: Job) -> None:\n"
                "        ⟪@hb¦heartbeat¦keeper¦extender⟫ = asyncio.create_task(self._extend_lease(job.id))\n"
                "        try:\n"
                "            await self._handlers[job.kind](job)\n"
                "        except asyncio.CancelledError:\n"
                "            await self._pool.execute(\n"
                "                \"UPDATE jobs SET state = 'pending', ⟪@lease⟫ = NULL, attempts = attempts - 1\"\n"
                "                \" WHERE id = $1 AND state = 'running'\", job.id)\n"
                "            raise\n"
                "        except PermanentError as exc:\n"
                "            await self._finish(job, 'dead', repr(exc))\n"
                "        except Exception as exc:\n"
                "            if job.attempt >= self._config.max_attempts:\n"
                "                await self._finish(job, 'dead', repr(exc))\n"
                "            else:\n"
                "                delay = retry_delay(job.attempt, self._config)\n"
                "                await self._pool.execute(\n"
                "                    \"UPDATE jobs SET state = 'pending', run_at = now() + $2::interval,\"\n"
                "                    \" last_error = $3, ⟪@lease⟫ = NULL WHERE id = $1\",\n"
                "                    job.id, delay, repr(exc))\n"
                "        else:\n"
                "            await self._finish(job, 'succeeded', None)\n"
                "        finally:\n"
                "            ⟪@hb⟫.cancel()\n"
                "\n"
                "    async def _finish(self, job: Job, state: str, error: str | None) -> None:\n"
                "        await self._pool.execute(\n"
                "            \"UPDATE jobs SET state = $2, last_error = coalesce($3, last_error),\"\n"
                "            \" finished_at = now(), ⟪@lease⟫ = NULL WHERE id = $1\",\n"
                "            job.id, state, error)\n"
                "\n"
                "    async def _extend_lease(self, job_id: int) -> None:\n"
                "        while True:\n"
                "            await asyncio.sleep(self._config.lease.total_seconds() / 3)\n"
                "            await self._pool.execute(\n"
                "                \"UPDATE jobs SET ⟪@lease⟫ = now() + $2::interval WHERE id = $1 AND state = 'running'\",\n"
                "                job_id, self._config.lease)\n"},
        {"id": "handler", "short": True, "op": "edit", "file": "jobqueue/handlers.py",
         "old": "        key = f\"thumbnails/{document_id}/{uuid.uuid4()}.jpg\"\n",
         "new": "        ⟪# deterministic key: a second run overwrites the same object¦# same key on every attempt, so a rerun after a crash does not leak objects⟫\n"
                "        key = f\"thumbnails/{document_id}/{THUMBNAIL_WIDTH}.jpg\"\n"},
        {"id": "handler-sql", "op": "edit", "file": "jobqueue/handlers.py",
         "old": "            \" VALUES ($1, $2, $3)\",\n",
         "new": "            \" VALUES ($1, $2, $3)\"\n"
                "            \" ON CONFLICT (document_id, width) DO NOTHING\",\n"},
        {"id": "kill-test", "op": "edit", "file": "tests/test_worker.py", "kind": "test",
         "old": "    @unittest.skip(\"TODO: run a worker in a subprocess, SIGKILL it mid-job, show the job completes\")\n"
                "    async def test_a_job_survives_its_worker_being_killed(self):\n"
                "        ...\n",
         "new": "    async def test_a_job_survives_its_worker_being_killed(self):\n"
                "        import subprocess, sys, signal\n"
                "        queue = Queue(self.pool)\n"
                "        job_id = await queue.enqueue(\"sleepy\", {\"seconds\": 30})\n"
                "        ⟪@proc¦proc¦child¦victim⟫ = subprocess.Popen(\n"
                "            [sys.executable, \"-m\", \"tests.sleepy_worker\", self.schema],\n"
                "        )\n"
                "        await asyncio.sleep(1.0)\n"
                "        ⟪@proc⟫.send_signal(signal.SIGKILL)\n"
                "        ⟪@proc⟫.wait()\n"
                "\n"
                "        done: list[int] = []\n"
                "\n"
                "        async def sleepy(job: Job) -> None:\n"
                "            done.append(job.attempt)\n"
                "\n"
                "        worker = Worker(self.pool, {\"sleepy\": sleepy}, FAST)\n"
                "        running = asyncio.create_task(worker.run())\n"
                "        await wait_until(lambda: done, timeout=10)\n"
                "        worker.stop()\n"
                "        await running\n"
                "        info = await queue.get(job_id)\n"
                "        self.assertEqual(info.state, \"succeeded\")\n"
                "        self.assertEqual(done, [2])\n"},
    ],
    "notes": {
        "file": "NOTES.md",
        "title": "# ⟪Notes¦NOTES¦Job queue notes⟫",
        "sections": [
            ("## Claim query", [
                "Workers claim with `UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED LIMIT n)`.",
                "SKIP LOCKED means two workers never wait on each other and never get the same row: the row lock is held until the UPDATE commits, and the second worker skips it.",
                "A running job whose lease has run out is claimable again, so a dead worker's jobs come back after at most one lease.",
                "The lease is extended every third of its length while the handler runs.",
            ]),
            ("## State machine", [
                "pending -> running on claim, running -> succeeded, running -> pending with a later run_at on a transient error, running -> dead after max_attempts or a permanent error.",
                "running -> running again when the lease expires and another worker claims it; attempts counts runs started.",
                "On shutdown, cancelled jobs go back to pending with the lease cleared and the attempt given back, so another worker can start them at once.",
            ]),
            ("## Failure points", [
                "Crash before commit of the claim: nothing happened. Crash during the handler: the lease runs out and the job runs again.",
                "Crash after the handler but before recording success: the job runs twice, which is why handlers must be idempotent.",
                "Database unavailable: the claim loop logs and retries after the poll interval.",
            ]),
            ("## At least once", [
                "A handler can run again after partly succeeding. `make_thumbnail` now writes to a key derived from the document and width and inserts with ON CONFLICT, so a rerun overwrites instead of leaking objects and rows.",
                "Handlers with external side effects should pass an idempotency key derived from the job id.",
            ]),
            ("## Bloat at 200 jobs/s", [
                "About 17 million rows a day. Finished jobs are deleted in batches after a retention period, or the table is partitioned by day so old partitions are dropped.",
                "The claim index is partial on pending and running rows, so it stays small; autovacuum needs more aggressive settings on this table (scale factor near zero, a cost limit that keeps up).",
                "Updates keep HOT where possible: the lease column is not indexed.",
            ]),
            ("## Monitoring", [
                "Queue depth per kind and priority, age of the oldest pending job, claim latency, jobs going dead per hour, lease expiries (a sign of dead or stuck workers), and table and index size with dead tuples.",
            ]),
        ],
    },
}

DB_OPT = {
    "run": ("python3 tests/run_tests.py", (4000, 16000), 6),
    "items": [
        {"id": "mig-idx", "short": True, "op": "edit", "file": "migration.sql",
         "old": "-- time: a rerun after a failure part-way must succeed and change nothing.\n",
         "new": "-- time: a rerun after a failure part-way must succeed and change nothing.\n"
                "\n"
                "-- CONCURRENTLY cannot run inside a transaction: psql autocommit runs each statement alone.\n"
                "-- If a build fails it leaves an INVALID index; drop it and rerun.\n"
                "SET lock_timeout = '2s';\n"
                "\n"
                "-- #1 my orders: equality on customer, then the sort order, so the index gives the order\n"
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS ⟪@oi¦orders_customer_created_idx¦orders_customer_history_idx⟫\n"
                "    ON orders (customer_id, created_at DESC, id DESC);\n"},
        {"id": "mig-rest", "op": "append", "file": "migration.sql",
         "text": "\n"
                 "-- #2 revenue: order lines by product, and products by merchant\n"
                 "CREATE INDEX CONCURRENTLY IF NOT EXISTS order_items_product_idx\n"
                 "    ON order_items (product_id, order_id);\n"
                 "CREATE INDEX CONCURRENTLY IF NOT EXISTS products_merchant_idx\n"
                 "    ON products (merchant_id) INCLUDE (id);\n"
                 "\n"
                 "-- #3 login: lower(email), matching the query's expression\n"
                 "CREATE INDEX CONCURRENTLY IF NOT EXISTS customers_lower_email_idx\n"
                 "    ON customers (lower(email));\n"
                 "\n"
                 "-- ⟪status has six values, the planner never uses this index for <> 'cancelled'¦orders_status_idx is not selective and costs every update of status⟫\n"
                 "DROP INDEX CONCURRENTLY IF EXISTS orders_status_idx;\n"
                 "\n"
                 "-- Money: add numeric columns now; backfill in batches of 10k ids, outside a transaction,\n"
                 "-- then switch reads in a later deploy. No ALTER COLUMN TYPE: it rewrites the table.\n"
                 "ALTER TABLE orders ADD COLUMN IF NOT EXISTS total_amount_exact numeric(12, 2);\n"
                 "ALTER TABLE order_items ADD COLUMN IF NOT EXISTS unit_price_exact numeric(12, 2);\n"
                 "ALTER TABLE products ADD COLUMN IF NOT EXISTS unit_price_exact numeric(12, 2);\n"
                 "\n"
                 "RESET lock_timeout;\n"},
        {"id": "my-orders", "short": True, "op": "edit", "file": "queries.sql",
         "old": "PREPARE my_orders(bigint, timestamptz, bigint) AS\n"
                "SELECT *\n"
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
                "LIMIT 20;\n",
         "new": "PREPARE my_orders(bigint, timestamptz, bigint) AS\n"
                "SELECT o.id, o.created_at, o.status, o.total_amount, o.currency, items.item_count\n"
                "FROM orders o\n"
                "CROSS JOIN LATERAL (\n"
                "    SELECT count(*) AS item_count FROM order_items oi WHERE oi.order_id = o.id\n"
                ") items\n"
                "WHERE o.customer_id = $1\n"
                "  AND o.status <> 'cancelled'\n"
                "  AND ($2::timestamptz IS NULL OR (o.created_at, o.id) < ($2, $3))\n"
                "  AND items.item_count > 0\n"
                "ORDER BY o.created_at DESC, o.id DESC\n"
                "LIMIT 20;\n"},
        {"id": "revenue", "op": "edit", "file": "queries.sql",
         "old": "FROM order_items oi\n"
                "JOIN products p ON p.id = oi.product_id\n"
                "JOIN orders o   ON o.id = oi.order_id\n"
                "WHERE p.merchant_id = $1\n",
         "new": "FROM products p\n"
                "JOIN order_items oi ON oi.product_id = p.id\n"
                "JOIN orders o       ON o.id = oi.order_id\n"
                "WHERE p.merchant_id = $1\n"},
        {"id": "email", "op": "edit", "file": "queries.sql",
         "old": "WHERE lower(email) = lower($1);\n",
         "new": "WHERE lower(email) = lower($1)  -- ⟪served by customers_lower_email_idx¦uses the new expression index⟫\n"
                "ORDER BY id\n"
                "LIMIT 1;\n"},
    ],
    "notes": {
        "file": "ANALYSIS.md",
        "title": "# ⟪Analysis¦ANALYSIS¦Cartwheel order history: analysis⟫",
        "sections": [
            ("## #1 My orders", [
                "The plan scans orders_created_at_idx backwards and filters on customer_id, reading millions of rows to return twenty.",
                "It joins all order items, groups, sorts, then throws away the OFFSET rows, so page 200 does 200 times the work of page 1.",
                "With an index on (customer_id, created_at DESC, id DESC) and keyset pagination the plan becomes an index range scan with a LIMIT and a nested loop for the item counts.",
                "The item count moves into a LATERAL subquery so the GROUP BY disappears.",
            ]),
            ("## #2 Revenue dashboard", [
                "A sequential scan of order_items with a hash join to products: it reads the whole table for one merchant.",
                "The estimates are off by two orders of magnitude for big merchants.",
                "Starting from products by merchant and then order_items by product uses the two new indexes.",
                "For the largest merchants a daily rollup table would be better; I describe it but did not build it.",
            ]),
            ("## #3 Login", [
                "lower(email) cannot use the unique index on email, so every login is a sequential scan of 2.3 million customers.",
                "An expression index on lower(email) fixes it. Later the unique constraint should move to lower(email) after cleaning the duplicates.",
            ]),
            ("## Money", [
                "double precision cannot represent cents exactly. Plan: add numeric columns, write both from the application, backfill in batches, verify, switch reads, drop the old columns much later.",
                "No ALTER COLUMN TYPE on orders: it takes an ACCESS EXCLUSIVE lock and rewrites 40 million rows.",
            ]),
            ("## Verification", [
                "Compare pg_stat_statements mean time before and after, check that the new indexes are used (idx_scan) and that the old status index was not, and watch replication lag during the index builds.",
            ]),
        ],
    },
}

CACHE = {
    "run": ("go test -race ./...", (6000, 26000), 5),
    "items": [
        {"id": "imports", "op": "edit", "file": "catalog/catalog.go",
         "old": "    \"log/slog\"\n    \"time\"\n",
         "new": "    \"log/slog\"\n    \"math/rand/v2\"\n    \"sync\"\n    \"time\"\n"},
        {"id": "struct", "op": "edit", "file": "catalog/catalog.go",
         "old": "    clock Clock\n    log   *slog.Logger\n}\n",
         "new": "    clock Clock\n    log   *slog.Logger\n"
                "\n"
                "    mu       sync.Mutex\n"
                "    ⟪@inflight¦inflight¦loading¦calls⟫ map[string]*call\n"
                "}\n"
                "\n"
                "// call is one database load that concurrent misses of the same key wait for.\n"
                "type call struct {\n"
                "    done chan struct{}\n"
                "    p    Product\n"
                "    err  error\n"
                "}\n"},
        {"id": "ttl", "short": True, "op": "edit", "file": "catalog/catalog.go",
         "old": "func key(sku, country string) string { return fmt.Sprintf(\"product:%s:%s\", country, sku) }\n",
         "new": "func key(sku, country string) string { return fmt.Sprintf(\"product:%s:%s\", country, sku) }\n"
                "\n"
                "// ⟪@jit¦jittered¦withJitter¦spread⟫ spreads expiries over ±10% so popular keys do not expire together.\n"
                "func ⟪@jit⟫(ttl time.Duration) time.Duration {\n"
                "    spread := int64(ttl) / 5\n"
                "    return ttl - time.Duration(spread/2) + time.Duration(rand.Int64N(spread+1))\n"
                "}\n"},
        {"id": "load", "op": "edit", "file": "catalog/catalog.go",
         "old": "    p, err := s.db.GetProduct(ctx, sku, country)\n"
                "    if err != nil {\n"
                "        return Product{}, err\n"
                "    }\n"
                "    raw, _ = json.Marshal(p)\n"
                "    if err := s.cache.Set(ctx, k, raw, productTTL); err != nil {\n",
         "new": "    p, err := s.load(ctx, k, sku, country)\n"
                "    if err != nil {\n"
                "        return Product{}, err\n"
                "    }\n"
                "    raw, _ = json.Marshal(p)\n"
                "    if err := s.cache.Set(ctx, k, raw, ⟪@jit⟫(productTTL)); err != nil {\n"},
        {"id": "getex", "op": "edit", "file": "catalog/catalog.go",
         "old": "    // Keep popular products warm: every hit pushes the expiry back.\n"
                "    raw, err := s.cache.GetEx(ctx, k, productTTL)\n",
         "new": "    // ⟪GetEx kept hot keys alive forever, so a missed delete meant a stale price forever.¦Plain Get: a hit must not push the expiry back (INC-419).⟫\n"
                "    raw, err := s.cache.Get(ctx, k)\n"},
        {"id": "single", "op": "edit", "file": "catalog/catalog.go",
         "old": "// UpdatePrice is called by the pricing back office.\n",
         "new": "// load reads the product from the database, once per key at a time in this instance.\n"
                "func (s *Service) load(ctx context.Context, k, sku, country string) (Product, error) {\n"
                "    s.mu.Lock()\n"
                "    if s.⟪@inflight⟫ == nil {\n"
                "        s.⟪@inflight⟫ = map[string]*call{}\n"
                "    }\n"
                "    if c, ok := s.⟪@inflight⟫[k]; ok {\n"
                "        s.mu.Unlock()\n"
                "        select {\n"
                "        case <-c.done:\n"
                "            return c.p, c.err\n"
                "        case <-ctx.Done():\n"
                "            return Product{}, ctx.Err()\n"
                "        }\n"
                "    }\n"
                "    c := &call{done: make(chan struct{})}\n"
                "    s.⟪@inflight⟫[k] = c\n"
                "    s.mu.Unlock()\n"
                "\n"
                "    c.p, c.err = s.db.GetProduct(context.WithoutCancel(ctx), sku, country)\n"
                "    close(c.done)\n"
                "\n"
                "    s.mu.Lock()\n"
                "    delete(s.⟪@inflight⟫, k)\n"
                "    s.mu.Unlock()\n"
                "    return c.p, c.err\n"
                "}\n"
                "\n"
                "// UpdatePrice is called by the pricing back office.\n"},
        {"id": "update", "short": True, "op": "edit", "file": "catalog/catalog.go",
         "old": "    // Invalidate first so nobody reads the old price from the cache.\n"
                "    if err := s.cache.Delete(ctx, key(sku, country)); err != nil {\n"
                "        return fmt.Errorf(\"cache: %w\", err)\n"
                "    }\n"
                "    if _, err := s.db.UpdatePrice(ctx, sku, country, priceMinor); err != nil {\n"
                "        return err\n"
                "    }\n"
                "    return nil\n",
         "new": "    // ⟪Write first, then delete: deleting first let a reader refill the cache from a replica\n    // that had not seen the write yet, and GetEx then kept that entry alive.¦Deleting before the write raced with readers refilling the old price from a lagging replica.⟫\n"
                "    if _, err := s.db.UpdatePrice(ctx, sku, country, priceMinor); err != nil {\n"
                "        return err\n"
                "    }\n"
                "    if err := s.cache.Delete(ctx, key(sku, country)); err != nil {\n"
                "        s.log.Warn(\"cache delete failed\", \"sku\", sku, \"err\", err)\n"
                "    }\n"
                "    return nil\n"},
        {"id": "event", "op": "edit", "file": "catalog/catalog.go",
         "old": "func (s *Service) OnPriceChanged(ctx context.Context, ev PriceChanged) error {\n"
                "    return nil\n"
                "}\n",
         "new": "func (s *Service) OnPriceChanged(ctx context.Context, ev PriceChanged) error {\n"
                "    k := key(ev.SKU, ev.Country)\n"
                "    raw, err := s.cache.Get(ctx, k)\n"
                "    if err != nil {\n"
                "        if errors.Is(err, ErrNotFound) {\n"
                "            return nil\n"
                "        }\n"
                "        return fmt.Errorf(\"cache: %w\", err)\n"
                "    }\n"
                "    var p Product\n"
                "    if err := json.Unmarshal(raw, &p); err != nil || p.PriceVersion >= ev.PriceVersion {\n"
                "        return nil ⟪// the cache already has this version or a newer one¦// older event, ignore⟫\n"
                "    }\n"
                "    p.PriceMinor, p.Currency, p.PriceVersion = ev.PriceMinor, ev.Currency, ev.PriceVersion\n"
                "    raw, _ = json.Marshal(p)\n"
                "    return s.cache.Set(ctx, k, raw, ⟪@jit⟫(productTTL))\n"
                "}\n"},
        {"id": "test", "op": "new", "file": "catalog/jitter_test.go", "kind": "test",
         "text": "package catalog\n"
                 "\n"
                 "import (\n"
                 "    \"testing\"\n"
                 "    \"time\"\n"
                 ")\n"
                 "\n"
                 "func TestExpiriesAreJitteredWithinBounds(t *testing.T) {\n"
                 "    seen := map[time.Duration]bool{}\n"
                 "    for i := 0; i < 1000; i++ {\n"
                 "        d := ⟪@jit⟫(productTTL)\n"
                 "        if d < 9*time.Minute || d > 11*time.Minute {\n"
                 "            t.Fatalf(\"ttl %v outside [9m, 11m]\", d)\n"
                 "        }\n"
                 "        seen[d] = true\n"
                 "    }\n"
                 "    if len(seen) < 100 {\n"
                 "        t.Fatalf(\"only %d distinct ttls, expiries would line up\", len(seen))\n"
                 "    }\n"
                 "}\n"},
    ],
    "notes": {
        "file": "DESIGN.md",
        "title": "# ⟪Catalogue caching design¦DESIGN¦Design⟫",
        "sections": [
            ("## Policy per kind of data", [
                "Prices: cached with the product, updated in place from price_changed events (version checked), so a change is visible in well under 5 s; the TTL is only a safety net.",
                "Stock: may be 30 s stale; a short in-process cache in front of Redis.",
                "Titles and descriptions: 10 minutes with ±10% jitter.",
            ]),
            ("## The stale-forever bug", [
                "UpdatePrice deleted the key before writing the primary. A reader that missed in between loaded the old price from a lagging replica and cached it, and GetEx pushed its expiry back on every hit, so a popular product kept the old price indefinitely.",
                "Now the write happens first, the delete after, reads do not extend the TTL, and the event handler only ever moves the version forward.",
            ]),
            ("## Stampedes and hot keys", [
                "Concurrent misses for a key share one database load per instance (a small singleflight), so at most 24 loads per key cluster-wide.",
                "For the flash-sale SKU each instance keeps a 1 s in-process copy, which takes the hot key off a single Redis shard.",
            ]),
            ("## Failures", [
                "Redis slow: a 20 ms timeout, then serve from the in-process cache or go to the database through the singleflight with a concurrency limit of about 100 loads per instance.",
                "A shard that comes back empty fills up through the same limited path instead of all 24 instances hammering the replicas.",
            ]),
            ("## Capacity", [
                "About 2 KB per product and country; 400k SKUs in 14 countries is roughly 11 GB in Redis, and the in-process cache holds only the hot few thousand keys.",
            ]),
            ("## Metrics", [
                "Hit ratio per layer, database loads per second, singleflight waiters, event lag of the price_changed consumer, and the age of the price served compared to the primary (sampled).",
            ]),
        ],
    },
}

SAGA = {
    "run": ("npm test", (3000, 9000), 6),
    "items": [
        {"id": "repo", "short": True, "op": "edit", "file": "src/saga.ts",
         "old": "export interface SagaRepository {\n  // TODO\n}\n",
         "new": "export type SagaState =\n"
                "  | \"started\"\n"
                "  | \"holding\"\n"
                "  | \"authorizing\"\n"
                "  | \"debiting\"\n"
                "  | \"confirming\"\n"
                "  | \"capturing\"\n"
                "  | \"notifying\"\n"
                "  | \"completed\"\n"
                "  | \"compensating\"\n"
                "  | \"failed\";\n"
                "\n"
                "export interface ⟪@rec¦SagaRecord¦SagaRow¦Saga⟫ {\n"
                "  id: string;\n"
                "  idempotencyKey: string;\n"
                "  request: CheckoutRequest;\n"
                "  state: SagaState;\n"
                "  holdId?: string;\n"
                "  paymentId?: string;\n"
                "  bookingRef?: string;\n"
                "  pointsDebited: boolean;\n"
                "  version: number;\n"
                "}\n"
                "\n"
                "export interface SagaRepository {\n"
                "  insert(saga: ⟪@rec⟫): Promise<⟪@rec⟫>;\n"
                "  get(id: string): Promise<⟪@rec⟫ | undefined>;\n"
                "  byKey(idempotencyKey: string): Promise<⟪@rec⟫ | undefined>;\n"
                "  /** Optimistic concurrency: fails unless the stored version is `saga.version - 1`. */\n"
                "  update(saga: ⟪@rec⟫): Promise<void>;\n"
                "  inFlight(): Promise<⟪@rec⟫[]>;\n"
                "}\n"},
        {"id": "memrepo", "op": "edit", "file": "src/saga.ts",
         "old": "export class InMemorySagaRepository implements SagaRepository {\n  // TODO\n}\n",
         "new": "export class InMemorySagaRepository implements SagaRepository {\n"
                "  private ⟪@rows¦rows¦sagas¦byId⟫ = new Map<string, ⟪@rec⟫>();\n"
                "\n"
                "  async insert(saga: ⟪@rec⟫): Promise<⟪@rec⟫> {\n"
                "    const existing = await this.byKey(saga.idempotencyKey);\n"
                "    if (existing) return existing;\n"
                "    this.⟪@rows⟫.set(saga.id, structuredClone(saga));\n"
                "    return saga;\n"
                "  }\n"
                "\n"
                "  async get(id: string) {\n"
                "    const row = this.⟪@rows⟫.get(id);\n"
                "    return row && structuredClone(row);\n"
                "  }\n"
                "\n"
                "  async byKey(idempotencyKey: string) {\n"
                "    for (const row of this.⟪@rows⟫.values()) {\n"
                "      if (row.idempotencyKey === idempotencyKey) return structuredClone(row);\n"
                "    }\n"
                "    return undefined;\n"
                "  }\n"
                "\n"
                "  async update(saga: ⟪@rec⟫): Promise<void> {\n"
                "    const current = this.⟪@rows⟫.get(saga.id);\n"
                "    if (!current || current.version !== saga.version - 1) {\n"
                "      throw new Error(`saga ${saga.id}: concurrent update`);\n"
                "    }\n"
                "    this.⟪@rows⟫.set(saga.id, structuredClone(saga));\n"
                "  }\n"
                "\n"
                "  async inFlight() {\n"
                "    return [...this.⟪@rows⟫.values()]\n"
                "      .filter((s) => s.state !== \"completed\" && s.state !== \"failed\")\n"
                "      .map((s) => structuredClone(s));\n"
                "  }\n"
                "}\n"},
        {"id": "start", "op": "edit", "file": "src/saga.ts",
         "old": "  async start(idempotencyKey: string, request: CheckoutRequest): Promise<{ checkoutId: string }> {\n"
                "    throw new Error(\"not implemented\");\n"
                "  }\n",
         "new": "  async start(idempotencyKey: string, request: CheckoutRequest): Promise<{ checkoutId: string }> {\n"
                "    const saga = await this.repository.insert({\n"
                "      id: `chk_${randomUUID()}`,\n"
                "      idempotencyKey,\n"
                "      request,\n"
                "      state: \"started\",\n"
                "      pointsDebited: false,\n"
                "      version: 1,\n"
                "    });\n"
                "    return { checkoutId: saga.id };\n"
                "  }\n"},
        {"id": "runimpl", "op": "edit", "file": "src/saga.ts",
         "old": "  async run(checkoutId: string): Promise<CheckoutView> {\n"
                "    throw new Error(\"not implemented\");\n"
                "  }\n",
         "new": "  async run(checkoutId: string): Promise<CheckoutView> {\n"
                "    let saga = await this.repository.get(checkoutId);\n"
                "    if (!saga) throw new Error(`unknown checkout ${checkoutId}`);\n"
                "    const save = async (patch: Partial<⟪@rec⟫>) => {\n"
                "      saga = { ...saga!, ...patch, version: saga!.version + 1 };\n"
                "      await this.repository.update(saga);\n"
                "    };\n"
                "    const { inventory, payments, loyalty, notifications } = this.deps;\n"
                "    const key = saga.id;\n"
                "    try {\n"
                "      if (saga.state === \"started\" || saga.state === \"holding\") {\n"
                "        const hold = await retry(() => inventory.hold({ holdKey: key, items: saga!.request.items }), this.time);\n"
                "        await save({ state: \"authorizing\", holdId: hold.holdId });\n"
                "      }\n"
                "      if (saga.state === \"authorizing\") {\n"
                "        ⟪// a timeout may have authorised: look it up by key before trying again¦// ambiguous outcome: findByIdempotencyKey tells us if the card was authorised⟫\n"
                "        const found = await payments.findByIdempotencyKey(key);\n"
                "        const paymentId = found?.paymentId ?? (await retry(() => payments.authorize({\n"
                "          idempotencyKey: key,\n"
                "          customerId: saga!.request.customerId,\n"
                "          amountMinor: saga!.request.amountMinor,\n"
                "          currency: saga!.request.currency,\n"
                "        }), this.time)).paymentId;\n"
                "        await save({ state: \"debiting\", paymentId });\n"
                "      }\n"
                "      if (saga.state === \"debiting\") {\n"
                "        if (saga.request.pointsToRedeem > 0) {\n"
                "          await retry(() => loyalty.debit({ customerId: saga!.request.customerId, points: saga!.request.pointsToRedeem, reference: key }), this.time);\n"
                "        }\n"
                "        await save({ state: \"confirming\", pointsDebited: saga.request.pointsToRedeem > 0 });\n"
                "      }\n"
                "      if (saga.state === \"confirming\") {\n"
                "        // pivot: once the supplier confirms, we only go forward\n"
                "        const booking = await retry(() => inventory.confirm(saga!.holdId!), this.time);\n"
                "        await save({ state: \"capturing\", bookingRef: booking.bookingRef });\n"
                "      }\n"
                "    } catch (err) {\n"
                "      if (err instanceof CrashError) throw err;\n"
                "      await save({ state: \"compensating\" });\n"
                "    }\n"
                "    if (saga.state === \"compensating\") {\n"
                "      if (saga.pointsDebited) await retry(() => loyalty.credit({ customerId: saga!.request.customerId, points: saga!.request.pointsToRedeem, reference: `${key}:refund` }), this.time);\n"
                "      if (saga.paymentId) await retry(() => payments.void(saga!.paymentId!), this.time);\n"
                "      if (saga.holdId) await retry(() => inventory.release(saga!.holdId!), this.time);\n"
                "      await save({ state: \"failed\" });\n"
                "    }\n"
                "    if (saga.state === \"capturing\") {\n"
                "      await retry(() => payments.capture(saga!.paymentId!), this.time);\n"
                "      await save({ state: \"notifying\" });\n"
                "    }\n"
                "    if (saga.state === \"notifying\") {\n"
                "      await retry(() => notifications.send({\n"
                "        dedupeKey: `booking-confirmed:${key}`,\n"
                "        to: saga!.request.email,\n"
                "        template: \"booking-confirmed\",\n"
                "        data: { bookingRef: saga!.bookingRef },\n"
                "      }), this.time);\n"
                "      await save({ state: \"completed\" });\n"
                "    }\n"
                "    return view(saga);\n"
                "  }\n"},
        {"id": "recover", "op": "edit", "file": "src/saga.ts",
         "old": "  async recover(): Promise<void> {\n"
                "    throw new Error(\"not implemented\");\n"
                "  }\n",
         "new": "  async recover(): Promise<void> {\n"
                "    for (const saga of await this.repository.inFlight()) {\n"
                "      await this.run(saga.id);\n"
                "    }\n"
                "  }\n"},
        {"id": "status", "short": True, "op": "edit", "file": "src/saga.ts",
         "old": "  async status(checkoutId: string): Promise<CheckoutView | undefined> {\n"
                "    throw new Error(\"not implemented\");\n"
                "  }\n",
         "new": "  async status(checkoutId: string): Promise<CheckoutView | undefined> {\n"
                "    const saga = await this.repository.get(checkoutId);\n"
                "    return saga && view(saga);\n"
                "  }\n"},
        {"id": "helpers", "op": "append", "file": "src/saga.ts",
         "text": "\n"
                 "function view(saga: ⟪@rec⟫): CheckoutView {\n"
                 "  const outcome = saga.state === \"completed\" ? \"completed\" : saga.state === \"failed\" ? \"failed\" : \"pending\";\n"
                 "  return { checkoutId: saga.id, outcome, state: saga.state };\n"
                 "}\n"
                 "\n"
                 "async function retry<T>(f: () => Promise<T>, time: Time, attempts = ⟪5¦6¦8⟫): Promise<T> {\n"
                 "  for (let i = 1; ; i++) {\n"
                 "    try {\n"
                 "      return await f();\n"
                 "    } catch (err) {\n"
                 "      const retryable = err instanceof UnavailableError || err instanceof TimeoutError;\n"
                 "      if (!retryable || i >= attempts) throw err;\n"
                 "      await time.sleep(⟪200¦250¦100⟫ * 2 ** i);\n"
                 "    }\n"
                 "  }\n"
                 "}\n"},
        {"id": "imports", "op": "edit", "file": "src/saga.ts",
         "old": "import type { CheckoutRequest, Deps } from \"./checkout.js\";\n",
         "new": "import { randomUUID } from \"node:crypto\";\n"
                "import type { CheckoutRequest, Deps } from \"./checkout.js\";\n"
                "import { TimeoutError, UnavailableError } from \"./clients.js\";\n"
                "import { CrashError } from \"./fakes.js\";\n"},
    ],
    "notes": {
        "file": "ARCHITECTURE.md",
        "title": "# ⟪Checkout saga¦ARCHITECTURE¦Architecture⟫",
        "sections": [
            ("## States", [
                "started -> holding -> authorizing -> debiting -> confirming -> capturing -> notifying -> completed, and compensating -> failed from any state before confirming.",
                "The pivot is the supplier confirmation: after it we never compensate, we retry capture and notification until they succeed.",
                "Every transition is persisted with a version number before the next call, so a restarted orchestrator continues from the last saved state.",
            ]),
            ("## Idempotency", [
                "Inventory holds use the checkout id as holdKey, payments use it as the idempotency key, loyalty uses it as the reference and notifications as the dedupe key.",
                "A Payments timeout is ambiguous: before authorising again we look up findByIdempotencyKey, which is strongly consistent.",
                "Loyalty credit has no idempotency of its own, so the compensation uses a distinct reference and we record that it was done before moving on.",
            ]),
            ("## Failure table", [
                "Hold sold out: fail at once, nothing to undo. Authorisation declined: release the hold, customer sees a declined card.",
                "Crash after authorising but before saving: on recovery the lookup finds the payment, no second authorisation.",
                "Hold expired at confirm: void the authorisation, credit the points, release; the customer is told the room is gone.",
                "Capture failing after confirmation: retried with backoff, then alert; the booking stands and the authorisation is valid for 7 days.",
            ]),
            ("## Why orchestration", [
                "Four teams, one business transaction with a clear owner: a single place that knows the state is easier to reason about and to recover than events bouncing between services.",
            ]),
            ("## Monitoring", [
                "Sagas per state and their age, compensations per hour, ambiguous payment outcomes, holds close to expiry, and sagas stuck in notifying.",
            ]),
        ],
    },
}

RATE = {
    "run": ("go test -race ./...", (5000, 22000), 7),
    "items": [
        {"id": "clientip", "short": True, "op": "edit", "file": "internal/ratelimit/limiter.go",
         "old": "    if xff := r.Header.Get(\"X-Forwarded-For\"); xff != \"\" {\n"
                "        return strings.TrimSpace(strings.Split(xff, \",\")[0])\n"
                "    }\n",
         "new": "    ⟪// the load balancer appends the address it saw: only the last entry can be trusted¦// the first entries are whatever the client sent, use the one our LB appended⟫\n"
                "    if xff := r.Header.Get(\"X-Forwarded-For\"); xff != \"\" {\n"
                "        parts := strings.Split(xff, \",\")\n"
                "        return strings.TrimSpace(parts[len(parts)-1])\n"
                "    }\n"},
        {"id": "bucket", "op": "append", "file": "internal/ratelimit/limiter.go",
         "text": "\n"
                 "// ⟪@tb¦TokenBucket¦Bucket¦RedisBucket⟫ is a token bucket kept in Redis, shared by every instance.\n"
                 "type ⟪@tb⟫ struct {\n"
                 "    Redis Redis\n"
                 "    Rate  float64 // tokens per second\n"
                 "    Burst int\n"
                 "}\n"
                 "\n"
                 "const bucketScript = `\n"
                 "local rate = tonumber(ARGV[1])\n"
                 "local burst = tonumber(ARGV[2])\n"
                 "local now = tonumber(ARGV[3])\n"
                 "local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')\n"
                 "local tokens = tonumber(state[1]) or burst\n"
                 "local ts = tonumber(state[2]) or now\n"
                 "tokens = math.min(burst, tokens + (now - ts) * rate / 1000)\n"
                 "local allowed = 0\n"
                 "if tokens >= 1 then\n"
                 "  tokens = tokens - 1\n"
                 "  allowed = 1\n"
                 "end\n"
                 "redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now)\n"
                 "redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)\n"
                 "return {allowed, math.floor(tokens)}\n"
                 "`\n"
                 "\n"
                 "func (b *⟪@tb⟫) Allow(ctx context.Context, key string) (Decision, error) {\n"
                 "    now := time.Now().UnixMilli()\n"
                 "    res, err := b.Redis.Eval(ctx, bucketScript, []string{\"rl:{\" + key + \"}\"}, b.Rate, b.Burst, now)\n"
                 "    if err != nil {\n"
                 "        return Decision{}, err\n"
                 "    }\n"
                 "    vals, ok := res.([]any)\n"
                 "    if !ok || len(vals) != 2 {\n"
                 "        return Decision{}, fmt.Errorf(\"ratelimit: unexpected reply %v\", res)\n"
                 "    }\n"
                 "    allowed, _ := vals[0].(int64)\n"
                 "    remaining, _ := vals[1].(int64)\n"
                 "    d := Decision{Allowed: allowed == 1, Limit: b.Burst, Remaining: int(remaining)}\n"
                 "    if !d.Allowed {\n"
                 "        d.RetryAfter = time.Duration(float64(time.Second) / b.Rate)\n"
                 "    }\n"
                 "    d.ResetAfter = time.Duration(float64(b.Burst-int(remaining)) / b.Rate * float64(time.Second))\n"
                 "    return d, nil\n"
                 "}\n"},
        {"id": "imports", "op": "edit", "file": "internal/ratelimit/limiter.go",
         "old": "import (\n    \"context\"\n    \"net\"\n",
         "new": "import (\n    \"context\"\n    \"fmt\"\n    \"net\"\n"},
        {"id": "middleware", "op": "edit", "file": "cmd/api/main.go",
         "old": "        d, err := l.Allow(r.Context(), ratelimit.ClientIP(r))\n"
                "        if err == nil && !d.Allowed {\n"
                "            writeError(w, http.StatusServiceUnavailable, \"slow_down\", \"Too many requests.\")\n"
                "            return\n"
                "        }\n",
         "new": "        d, err := l.Allow(r.Context(), ratelimit.ClientIP(r))\n"
                "        if err != nil {\n"
                "            ⟪// Redis down: fail open for reads, the per-instance fallback still applies¦// fail open, but log it: an outage must not take the API down⟫\n"
                "            next.ServeHTTP(w, r)\n"
                "            return\n"
                "        }\n"
                "        w.Header().Set(\"RateLimit-Limit\", strconv.Itoa(d.Limit))\n"
                "        w.Header().Set(\"RateLimit-Remaining\", strconv.Itoa(d.Remaining))\n"
                "        if !d.Allowed {\n"
                "            secs := int(math.Ceil(d.RetryAfter.Seconds()))\n"
                "            w.Header().Set(\"Retry-After\", strconv.Itoa(max(secs, 1)))\n"
                "            writeError(w, http.StatusTooManyRequests, \"rate_limited\", \"Too many requests, retry later.\")\n"
                "            return\n"
                "        }\n"},
        {"id": "main-imports", "op": "edit", "file": "cmd/api/main.go",
         "old": "    \"log/slog\"\n    \"net/http\"\n    \"os\"\n",
         "new": "    \"log/slog\"\n    \"math\"\n    \"net/http\"\n    \"os\"\n    \"strconv\"\n"},
        {"id": "wire", "op": "edit", "file": "cmd/api/main.go",
         "old": "    limiter := &ratelimit.FixedWindow{Limit: 100, Window: time.Second}\n",
         "new": "    limiter := &ratelimit.⟪@tb⟫{Redis: d.Redis, Rate: ⟪50¦100¦20⟫, Burst: ⟪100¦200¦40⟫}\n"},
        {"id": "test", "op": "new", "file": "internal/ratelimit/bucket_test.go", "kind": "test",
         "text": "package ratelimit_test\n"
                 "\n"
                 "import (\n"
                 "    \"context\"\n"
                 "    \"testing\"\n"
                 "\n"
                 "    \"github.com/parcelbase/api/internal/ratelimit\"\n"
                 "    \"github.com/parcelbase/api/internal/ratelimit/redistest\"\n"
                 ")\n"
                 "\n"
                 "func TestBucketAllowsBurstThenLimits(t *testing.T) {\n"
                 "    r, _ := redistest.New(t)\n"
                 "    b := &ratelimit.⟪@tb⟫{Redis: r, Rate: 10, Burst: 20}\n"
                 "    ctx := context.Background()\n"
                 "    allowed := 0\n"
                 "    for i := 0; i < 30; i++ {\n"
                 "        d, err := b.Allow(ctx, \"acct_1001\")\n"
                 "        if err != nil {\n"
                 "            t.Fatal(err)\n"
                 "        }\n"
                 "        if d.Allowed {\n"
                 "            allowed++\n"
                 "        }\n"
                 "    }\n"
                 "    if allowed < 20 || allowed > 21 {\n"
                 "        t.Fatalf(\"allowed %d of 30, want the burst of 20\", allowed)\n"
                 "    }\n"
                 "}\n"},
    ],
    "notes": {
        "file": "DESIGN.md",
        "title": "# ⟪Rate limiting design¦DESIGN¦Parcelbase rate limits⟫",
        "sections": [
            ("## Algorithms", [
                "Per API key: a token bucket in Redis (rate and burst from the plan), one Lua script per request so the read and write are atomic on the shard.",
                "Quotes: a concurrency limit, a sorted set of request ids with a timeout per key and a global one, released when the request ends.",
                "The bucket key uses a hash tag so both fields live on one shard.",
            ]),
            ("## Login protection", [
                "Two limits: per account (email) with exponential delays rather than a lockout, and per client IP with a larger budget.",
                "Locking accounts would let an attacker lock genuine users out, so failed attempts slow down the next attempt for that account instead and trigger a captcha after a threshold.",
                "The client IP is the last X-Forwarded-For entry, the one our load balancer appended; anything before it is forgeable.",
                "This does not stop a slow, distributed attack completely; it makes it visible through the per-account failure counters we alert on.",
            ]),
            ("## When Redis fails", [
                "Reads and label lookups fail open with a local per-instance bucket at a sixth of the limit, so an outage degrades fairness, not availability.",
                "Quotes fail closed above a local in-flight limit, because the carriers throttle everyone otherwise.",
                "Login fails closed to a per-instance limit: a Redis outage must not disable credential stuffing protection.",
            ]),
            ("## Memory", [
                "About 100 bytes per bucket; 3,800 keys and a few hundred thousand IPs during an attack is tens of MB, with keys expiring after the bucket refills.",
            ]),
            ("## Client contract", [
                "429 with Retry-After in seconds, RateLimit-Limit and RateLimit-Remaining on every response, documented per plan; higher limits come with a plan upgrade or a support request.",
            ]),
        ],
    },
}

REST = {
    "run": ("npm test", (2500, 8000), 9),
    "items": [
        {"id": "mount", "short": True, "op": "edit", "file": "src/app.ts",
         "old": "// TODO: mount the /v1 router here.\n",
         "new": "app.use(\"/v1\", v1Router());\n"},
        {"id": "import", "op": "edit", "file": "src/app.ts",
         "old": "import { store } from \"./store.js\";\n",
         "new": "import { store } from \"./store.js\";\nimport { v1Router } from \"./v1.js\";\n"},
        {"id": "router", "op": "new", "file": "src/v1.ts",
         "text": "import express from \"express\";\n"
                 "import { store, type Booking } from \"./store.js\";\n"
                 "\n"
                 "⟪// RFC 9457 problem details for every error¦// one error format: application/problem+json⟫\n"
                 "function problem(res: express.Response, status: number, title: string, extra: object = {}) {\n"
                 "  res.status(status).type(\"application/problem+json\").json({ type: \"about:blank\", title, status, ...extra });\n"
                 "}\n"
                 "\n"
                 "const QUARTER = 15 * 60_000;\n"
                 "const ⟪@idem¦idempotent¦replies¦seen⟫ = new Map<string, { status: number; body: unknown }>();\n"
                 "const locks = new Map<string, Promise<void>>();\n"
                 "\n"
                 "async function withSpaceLock<T>(spaceId: string, f: () => Promise<T>): Promise<T> {\n"
                 "  const previous = locks.get(spaceId) ?? Promise.resolve();\n"
                 "  let release!: () => void;\n"
                 "  const mine = new Promise<void>((r) => (release = r));\n"
                 "  locks.set(spaceId, previous.then(() => mine));\n"
                 "  await previous;\n"
                 "  try {\n"
                 "    return await f();\n"
                 "  } finally {\n"
                 "    release();\n"
                 "  }\n"
                 "}\n"
                 "\n"
                 "function validRange(start: string, end: string): string | null {\n"
                 "  const s = Date.parse(start);\n"
                 "  const e = Date.parse(end);\n"
                 "  if (Number.isNaN(s) || Number.isNaN(e)) return \"start and end must be RFC 3339 times\";\n"
                 "  if (s % QUARTER !== 0 || e % QUARTER !== 0) return \"times must be on 15-minute boundaries\";\n"
                 "  if (e - s < 2 * QUARTER || e - s > 40 * QUARTER) return \"a booking lasts 30 minutes to 10 hours\";\n"
                 "  if (s < Date.now()) return \"a booking may not start in the past\";\n"
                 "  return null;\n"
                 "}\n"
                 "\n"
                 "const overlaps = (a: Booking, s: number, e: number) =>\n"
                 "  a.status === \"confirmed\" && Date.parse(a.start) < e && s < Date.parse(a.end);\n"
                 "\n"
                 "export function v1Router(): express.Router {\n"
                 "  const router = express.Router();\n"
                 "\n"
                 "  router.get(\"/spaces\", async (req, res) => {\n"
                 "    const limit = Math.min(Number(req.query.limit ?? 20), 100);\n"
                 "    const after = typeof req.query.cursor === \"string\" ? req.query.cursor : \"\";\n"
                 "    const spaces = (await store.listSpaces())\n"
                 "      .filter((s) => !req.query.site || s.siteId === req.query.site)\n"
                 "      .filter((s) => !req.query.type || s.type === req.query.type)\n"
                 "      .filter((s) => s.capacity >= Number(req.query.min_capacity ?? 1))\n"
                 "      .sort((a, b) => a.id.localeCompare(b.id))\n"
                 "      .filter((s) => s.id > after);\n"
                 "    const page = spaces.slice(0, limit);\n"
                 "    res.json({\n"
                 "      data: page.map((s) => ({ id: s.id, site_id: s.siteId, name: s.name, type: s.type, capacity: s.capacity })),\n"
                 "      next_cursor: spaces.length > limit ? page[page.length - 1].id : null,\n"
                 "    });\n"
                 "  });\n"
                 "\n"
                 "  router.post(\"/bookings\", async (req, res) => {\n"
                 "    const member = req.header(\"X-Member-Id\");\n"
                 "    const key = req.header(\"Idempotency-Key\");\n"
                 "    if (!member) return problem(res, 401, \"X-Member-Id is required\");\n"
                 "    if (!key) return problem(res, 400, \"Idempotency-Key is required\");\n"
                 "    const cached = ⟪@idem⟫.get(`${member}:${key}`);\n"
                 "    if (cached) return res.status(cached.status).json(cached.body);\n"
                 "    const { space_id, start, end } = req.body ?? {};\n"
                 "    const invalid = validRange(start, end);\n"
                 "    if (!space_id || invalid) {\n"
                 "      return problem(res, 422, \"Invalid booking\", { errors: [{ field: space_id ? \"start\" : \"space_id\", detail: invalid ?? \"required\" }] });\n"
                 "    }\n"
                 "    const result = await withSpaceLock(space_id, async () => {\n"
                 "      const taken = (await store.bookingsForSpace(space_id)).some((b) => overlaps(b, Date.parse(start), Date.parse(end)));\n"
                 "      if (taken) return { status: 409, body: { type: \"about:blank\", title: \"Slot taken\", status: 409 } };\n"
                 "      const booking = await store.insertBooking({ spaceId: space_id, memberId: member, start, end });\n"
                 "      return { status: 201, body: booking };\n"
                 "    });\n"
                 "    ⟪@idem⟫.set(`${member}:${key}`, result);\n"
                 "    res.status(result.status).json(result.body);\n"
                 "  });\n"
                 "\n"
                 "  router.get(\"/bookings/:id\", async (req, res) => {\n"
                 "    const booking = await store.getBooking(req.params.id);\n"
                 "    if (!booking) return problem(res, 404, \"Booking not found\");\n"
                 "    res.json(booking);\n"
                 "  });\n"
                 "\n"
                 "  router.delete(\"/bookings/:id\", async (req, res) => {\n"
                 "    const booking = await store.getBooking(req.params.id);\n"
                 "    if (!booking) return problem(res, 404, \"Booking not found\");\n"
                 "    if (booking.status !== \"cancelled\") await store.updateBooking({ ...booking, status: \"cancelled\" });\n"
                 "    res.status(204).end();\n"
                 "  });\n"
                 "\n"
                 "  return router;\n"
                 "}\n"},
        {"id": "openapi", "op": "edit", "file": "openapi.yaml", "kind": "yaml",
         "old": "  # TODO: availability, bookings\n",
         "new": "  /bookings:\n"
                "    post:\n"
                "      summary: Create a booking\n"
                "      parameters:\n"
                "        - { name: Idempotency-Key, in: header, required: true, schema: { type: string } }\n"
                "        - { name: X-Member-Id, in: header, required: true, schema: { type: string } }\n"
                "      responses:\n"
                "        '201': { description: The booking. }\n"
                "        '409': { description: The slot is taken., content: { application/problem+json: { schema: { $ref: '#/components/schemas/Problem' } } } }\n"
                "        '422': { description: Validation failed., content: { application/problem+json: { schema: { $ref: '#/components/schemas/Problem' } } } }\n"
                "  /bookings/{id}:\n"
                "    get:\n"
                "      summary: Read a booking\n"
                "      responses:\n"
                "        '200': { description: The booking. }\n"
                "        '404': { description: No such booking. }\n"
                "    delete:\n"
                "      summary: Cancel a booking (cancelling twice is harmless)\n"
                "      responses:\n"
                "        '204': { description: Cancelled. }\n"},
        {"id": "problem-schema", "op": "edit", "file": "openapi.yaml", "kind": "yaml",
         "old": "    # TODO: Booking, error format\n",
         "new": "    Problem:\n"
                "      type: object\n"
                "      required: [type, title, status]\n"
                "      properties:\n"
                "        type: { type: string }\n"
                "        title: { type: string }\n"
                "        status: { type: integer }\n"
                "        errors:\n"
                "          type: array\n"
                "          items: { type: object, properties: { field: { type: string }, detail: { type: string } } }\n"},
        {"id": "tests", "op": "new", "file": "test/bookings.test.ts", "kind": "test",
         "text": "import assert from \"node:assert/strict\";\n"
                 "import { describe, it } from \"node:test\";\n"
                 "import request from \"supertest\";\n"
                 "import { app } from \"../src/app.js\";\n"
                 "\n"
                 "const ⟪@tom¦tomorrow¦nextDay⟫ = (hh: string) => {\n"
                 "  const d = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);\n"
                 "  return `${d}T${hh}:00+00:00`;\n"
                 "};\n"
                 "\n"
                 "describe(\"⟪/v1 bookings¦bookings v1⟫\", () => {\n"
                 "  it(\"returns the same booking for a retried request\", async () => {\n"
                 "    const body = { space_id: \"spc_03\", start: ⟪@tom⟫(\"10:00\"), end: ⟪@tom⟫(\"11:00\") };\n"
                 "    const send = () => request(app).post(\"/v1/bookings\").set(\"X-Member-Id\", \"mem_1\").set(\"Idempotency-Key\", \"k-1\").send(body);\n"
                 "    const [a, b] = [await send(), await send()];\n"
                 "    assert.equal(a.status, 201);\n"
                 "    assert.equal(b.body.id, a.body.id);\n"
                 "  });\n"
                 "\n"
                 "  it(\"lets only one of two overlapping requests win\", async () => {\n"
                 "    const body = { space_id: \"spc_02\", start: ⟪@tom⟫(\"12:00\"), end: ⟪@tom⟫(\"13:00\") };\n"
                 "    const post = (k: string) => request(app).post(\"/v1/bookings\").set(\"X-Member-Id\", \"mem_2\").set(\"Idempotency-Key\", k).send(body);\n"
                 "    const statuses = (await Promise.all([post(\"x\"), post(\"y\")])).map((r) => r.status).sort();\n"
                 "    assert.deepEqual(statuses, [201, 409]);\n"
                 "  });\n"
                 "});\n"},
    ],
    "notes": {
        "file": "DESIGN.md",
        "title": "# ⟪Deskly /v1 design¦DESIGN¦Design notes⟫",
        "sections": [
            ("## Resources", [
                "Spaces (read only, filtered by site, type and min_capacity), availability of a space on a date, and bookings.",
                "Pagination uses an opaque cursor over the space id, so new spaces never shift a page.",
            ]),
            ("## Status codes", [
                "201 created, 200 read, 204 cancelled, 400 missing Idempotency-Key, 401 missing member, 404 unknown booking, 409 slot taken, 422 validation with field-level errors.",
                "All errors are application/problem+json.",
            ]),
            ("## Idempotency and overlaps", [
                "The first response for (member, Idempotency-Key) is stored and replayed for a retry.",
                "Overlap checks and the insert run under a per-space lock; on PostgreSQL I would use an exclusion constraint on (space_id, tstzrange) instead, which also works across instances.",
                "The in-memory lock only works in one process, which is the main thing I would change for production.",
            ]),
            ("## Left out", [
                "Availability is designed but only partly built; rescheduling (PATCH) follows the same lock and check as create.",
                "No ETags yet; the booking version would become one.",
            ]),
        ],
    },
}

CONTENT = {
    "bug-hunt": BUG_HUNT,
    "async-task-queue": ASYNC_QUEUE,
    "database-schema-optimization": DB_OPT,
    "distributed-cache-strategy": CACHE,
    "microservice-orchestration": SAGA,
    "rate-limiting": RATE,
    "rest-api-design": REST,
}

# Comments people add on second thought, and debug lines they add and remove again.
AFTERTHOUGHT = {
    ".py": ["# TODO: check this under concurrency", "# NOTE: see {notes}", "# FIXME: naive, fine for now",
            "# XXX is this right for DST?", "# keep in sync with the schema"],
    ".go": ["// TODO: metrics", "// NOTE: see {notes}", "// FIXME: handle ctx cancellation",
            "// keep this cheap, it is on the hot path"],
    ".ts": ["// TODO: persist this", "// NOTE: see {notes}", "// FIXME: not atomic across instances",
            "// keep in sync with openapi.yaml"],
    ".sql": ["-- TODO: check the plan on the replica", "-- NOTE: see {notes}", "-- run outside a transaction"],
}
DEBUG_LINE = {
    ".py": ["print(row)", "print(\"DEBUG\", locals())", "breakpoint()", "print(job, flush=True)"],
    ".go": ["fmt.Println(\"debug\", k)", "log.Printf(\"%+v\", p)"],
    ".ts": ["console.log(saga);", "console.log(\"here\", req.body);", "console.log(JSON.stringify(res.body));"],
    ".sql": ["-- EXPLAIN ANALYZE", "SELECT 1;"],
}

# Drafts people type and take back (word level), by kind.
SYNONYMS = {
    "because": ["since", "as"], "problem": ["issue", "bug"], "uses": ["takes", "needs"],
    "fix": ["change", "patch"], "first": ["initially"], "never": ["not"], "every": ["each", "all"],
    "would": ["could", "should"], "about": ["around", "roughly"], "only": ["just"],
    "returns": ["gives", "answers"], "keeps": ["holds", "stores"], "after": ["once", "when"],
    "before": ["prior"], "means": ["is"], "the": ["a", "this"], "with": ["using", "by"],
    "result": ["res", "out"], "existing": ["current", "found"], "limit": ["max", "n"],
    "saga": ["s", "rec"], "booking": ["b", "bk"], "invoice": ["inv"], "account": ["acct", "acc"],
    "rows": ["res", "records"], "state": ["status"], "error": ["err", "e"], "delay": ["wait", "backoff"],
    "key": ["k", "id"], "jobs": ["claimed", "batch"], "price": ["p", "amount"], "spaces": ["items", "list"],
}
FILLER_PROSE = ["basically", "I think", "maybe", "probably", "in general", "actually", "also", "so",
                "more or less", "kind of", "for now", "at least"]
# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------

def rng_for(seed, *labels):
    """An independent, reproducible stream for (seed, labels): no state shared between sessions."""
    h = hashlib.sha256("|".join([str(seed), *map(str, labels)]).encode()).digest()
    return random.Random(int.from_bytes(h[:8], "big"))


def ln(rng, median, sigma):
    """Log-normal draw by median and log-space sigma."""
    return median * math.exp(rng.gauss(0.0, sigma))


def clamp(x, lo, hi):
    return lo if x < lo else hi if x > hi else x


ALT = re.compile(r"⟪([^⟪⟫]*)⟫")
NAMED = re.compile(r"⟪@(\w+)¦([^⟪⟫]*)⟫")


def template_names(content):
    """Named alternatives of an assessment: name -> options."""
    names = {}

    def scan(s):
        for m in NAMED.finditer(s):
            names.setdefault(m.group(1), m.group(2).split("¦"))

    for it in content["items"]:
        for k in ("new", "text"):
            if k in it:
                scan(it[k])
    notes = content["notes"]
    scan(notes["title"])
    for head, sents in notes["sections"]:
        scan(head)
        for s in sents:
            scan(s)
    return names


def expand(text, names, rng):
    def sub(m):
        parts = m.group(1).split("¦")
        if parts[0].startswith("@"):
            return names[parts[0][1:]]
        return parts[rng.randrange(len(parts))]

    while "⟪" in text:
        text = ALT.sub(sub, text)
    return text


def go_tabs(s):
    out = []
    for line in s.split("\n"):
        n = len(line) - len(line.lstrip(" "))
        out.append("\t" * (n // 4) + " " * (n % 4) + line[n:])
    return "\n".join(out)


def is_word(c):
    return c.isalnum() or c == "_"


def minimal_diff(old, new):
    """(prefix, deleted, inserted): the part of `old` a person would select and retype. The cut
    points are moved back to word boundaries, as people select whole words."""
    n = min(len(old), len(new))
    p = 0
    while p < n and old[p] == new[p]:
        p += 1
    while 0 < p and is_word(old[p - 1]) and ((p < len(old) and is_word(old[p])) or (p < len(new) and is_word(new[p]))):
        p -= 1
    s = 0
    while s < n - p and old[len(old) - 1 - s] == new[len(new) - 1 - s]:
        s += 1
    while 0 < s and is_word(old[len(old) - s]) and (
        (len(old) - s - 1 >= p and is_word(old[len(old) - s - 1])) or (len(new) - s - 1 >= p and is_word(new[len(new) - s - 1]))
    ):
        s -= 1
    return p, len(old) - p - s, new[p:len(new) - s]


# ---------------------------------------------------------------------------------------------
# The keyboard: a US QWERTY layout, fingers and hands (for digraph timing and typos)
# ---------------------------------------------------------------------------------------------

ROWS = ["`1234567890-=", "qwertyuiop[]\\", "asdfghjkl;'", "zxcvbnm,./"]
FINGERS = [
    [0, 0, 1, 2, 3, 3, 4, 4, 5, 6, 7, 7, 7],
    [0, 1, 2, 3, 3, 4, 4, 5, 6, 7, 7, 7, 7],
    [0, 1, 2, 3, 3, 4, 4, 5, 6, 7, 7],
    [0, 1, 2, 3, 3, 4, 4, 5, 6, 7],
]
SHIFTED = dict(zip('~!@#$%^&*()_+{}|:"<>?', "`1234567890-=[]\\;',./"))
KEYPOS = {}
for _r, _row in enumerate(ROWS):
    for _c, _ch in enumerate(_row):
        KEYPOS[_ch] = (_r, _c, FINGERS[_r][_c])
KEYPOS[" "] = (4, 5, 8)
KEYPOS["\n"] = (2, 12, 7)
KEYPOS["\t"] = (1, -1, 0)
KEYPOS["\b"] = (0, 13, 7)
# Letter frequency rank in English and code (for hunt-and-peck search time).
FREQ_ORDER = "etaoinsrhldcumfpgwybvkxjqz"
FREQ_RANK = {c: i / 25 for i, c in enumerate(FREQ_ORDER)}
COMMON_BIGRAMS = set("th he in er an re on at en nd st es or te ti ar ed is it al nt ng se ou le io ra ro de ri co ve".split())
COMMON_WORDS = set("the and is to of in it for if def return self const let func err nil not none true false from import "
                   "with as on be this that we a an at by or new type string int var await async select where".split())


def base_key(c):
    lc = c.lower()
    if lc in KEYPOS:
        return lc
    return SHIFTED.get(c, None)


def needs_shift(c):
    return c in SHIFTED or (c.isalpha() and c.isupper() and c.lower() != c)


def char_kc(c):
    if c == "\n":
        return "enter"
    if c in " \t":
        return "whitespace"
    if c.isalpha():
        return "letter"
    if c.isdigit():
        return "digit"
    return "punctuation"


def neighbour(rng, c):
    """A key next to `c` (a slip of the finger), same case."""
    b = base_key(c)
    if b is None or b not in KEYPOS or KEYPOS[b][0] > 3:
        return c
    r, col, _ = KEYPOS[b]
    cands = []
    for dr, dc in ((0, -1), (0, 1), (-1, 0), (-1, 1), (1, 0), (1, -1)):
        rr, cc = r + dr, col + dc
        if 0 <= rr < 4 and 0 <= cc < len(ROWS[rr]):
            k = ROWS[rr][cc]
            if k.isalpha() == b.isalpha():
                cands.append(k)
    if not cands:
        return c
    k = cands[rng.randrange(len(cands))]
    return k.upper() if c.isupper() else k


# ---------------------------------------------------------------------------------------------
# The workspace, and the editor's behaviour (CodeMirror-like: auto-indent on Enter, Backspace in
# leading whitespace removes one indent unit, Tab indents the line)
# ---------------------------------------------------------------------------------------------

def indent_unit(path):
    ext = os.path.splitext(path)[1]
    return {".go": "\t", ".ts": "  ", ".json": "  ", ".yaml": "  ", ".yml": "  ", ".md": "  "}.get(ext, "    ")


def opener(path, before):
    b = before.rstrip()
    if not b:
        return False
    ext = os.path.splitext(path)[1]
    if ext == ".py":
        return b.endswith((":", "(", "[", "{"))
    if ext in (".yaml", ".yml"):
        return b.endswith(":")
    if ext == ".md":
        return False
    return b.endswith(("{", "(", "["))


class Marker:
    __slots__ = ("file", "start", "end", "fix", "kind")

    def __init__(self, file, start, end, fix, kind):
        self.file, self.start, self.end, self.fix, self.kind = file, start, end, fix, kind


class Workspace:
    def __init__(self, files):
        self.files = dict(files)
        self.markers = []

    def apply(self, file, pos, deleted, inserted):
        assert file in self.files, f"edit of unknown file {file}"
        text = self.files[file]
        assert 0 <= pos and deleted >= 0 and pos + deleted <= len(text), f"edit outside {file}: {pos}+{deleted} > {len(text)}"
        self.files[file] = text[:pos] + inserted + text[pos + deleted:]
        d = len(inserted) - deleted
        end = pos + deleted
        for m in self.markers:
            if m.file != file:
                continue
            # text inserted at a marker's start goes before it, at its end after it
            if m.start >= end:
                m.start += d
            elif m.start > pos:
                m.start = pos
            if m.end > end or (m.end == end and deleted > 0):
                m.end += d
            elif m.end > pos:
                m.end = pos
            if m.end < m.start:
                m.end = m.start

    def create(self, file, content=""):
        assert file not in self.files, f"{file} exists"
        self.files[file] = content


def line_start(text, pos):
    return text.rfind("\n", 0, pos) + 1


def line_end(text, pos):
    e = text.find("\n", pos)
    return len(text) if e < 0 else e


def leading_ws(s):
    return s[: len(s) - len(s.lstrip(" \t"))]


# ---------------------------------------------------------------------------------------------
# The recorder: events in the order the page numbers them, on a true timeline (ms since the page
# loaded, before any rounding). Cursor events are throttled as the capture does (250 ms, latest
# position wins, a pending one released before any other event).
# ---------------------------------------------------------------------------------------------

class Rec:
    CURSOR_MS = 250.0
    HOLD_MS = 5000.0

    def __init__(self):
        self.ev = []          # [t, data, glue]
        self.faces = []       # [t, data]
        self.t_last = 0.0
        self.cur_pending = None
        self.cur_last = -1e18
        self.open_keys = []   # keystroke data dicts whose key-up may still be lost
        self.nkeys = 0
        self.reloads = []     # (t, mode)

    def _flush_cursor(self, t):
        if self.cur_pending is None:
            return
        pt, data = self.cur_pending
        self.cur_pending = None
        fire = max(pt, self.cur_last + self.CURSOR_MS)
        at = min(fire, t)
        at = max(at, self.t_last)
        self.ev.append([at, data, False])
        self.t_last = at
        self.cur_last = at

    def _add(self, t, data, glue=False):
        self._flush_cursor(t)
        if t < self.t_last:
            t = self.t_last
        self.ev.append([t, data, glue])
        self.t_last = t
        return data

    def key(self, down, up, kc, phys=True):
        data = {"type": "keystroke", "_down": down, "_up": up, "key_class": kc, "_phys": phys}
        self._add(down, data)
        self.nkeys += 1
        if up is not None:
            self.open_keys.append(data)
            if len(self.open_keys) > 12:
                self.open_keys.pop(0)
        return data

    def edit(self, t, file, pos, deleted, inserted, origin, glue=True):
        self._add(t, {"type": "edit", "file": file, "position": pos, "deleted": deleted, "inserted": inserted,
                      "origin": origin}, glue)

    def cursor(self, t, file, pos, sel=None):
        data = {"type": "cursor", "file": file, "position": pos}
        if sel is not None and sel != pos:
            data["selection_end"] = sel
        if self.cur_pending is None and t - self.cur_last >= self.CURSOR_MS:
            self._flush_cursor(t)
            if t < self.t_last:
                t = self.t_last
            self.ev.append([t, data, False])
            self.t_last = t
            self.cur_last = t
        else:
            self.cur_pending = (t, data)

    def _lose_open_keys(self, t):
        for d in self.open_keys:
            if d["_up"] is not None and d["_down"] <= t < d["_up"]:
                d["_up"] = None
        self.open_keys = []

    def focus_lost(self, t):
        self._lose_open_keys(t)
        self._add(t, {"type": "focus_lost"})

    def focus_regained(self, t):
        self._add(t, {"type": "focus_regained"})

    def file_created(self, t, file, content=""):
        self._add(t, {"type": "file_created", "file": file, "content": content})

    def code_run(self, t, command, exit_code, passed, failed, duration):
        d = {"type": "code_run", "command": command, "exit_code": exit_code}
        if passed is not None:
            d["tests_passed"] = passed
            d["tests_failed"] = failed
        d["duration_ms"] = int(duration)
        self._add(t, d)

    def reload(self, t, mode, new_clock=None, load_delay=0.0):
        self._lose_open_keys(t)
        self._flush_cursor(t)
        self.reloads.append((t, mode, new_clock, load_delay))

    def face(self, t, data):
        self.faces.append([t, data])

    def finish(self):
        self._flush_cursor(1e18)


# ---------------------------------------------------------------------------------------------
# Clocks: what the page's clocks make of the true times (keyboard polling, the browser's timer
# coarsening, the offset of performance.timeOrigin, Date.now() for ts, reloads)
# ---------------------------------------------------------------------------------------------

BROWSERS = [
    # name, weight, timer resolution ms, rounding, wall-clock resolution ms, fractional origin
    ("chrome", 0.50, 0.1, "jitter", 1, True),
    ("chrome-isolated", 0.05, 0.005, "jitter", 1, True),
    ("edge", 0.06, 0.1, "jitter", 1, True),
    ("firefox", 0.13, 1.0, "floor", 1, True),
    ("safari", 0.12, 1.0, "floor", 1, True),
    ("firefox-rfp", 0.035, 100.0, "floor", 100, False),
    ("firefox-rfp-old", 0.02, 16.67, "floor", 16.67, False),
    ("firefox-old", 0.02, 2.0, "floor", 1, True),
]
KEYBOARDS = [("usb-125hz", 0.45, 8.0), ("usb-1000hz", 0.22, 1.0), ("laptop-internal", 0.33, 0.0)]


def pick(rng, table):
    x = rng.random() * sum(r[1] for r in table)
    for r in table:
        x -= r[1]
        if x <= 0:
            return r
    return table[-1]


class Clock:
    def __init__(self, rng, browser=None, keyboard=None):
        self.rng = rng
        b = browser or pick(rng, BROWSERS)
        self.browser, _, self.res, self.mode, self.wall_res, frac = b
        self.frac = round(rng.random(), 3) if frac else 0.0
        k = keyboard or pick(rng, KEYBOARDS)
        self.keyboard, _, self.poll = k
        self.phase = rng.random() * self.poll if self.poll else 0.0
        self.os_jitter = rng.uniform(0.03, 0.4)
        self.lat_med = rng.uniform(0.6, 4.0)          # input handling latency for Date.now()
        self.drift_ppm = rng.gauss(0, 15)              # Date vs performance clock drift
        self.segments = [(0.0, 0.0, self.frac, self)]  # (from t, load t, origin fraction, clock)

    def round_timer(self, x):
        if self.mode == "jitter":
            q = math.floor(x / self.res)
            if self.rng.random() < x / self.res - q:
                q += 1
            return q * self.res
        return math.floor(x / self.res + 1e-9) * self.res


def serialize(rec, clock, wall0_ms, started_ms):
    """The session's events as the page sends them: seq, ts (Date.now() at capture) and rounded
    monotonic times. `wall0_ms` is the wall-clock time of page load (true t = 0)."""
    rng = clock.rng
    # Merge face checks in, never between a key press and the edit it causes.
    faces = sorted(rec.faces, key=lambda f: f[0])
    merged = []
    fi = 0
    for ev in rec.ev:
        if not ev[2]:
            while fi < len(faces) and faces[fi][0] <= ev[0]:
                merged.append(faces[fi])
                fi += 1
        merged.append(ev)
    merged.extend(faces[fi:])
    reloads = list(rec.reloads)
    seg_clock, seg_load, seg_off = clock, 0.0, clock.frac
    ri = 0
    out = []
    last_ts = started_ms
    last_down = -1.0
    for seq, ev in enumerate(merged, 1):
        t, data = ev[0], ev[1]
        while ri < len(reloads) and reloads[ri][0] <= t:
            rt, mode, new_clock, load_delay = reloads[ri]
            if mode == "restart":
                # storage lost (another device or a private window): a new epoch at the new page load
                seg_clock = new_clock
                seg_load = rt + load_delay
                seg_off = seg_clock.frac
                last_down = -1.0
            # otherwise the epoch kept in storage makes the monotonic clock continue
            ri += 1
        lat = seg_clock.lat_med * math.exp(rng.gauss(0, 0.4))
        wall = wall0_ms + t + lat + t * seg_clock.drift_ppm * 1e-6
        if seg_clock.wall_res > 1:
            wall = math.floor(wall / seg_clock.wall_res) * seg_clock.wall_res
        ts_ms = max(int(math.floor(wall)), last_ts)
        last_ts = ts_ms
        if data["type"] == "keystroke":
            d = {"type": "keystroke"}

            def mono(x, phys):
                if phys and seg_clock.poll:
                    x = seg_clock.phase + math.ceil((x - seg_clock.phase) / seg_clock.poll) * seg_clock.poll
                x += rng.expovariate(1.0 / seg_clock.os_jitter)
                return round(max(0.0, seg_clock.round_timer(x - seg_load) + seg_off), 3)

            down = max(mono(data["_down"], data["_phys"]), last_down)
            last_down = down
            d["down_ms"] = down
            if data["_up"] is not None and data["_up"] - data["_down"] <= Rec.HOLD_MS:
                d["up_ms"] = max(mono(data["_up"], data["_phys"]), down)
            d["key_class"] = data["key_class"]
            data = d
        out.append({"seq": seq, "ts": iso_ms(ts_ms), "data": data})
    return out


def iso_ms(ms):
    dt = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=ms)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def iso_s(ms):
    dt = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=ms)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")
# ---------------------------------------------------------------------------------------------
# Human motor timing (see README: Dhakal et al. 2018; Salthouse 1986; Gentner 1983; ...)
# ---------------------------------------------------------------------------------------------

OS_REPEAT = [("windows", 0.5, 500.0, 33.3), ("macos", 0.3, 375.0, 83.0), ("linux", 0.2, 600.0, 40.0)]


def U(rng, lo, hi):
    return rng.uniform(lo, hi)


class Person:
    """One person's typing and working habits. Drawn per session from a profile."""

    phys = True

    def __init__(self, rng, profile):
        self.rng = rng
        self.profile = profile
        self.irng = random.Random(rng.getrandbits(48))   # per-person idiosyncrasies, stable
        self._dig = {}
        self._hid = {}
        r = rng
        # defaults: an average office typist (Dhakal et al.: ~52 wpm, IKI ~ 240 ms, hold ~ 115 ms)
        self.iki = U(r, 165, 240)
        self.sigma = U(r, 0.28, 0.40)
        self.tau = U(r, 25, 70)
        self.hold_med = U(r, 95, 130)
        self.hold_sigma = U(r, 0.17, 0.27)
        self.alt = U(r, 0.55, 0.75)
        self.same_finger = U(r, 1.25, 1.45)
        self.same_key = U(r, 0.95, 1.15)
        self.numrow = U(r, 1.15, 1.40)
        self.sym = U(r, 1.2, 1.55)
        self.bigram = U(r, 0.68, 0.86)
        self.word_fam = U(r, 0.82, 0.95)
        self.word_init = U(r, 20, 80)
        self.search = 0.0
        self.bs_factor = U(r, 0.6, 0.85)
        self.err = U(r, 0.022, 0.040)
        self.unnoticed = U(r, 0.03, 0.08)
        self.detect_now = U(r, 0.35, 0.6)
        self.detect_med = U(r, 250, 450)
        self.rho = U(r, 0.95, 0.985)
        self.drift_sd = U(r, 0.08, 0.16)
        self.warm = U(r, 0.0, 0.18)
        self.fatigue = U(r, 0.0, 0.10)
        self.shift_lead_med = U(r, 55, 100)
        self.shift_lag_med = U(r, 25, 70)
        self.shift_run = U(r, 0.4, 0.85)
        self.uses_tab = r.random() < 0.85
        self.caps_p = 0.0
        # habits
        self.autorepeat_p = U(r, 0.1, 0.5)
        self.ctrl_bs_p = U(r, 0.0, 0.4)
        self.nav_keys_p = U(r, 0.1, 0.4)
        self.autocomplete_p = U(r, 0.0, 0.25) if r.random() < 0.6 else 0.0
        self.copy_line_p = U(r, 0.0, 0.06)
        self.lookup_p = U(r, 0.15, 0.45)
        self.lookup_paste_p = U(r, 0.002, 0.012)
        self.alt_tab_p = U(r, 0.0, 0.6)
        self.draft_p = U(r, 0.008, 0.025)
        self.phrase_p = U(r, 0.02, 0.08)
        self.delayed_p = U(r, 0.002, 0.008)
        self.debug_p = U(r, 0.0, 0.25)
        self.afterthought_p = U(r, 0.05, 0.25)
        self.undo_p = U(r, 0.0, 0.03)
        self.save_p = U(r, 0.0, 0.06) if r.random() < 0.5 else 0.0
        self.run_p = U(r, 0.3, 0.7)
        self.break_p = U(r, 0.0, 0.12)
        # pauses (ms): writing-process research: longer at higher-level boundaries
        self.line_med = U(r, 800, 2000)
        self.tok_p = U(r, 0.04, 0.10)
        self.tok_med = U(r, 300, 600)
        self.think_p = U(r, 0.03, 0.08)
        self.think_med = U(r, 8000, 30000)
        self.word_p = U(r, 0.05, 0.12)
        self.word_med = U(r, 300, 600)
        self.sent_med = U(r, 1100, 2600)
        self.para_med = U(r, 3000, 9000)
        self.burst_p = U(r, 0.015, 0.04)
        self.item_med = U(r, 15000, 60000)
        self.read_med = U(r, 120000, 420000)
        self.prose_speed = 1.0
        self.prose_err = 1.0
        self.dead_keys = False
        os_ = pick(r, OS_REPEAT)
        self.repeat_delay = os_[2] * U(r, 0.9, 1.1)
        self.repeat_interval = os_[3] * U(r, 0.95, 1.05)
        self.os = os_[0]
        self.apply_profile(profile)
        self.d = 0.0
        self.nkeys = 0

    def apply_profile(self, profile):
        r = self.rng
        if profile in ("fast_touch_typist",):
            self.iki = U(r, 95, 135)
            self.sigma = U(r, 0.24, 0.34)
            self.tau = U(r, 12, 40)
            self.hold_med = U(r, 85, 115)
            self.alt = U(r, 0.45, 0.62)
            self.err = U(r, 0.018, 0.032)
            self.ctrl_bs_p = U(r, 0.3, 0.8)
            self.nav_keys_p = U(r, 0.3, 0.7)
            self.line_med = U(r, 600, 1500)
            self.shift_lead_med = U(r, 35, 70)
            self.autorepeat_p = U(r, 0.2, 0.6)
            self.item_med = U(r, 10000, 40000)
        elif profile in ("slow_hunt_and_peck",):
            self.iki = U(r, 250, 380)
            self.sigma = U(r, 0.35, 0.50)
            self.tau = U(r, 80, 200)
            self.hold_med = U(r, 100, 160)
            self.hold_sigma = U(r, 0.22, 0.35)
            self.alt = U(r, 0.93, 1.0)
            self.same_finger = U(r, 1.0, 1.12)
            self.search = U(r, 0.25, 0.6)
            self.sym = U(r, 1.4, 1.9)
            self.numrow = U(r, 1.3, 1.7)
            self.err = U(r, 0.03, 0.06)
            self.shift_lead_med = U(r, 100, 220)
            self.shift_run = U(r, 0.1, 0.4)
            self.uses_tab = r.random() < 0.5
            self.caps_p = U(r, 0.3, 0.9)
            self.ctrl_bs_p = 0.0
            self.nav_keys_p = U(r, 0.0, 0.15)
            self.autorepeat_p = U(r, 0.0, 0.25)
            self.line_med = U(r, 1500, 3500)
            self.word_init = U(r, 60, 200)
            self.item_med = U(r, 20000, 70000)
        elif profile in ("non_native_reviser",):
            self.prose_speed = U(r, 1.2, 1.5)
            self.prose_err = U(r, 1.2, 1.6)
            self.draft_p = U(r, 0.03, 0.07)
            self.phrase_p = U(r, 0.10, 0.22)
            self.delayed_p = U(r, 0.01, 0.025)
            self.burst_p = U(r, 0.05, 0.10)
            self.word_p = U(r, 0.12, 0.22)
            self.sent_med = U(r, 2000, 4500)
            self.lookup_p = U(r, 0.35, 0.7)
            self.afterthought_p = U(r, 0.15, 0.35)
            self.dead_keys = r.random() < 0.5
            self.undo_p = U(r, 0.01, 0.05)
        elif profile in ("keyboard_navigator",):
            self.iki = U(r, 120, 180)
            self.nav_keys_p = U(r, 0.75, 0.95)
            self.ctrl_bs_p = U(r, 0.5, 0.9)
            self.autorepeat_p = U(r, 0.4, 0.8)
            self.save_p = U(r, 0.03, 0.10)
            self.autocomplete_p = U(r, 0.1, 0.35)
        elif profile in ("test_and_prose_writer",):
            self.run_p = U(r, 0.6, 0.95)
            self.debug_p = U(r, 0.1, 0.35)

    # -- timing --------------------------------------------------------------------------------
    def idio(self, a, b):
        k = (a, b)
        v = self._dig.get(k)
        if v is None:
            v = math.exp(self.irng.gauss(0, 0.15))
            self._dig[k] = v
        return v

    def hidio(self, k):
        v = self._hid.get(k)
        if v is None:
            v = math.exp(self.irng.gauss(0, 0.10))
            self._hid[k] = v
        return v

    def gap(self, a, b, ctx, desk):
        """Key-down to key-down interval before `b` (motor only; cognitive pauses are added by the
        writer). `ctx`: (word_start, familiar_word, post_error, prose)."""
        r = self.rng
        self.nkeys += 1
        self.d = self.rho * self.d + r.gauss(0, self.drift_sd * math.sqrt(1 - self.rho * self.rho))
        m = math.exp(self.d)
        m *= 1 + self.warm * math.exp(-self.nkeys / 250.0) + self.fatigue * desk.now / 3.6e6
        if b == "\b":
            g = self.iki * self.bs_factor * m * math.exp(r.gauss(0, self.sigma * 0.8))
            return max(g, 45.0)
        if b is None:   # navigation and other named keys
            g = self.iki * 1.25 * m * math.exp(r.gauss(0, self.sigma)) + r.expovariate(1 / self.tau)
            return max(g, 40.0)
        ba = base_key(a) if a else None
        bb = base_key(b)
        pa = KEYPOS.get(ba) if ba else None
        pb = KEYPOS.get(bb) if bb else None
        if pb is not None:
            rb, cb, fb = pb
            if pa is not None:
                ra, ca, fa = pa
                ha = 0 if fa < 4 else (1 if fa < 8 else 2)
                hb = 0 if fb < 4 else (1 if fb < 8 else 2)
                if ba == bb:
                    m *= self.same_key
                elif fa == fb and fa < 8:
                    m *= self.same_finger * (1 + 0.08 * abs(ra - rb))
                elif ha != hb or ha == 2:
                    m *= self.alt
                else:
                    m *= 1 + 0.05 * abs(ra - rb)
            if rb == 0:
                m *= self.numrow
        else:
            m *= 1.6   # a key outside the layout (é, →): slower
        if not (b.isalnum() or b in " \n\t"):
            m *= self.sym
        if a and (a + b).lower() in COMMON_BIGRAMS:
            m *= self.bigram
        if self.search:
            m *= 1 + self.search * FREQ_RANK.get(b.lower(), 1.2)
        m *= self.idio(ba, bb)
        g = 0.0
        if ctx is not None:
            ws, fam, post, prose = ctx
            if fam:
                m *= self.word_fam
            if post:
                m *= 1.25
            if prose:
                m *= self.prose_speed
            if ws:
                g += self.word_init * r.random() * 2
        g += self.iki * m * math.exp(r.gauss(0, self.sigma)) + r.expovariate(1 / self.tau)
        return max(g, 22.0 if self.search == 0 else 60.0)

    def hold(self, c, kc, desk):
        f = {"whitespace": 1.08, "enter": 1.1, "backspace": 0.92, "navigation": 1.05}.get(kc, 1.0)
        k = base_key(c) if c else kc
        h = self.hold_med * f * self.hidio(k) * math.exp(self.rng.gauss(0, self.hold_sigma))
        return clamp(h, 30.0, 650.0)

    def keep_shift(self, desk):
        return self.rng.random() < self.shift_run

    def shift_lead(self, desk):
        return ln(self.rng, self.shift_lead_med, 0.35)

    def shift_up(self, shift_down, last_down, last_up):
        return last_up + ln(self.rng, self.shift_lag_med, 0.5) - 20.0

    def chord_pre(self):
        return ln(self.rng, 320, 0.5)

    def chord_gap(self):
        return ln(self.rng, 115, 0.4)

    def chord_release(self):
        return ln(self.rng, 70, 0.5)


# ---------------------------------------------------------------------------------------------
# Scripted typing: how an ordinary programmer would build a typing bot (pyautogui, xdotool,
# AutoHotkey, pynput, an Arduino/Rubber-Ducky style USB injector)
# ---------------------------------------------------------------------------------------------

PLATFORMS = [("linux", 0.35), ("mac", 0.2), ("win_hr", 0.25), ("win_coarse", 0.12), ("hid", 0.08)]


class Bot:
    phys = False

    def __init__(self, rng, platform=None):
        self.rng = rng
        self.platform = platform or pick(rng, PLATFORMS)[0]
        self.phys = self.platform == "hid"
        self.nkeys = 0

    def realize(self, ms):
        r = self.rng
        p = self.platform
        if ms <= 0:
            return r.uniform(0.01, 0.25)
        if p == "linux":
            return ms + 0.06 + r.expovariate(1 / 0.08) + (r.uniform(1, 5) if r.random() < 0.004 else 0.0)
        if p == "mac":
            return ms + r.uniform(0.1, 0.5) + r.expovariate(1 / 0.25)
        if p == "win_hr":
            return ms + r.uniform(0.4, 1.2)
        if p == "win_coarse":
            return math.ceil(ms / 15.625 - 1e-9) * 15.625 + r.uniform(0.0, 0.4)
        return ms + r.uniform(0.0, 0.03)   # hid: its own delay(), quantised by USB polling later

    # what a subclass overrides
    def req_gap(self, a, b, ctx):
        return 100.0

    def req_hold(self, c, kc):
        return 0.0

    def gap(self, a, b, ctx, desk):
        self.nkeys += 1
        return self.realize(self.req_gap(a, b, ctx))

    def hold(self, c, kc, desk):
        return max(0.02, self.realize(self.req_hold(c, kc)))

    def keep_shift(self, desk):
        return False

    def shift_lead(self, desk):
        return self.rng.uniform(0.02, 0.4)

    def shift_up(self, shift_down, last_down, last_up):
        return last_up + self.rng.uniform(0.02, 0.4)

    def chord_pre(self):
        return 100.0

    def chord_gap(self):
        return 1.0

    def chord_release(self):
        return 1.0


class ConstantBot(Bot):
    """pyautogui.write(text, interval=d) / xdotool type --delay d / AHK SetKeyDelay."""

    def __init__(self, rng, variant):
        super().__init__(rng)
        self.variant = variant
        if variant == "pyautogui_interval":
            self.d = rng.choice([20, 30, 50, 50, 80, 100, 120, 150])
            self.h = 0.0
        elif variant == "xdotool_delay":
            self.platform, self.phys = "linux", False
            self.d = rng.choice([12, 40, 60, 80, 100, 150])
            self.h = self.d / 2
            self.d = self.d / 2
        elif variant == "ahk_keydelay":
            self.platform = "win_coarse"
            self.d = rng.choice([10, 20, 50, 70, 100])
            self.h = rng.choice([0, 10, 30])
        elif variant == "usb_injector":
            self.platform, self.phys = "hid", True
            self.d = rng.choice([40, 60, 90, 120, 200])
            self.h = rng.choice([5, 8, 20])
        else:  # line_pause: constant delay, plus a constant pause at each new line
            self.d = rng.choice([60, 90, 120, 180, 250])
            self.h = rng.choice([0, 15, 40])
            self.nl = rng.choice([500, 1000, 1500, 2000])
        self.nl = getattr(self, "nl", 0)

    def req_gap(self, a, b, ctx):
        g = self.d + (self.h if self.variant in ("xdotool_delay",) else 0)
        if self.variant == "ahk_keydelay":
            g = self.d + self.h
        if self.nl and ctx is not None and ctx[0] == "line":
            g += self.nl
        return g

    def req_hold(self, c, kc):
        return self.h


class UniformBot(Bot):
    """time.sleep(random.uniform(a, b)) between keys."""

    def __init__(self, rng, variant):
        super().__init__(rng)
        self.variant = variant
        lo, hi = rng.choice([(50, 150), (80, 250), (30, 300), (100, 400), (40, 120), (60, 200)])
        self.lo, self.hi = lo, hi
        self.hold_range = rng.choice([(0, 0), (20, 80), (30, 120), (50, 50)])
        self.word = (200, 600) if variant in ("word_pauses", "word_and_line_pauses") else None
        self.line = (500, 2500) if variant in ("line_pauses", "word_and_line_pauses") else None

    def req_gap(self, a, b, ctx):
        r = self.rng
        g = r.uniform(self.lo, self.hi)
        if ctx is not None:
            if self.word and ctx[0] == "word":
                g += r.uniform(*self.word)
            if self.line and ctx[0] == "line":
                g += r.uniform(*self.line)
        return g

    def req_hold(self, c, kc):
        return self.rng.uniform(*self.hold_range)


class IIDBot(Bot):
    """Each delay and hold drawn independently from a human-looking distribution."""

    def __init__(self, rng, variant):
        super().__init__(rng)
        self.variant = variant
        r = rng
        self.med = U(r, 140, 260)
        self.sig = U(r, 0.35, 0.65)
        self.hmed = U(r, 80, 120)
        self.hsig = U(r, 0.15, 0.3)
        self.k = r.choice([2.0, 3.0, 4.0])
        self.mu, self.sd, self.tau = U(r, 110, 180), U(r, 20, 45), U(r, 50, 140)
        self.lead = variant in ("lognormal_with_shift_lead", "mixture_pauses")

    def req_gap(self, a, b, ctx):
        r = self.rng
        v = self.variant
        if v in ("lognormal", "lognormal_with_shift_lead"):
            return ln(r, self.med, self.sig)
        if v == "gamma":
            return r.gammavariate(self.k, self.med / self.k)
        if v == "ex_gaussian":
            return max(20.0, r.gauss(self.mu, self.sd) + r.expovariate(1 / self.tau))
        if v == "clipped_normal":
            return max(30.0, r.gauss(self.med, self.med * 0.35))
        if v == "weibull":
            return r.weibullvariate(self.med * 1.1, 1.8)
        # mixture_pauses: mostly typing, sometimes a long "thinking" pause, drawn independently
        if r.random() < 0.04:
            return ln(r, 1800, 0.8)
        return ln(r, self.med, self.sig)

    def req_hold(self, c, kc):
        r = self.rng
        if self.variant == "clipped_normal":
            return max(10.0, r.gauss(self.hmed, 25))
        return ln(r, self.hmed, self.hsig)

    def shift_lead(self, desk):
        if self.lead:
            return ln(self.rng, 70, 0.4)
        return super().shift_lead(desk)


class HumanizedBot(Bot):
    """A script written to look human: word bursts, pauses at punctuation and lines, typos fixed
    with backspace, drift of speed, holds that vary by key, a shift lead."""

    def __init__(self, rng, variant):
        super().__init__(rng, rng.choice(["linux", "mac", "win_hr"]))
        self.variant = variant
        r = rng
        self.med = U(r, 150, 250)
        self.sig = U(r, 0.25, 0.45)
        self.word_pause = (U(r, 150, 300), 0.6)
        self.line_pause = (U(r, 600, 2500), 0.7)
        self.punct = U(r, 1.2, 1.8)
        self.typo_p = U(r, 0.01, 0.04)
        self.typo_lag = variant in ("digraph_table", "process_faker")
        self.speed = 1.0
        self.think_p = 0.0
        self.hmed = U(r, 80, 120)
        self.table = {}
        if variant == "fatigue_drift":
            self.think_p = U(r, 0.01, 0.04)
        if variant == "process_faker":
            self.think_p = U(r, 0.02, 0.06)

    def req_gap(self, a, b, ctx):
        r = self.rng
        v = self.variant
        if v == "fatigue_drift":
            self.speed = clamp(self.speed * math.exp(r.gauss(0.0003, 0.02)), 0.7, 1.6)
        if v == "digraph_table" and a is not None and b is not None:
            k = (a.lower(), b.lower())
            if k not in self.table:
                same_hand = (base_key(a) or "") in "qwertasdfgzxcvb12345" and (base_key(b) or "") in "qwertasdfgzxcvb12345"
                self.table[k] = self.med * (1.15 if same_hand else 0.9) * math.exp(r.gauss(0, 0.2))
            g = ln(r, self.table[k], self.sig * 0.8)
        elif v == "word_bursts" and ctx is not None and ctx[0] == "word":
            self.speed = math.exp(r.gauss(0, 0.2))   # each word at its own pace
            g = ln(r, self.med * self.speed, self.sig)
        else:
            g = ln(r, self.med * self.speed, self.sig)
        if b is not None and not (b.isalnum() or b in " \n\t"):
            g *= self.punct
        if ctx is not None:
            if ctx[0] == "word":
                g += ln(r, *self.word_pause)
            elif ctx[0] == "line":
                g += ln(r, *self.line_pause)
                if self.think_p and r.random() < self.think_p * 5:
                    g += r.expovariate(1 / 12000)
            if self.think_p and r.random() < self.think_p * 0.1:
                g += r.expovariate(1 / 6000)
        return g

    def req_hold(self, c, kc):
        r = self.rng
        f = 1.1 if kc in ("whitespace", "enter") else 1.0
        return ln(r, self.hmed * f, 0.25)

    def shift_lead(self, desk):
        return ln(self.rng, 80, 0.35)

    def shift_up(self, shift_down, last_down, last_up):
        return last_up + ln(self.rng, 40, 0.5)


class ReplayBot(Bot):
    """Replays the recorded (gap, hold) sequence of another session, in order."""

    def __init__(self, rng, seq, variant):
        super().__init__(rng, rng.choice(["linux", "mac", "win_hr"]))
        self.seq = seq
        self.i = 0
        self.variant = variant
        self._lead = 0.0
        self._shift_hold = 0.0

    def _next(self):
        g, h = self.seq[self.i % len(self.seq)]
        self.i += 1
        return g, h

    def gap(self, a, b, ctx, desk):
        self.nkeys += 1
        g, h = self._next()
        self._hold = h
        if b is not None and needs_shift(b):
            g2, h2 = self._next()
            self._lead = g2
            self._shift_hold = h
            self._hold = h2
            return self.realize(g + g2)
        return self.realize(g)

    def hold(self, c, kc, desk):
        return max(0.02, self.realize(self._hold))

    def shift_lead(self, desk):
        return self._lead

    def shift_up(self, shift_down, last_down, last_up):
        return shift_down + self._shift_hold
# ---------------------------------------------------------------------------------------------
# The desk: the candidate's page. Primitives a person (or a script) performs, each turned into
# the telemetry the capture would send, with the workspace kept in step.
# ---------------------------------------------------------------------------------------------

class Desk:
    def __init__(self, rng, ws, rec, timing, t0):
        self.rng = rng
        self.ws = ws
        self.rec = rec
        self.timing = timing
        self.now = t0
        self.file = None
        self.pos = 0
        self.anchor = None
        self.cursors = {}
        self.prev = None
        self.shift = None
        self.shift_last = None
        self.caps = False
        self.face_segments = []
        self.t0 = t0

    # -- state ------------------------------------------------------------------------------------
    def text(self):
        return self.ws.files[self.file]

    def sel(self):
        if self.anchor is None:
            return self.pos, self.pos
        return min(self.pos, self.anchor), max(self.pos, self.anchor)

    def wait(self, ms):
        self.release_shift()
        self.now += ms

    def segment(self, t0, t1, state):
        self.face_segments.append((t0, t1, state))

    # -- keys -------------------------------------------------------------------------------------
    def release_shift(self, t_next=None):
        if self.shift is None:
            return
        sd = self.shift
        ld, lu = self.shift_last
        up = self.timing.shift_up(sd["_down"], ld, lu)
        if t_next is not None:
            up = min(up, t_next - 1.0)
        up = max(up, ld + 1.0, sd["_down"] + 1.0)
        sd["_up"] = up
        self.rec.open_keys.append(sd)
        self.shift = None

    def _key(self, c, kc, ctx=None, shift_ok=True):
        tm = self.timing
        g = tm.gap(self.prev, c, ctx, self)
        t = self.now + g
        want = shift_ok and c is not None and needs_shift(c) and not (self.caps and c.isalpha())
        if self.shift is not None and (not want or not tm.keep_shift(self)):
            self.release_shift(t)
        if want and self.shift is None:
            lead = tm.shift_lead(self)
            ts = t - lead
            if ts <= self.now + 0.01:
                ts = self.now + (t - self.now) * 0.4
            self.shift = self.rec.key(ts, None, "modifier", tm.phys)
        h = tm.hold(c, kc, self)
        d = self.rec.key(t, t + h, kc, tm.phys)
        if self.shift is not None:
            self.shift_last = (t, t + h)
        self.now = t
        self.prev = c
        return d

    def _apply(self, pos, deleted, inserted, origin, glue=True):
        self.ws.apply(self.file, pos, deleted, inserted)
        t = self.now + self.rng.uniform(0.05, 1.5)
        self.rec.edit(t, self.file, pos, deleted, inserted, origin, glue)

    def type_char(self, c, ctx=None):
        self._key(c, char_kc(c), ctx)
        a, b = self.sel()
        self._apply(a, b - a, c, "typed")
        self.pos = a + len(c)
        self.anchor = None

    def dead_key_char(self, c, ctx=None):
        """A dead key (´ then e): a key press the page sees as `other`, then the letter."""
        self._key(None, "other", ctx)
        self.type_char(c, ctx)

    def enter_edit(self):
        text = self.text()
        a, b = self.sel()
        ls = line_start(text, a)
        before = text[ls:a]
        if before.strip(" \t") == "":
            return ls, (a - ls) + (b - a), "\n" + before
        ind = leading_ws(before)
        if opener(self.file, before):
            ind += indent_unit(self.file)
        k = len(before) - len(before.rstrip(" \t"))
        return a - k, k + (b - a), "\n" + ind

    def press_enter(self, ctx=None):
        self._key("\n", "enter", ctx)
        p, dl, ins = self.enter_edit()
        self._apply(p, dl, ins, "typed")
        self.pos = p + len(ins)
        self.anchor = None

    def press_tab(self, ctx=None):
        """Tab indents the line by one unit (CodeMirror's indentWithTab)."""
        self._key("\t", "whitespace", ctx)
        text = self.text()
        unit = indent_unit(self.file)
        if self.anchor is not None:
            a, b = self.sel()
            self._apply(a, b - a, unit, "typed")
            self.pos, self.anchor = a + len(unit), None
            return
        ls = line_start(text, self.pos)
        self._apply(ls, 0, unit, "typed")
        self.pos += len(unit)

    def backspace_span(self):
        a, b = self.sel()
        if a != b:
            return a, b - a
        if self.pos == 0:
            return self.pos, 0
        text = self.text()
        ls = line_start(text, self.pos)
        before = text[ls:self.pos]
        unit = indent_unit(self.file)
        if before and unit != "\t" and before == " " * len(before):
            n = len(before) % len(unit) or len(unit)
        else:
            n = 1
        return self.pos - n, n

    def press_backspace(self, ctx=None, repeat=False, t=None):
        if repeat:
            self.rec.key(t, None, "backspace", False)
            self.now = t
        else:
            self._key("\b", "backspace", ctx)
        p, n = self.backspace_span()
        if n:
            self._apply(p, n, "", "typed")
        self.pos, self.anchor = p, None

    def press_delete(self, ctx=None):
        self._key(None, "delete", ctx)
        a, b = self.sel()
        if a == b:
            b = min(a + 1, len(self.text()))
        if b > a:
            self._apply(a, b - a, "", "typed")
        self.pos, self.anchor = a, None

    def hold_backspace(self, n, ctx=None):
        """Backspace held down: the OS repeats it. The capture closes the first press without its
        key-up when the first repeat arrives, and repeats have none."""
        person = self.timing
        self.release_shift()
        t0 = self.now + person.gap(self.prev, "\b", ctx, self)
        self.rec.key(t0, None, "backspace", person.phys)
        self.now = t0
        p, k = self.backspace_span()
        if k:
            self._apply(p, k, "", "typed")
        self.pos, self.anchor = p, None
        delay = getattr(person, "repeat_delay", 500.0)
        interval = getattr(person, "repeat_interval", 33.3)
        for j in range(1, n):
            t = t0 + delay + (j - 1) * interval + self.rng.uniform(0, 0.6)
            self.press_backspace(repeat=True, t=t)
        self.now += self.rng.uniform(20, 90)
        self.prev = "\b"

    def ctrl_backspace(self):
        """Ctrl+Backspace: deletes the word before the cursor (deleteGroupBackward)."""
        text = self.text()
        a = self.pos
        while a > 0 and text[a - 1] == " ":
            a -= 1
        if a > 0 and is_word(text[a - 1]):
            while a > 0 and is_word(text[a - 1]):
                a -= 1
        elif a > 0 and text[a - 1] != "\n":
            a -= 1
        self.chord("\b", "backspace")
        if self.pos > a:
            self._apply(a, self.pos - a, "", "typed")
        self.pos, self.anchor = a, None

    def chord(self, c, kc):
        """Ctrl/Cmd + key: a modifier press, then the key."""
        tm = self.timing
        self.release_shift()
        tmod = self.now + tm.chord_pre()
        mod = self.rec.key(tmod, None, "modifier", tm.phys)
        tk = tmod + tm.chord_gap()
        h = tm.hold(c, kc, self)
        self.rec.key(tk, tk + h, kc, tm.phys)
        mod["_up"] = tk + h + tm.chord_release()
        self.rec.open_keys.append(mod)
        self.now = tk
        self.prev = None

    def paste(self, text, origin="paste", via="keys"):
        if via == "keys":
            self.chord("v", "letter")
        else:
            self.release_shift()
            self.now += ln(self.rng, 1400, 0.4)   # right click, menu, Paste
        a, b = self.sel()
        self._apply(a, b - a, text, origin, glue=(via == "keys"))
        self.pos, self.anchor = a + len(text), None

    def copy(self):
        self.chord("c", "letter")

    def save(self):
        self.chord("s", "letter")

    def undo_insert(self, pos, text):
        """Ctrl+Z restoring `text` at `pos` (what the last deletion removed)."""
        self.chord("z", "letter")
        self._apply(pos, 0, text, "undo")
        self.pos, self.anchor = pos + len(text), None

    def nav(self, newpos, sel_anchor=None, ctx=None, repeat_t=None):
        if repeat_t is not None:
            self.rec.key(repeat_t, None, "navigation", False)
            self.now = repeat_t
        else:
            self._key(None, "navigation", ctx)
        self.pos = newpos
        self.anchor = sel_anchor
        self.rec.cursor(self.now + 0.3, self.file, self.pos, self.anchor)

    # -- mouse ------------------------------------------------------------------------------------
    def set_file(self, file):
        if self.file is not None:
            self.cursors[self.file] = (self.pos, self.anchor)
        self.file = file
        self.pos, self.anchor = self.cursors.get(file, (0, None))

    def click(self, file, pos, sel=None, move=None):
        self.release_shift()
        if file != self.file:
            self.now += ln(self.rng, 1100, 0.45)
            self.set_file(file)
        self.now += move if move is not None else ln(self.rng, 650, 0.35)
        self.pos, self.anchor = pos, sel
        self.rec.cursor(self.now, file, pos, sel)
        self.prev = None

    def drag_select(self, file, a, b):
        """Mouse down at a, drag to b: the caret follows the mouse."""
        self.click(file, a)
        text = self.ws.files[file]
        steps = min(12, 1 + text.count("\n", min(a, b), max(a, b)))
        for k in range(1, steps + 1):
            self.now += ln(self.rng, 90, 0.4)
            p = a + (b - a) * k // steps
            self.pos, self.anchor = p, a
            self.rec.cursor(self.now, file, p, a)
        self.pos, self.anchor = b, a

    def dclick_word(self, file, a, b):
        self.click(file, a)
        self.now += ln(self.rng, 180, 0.3)
        self.pos, self.anchor = b, a
        self.rec.cursor(self.now, file, b, a)

    def select_all(self):
        self.chord("a", "letter")
        n = len(self.text())
        self.pos, self.anchor = n, 0
        self.rec.cursor(self.now + 0.5, self.file, n, 0)

    # -- page -------------------------------------------------------------------------------------
    def away(self, dur, via_keys=False, back_click=True, state=None):
        """The candidate leaves the page (another window or tab) and comes back."""
        self.release_shift()
        if via_keys:
            t = self.now + ln(self.rng, 350, 0.5)
            self.rec.key(t, None, "modifier", self.timing.phys)   # Alt/Cmd of Alt-Tab: key-up unseen
            self.now = t + ln(self.rng, 90, 0.4)
        else:
            self.now += ln(self.rng, 500, 0.5)
        t0 = self.now
        self.rec.focus_lost(self.now)
        self.now += dur
        self.rec.focus_regained(self.now)
        if state:
            self.segment(t0, self.now, state)
        self.prev = None
        if back_click and self.file is not None:
            self.click(self.file, self.pos, self.anchor)

    def run(self, command, exit_code, passed, failed, duration):
        self.release_shift()
        self.now += ln(self.rng, 900, 0.4)
        self.now += duration
        self.rec.code_run(self.now, command, exit_code, passed, failed, duration)
        self.prev = None

    def create_file(self, path, content=""):
        self.release_shift()
        self.now += ln(self.rng, 3500, 0.4)   # new-file button, type the name in the dialog
        self.ws.create(path, content)
        self.rec.file_created(self.now, path, content)
        self.set_file(path)
        self.pos, self.anchor = len(content), None
        if self.rng.random() < 0.7:
            self.now += ln(self.rng, 600, 0.4)
            self.rec.cursor(self.now, path, self.pos)
# ---------------------------------------------------------------------------------------------
# Work items, resolved for one session
# ---------------------------------------------------------------------------------------------

def resolve_items(content, rng, names, ids=None):
    """The session's items with templates expanded (kind: code / test / prose / yaml)."""
    out = []
    for it in content["items"]:
        if ids is not None and it["id"] not in ids:
            continue
        r = dict(it)
        r.setdefault("kind", "code")
        for k in ("new", "text"):
            if k in r:
                r[k] = expand(r[k], names, rng)
        if r["file"].endswith(".go"):
            for k in ("old", "new", "text"):
                if k in r:
                    r[k] = go_tabs(r[k])
        out.append(r)
    return out


def notes_text(content, rng, names, n_sent):
    """A Markdown document: title, then sections of sentences (at most n_sent sentences)."""
    notes = content["notes"]
    parts = [expand(notes["title"], names, rng), ""]
    left = n_sent
    for head, sents in notes["sections"]:
        if left <= 0:
            break
        chosen = [s for s in sents if rng.random() < 0.85] or sents[:1]
        chosen = chosen[:max(1, left)]
        left -= len(chosen)
        parts.append(expand(head, names, rng))
        parts.append("")
        if rng.random() < 0.25 and len(chosen) > 1:
            parts.extend("- " + expand(s, names, rng) for s in chosen)
        else:
            parts.append(" ".join(expand(s, names, rng) for s in chosen))
        parts.append("")
    return "\n".join(parts).rstrip("\n") + "\n"


def locate(ws, item):
    """(file, position, deleted, inserted) of an item in the current workspace."""
    f = item["file"]
    text = ws.files[f]
    if item["op"] == "append":
        ins = item["text"]
        pos = len(text)
        if not text.endswith("\n"):
            ins = "\n" + ins
        elif ins.startswith("\n"):
            ins = ins[1:]
            pos -= 1
            ins = "\n" + ins[:-1] if ins.endswith("\n") else "\n" + ins
        return f, pos, 0, ins
    old, new = item["old"], item["new"]
    assert text.count(old) == 1, f"{f}: anchor not unique or missing: {old[:60]!r}"
    at = text.index(old)
    p, dl, ins = minimal_diff(old, new)
    pos = at + p
    # insert new lines from the end of the line above, as people do
    while dl == 0 and ins.endswith("\n") and pos > 0 and text[pos - 1] == "\n":
        pos -= 1
        ins = "\n" + ins[:-1]
    return f, pos, dl, ins


# ---------------------------------------------------------------------------------------------
# An honest person at work
# ---------------------------------------------------------------------------------------------

BLOCK_START = re.compile(r"^(def |class |async def |func |type |if |for |while |try|with |export |function |"
                         r"describe\(|it\(|router\.|CREATE |SELECT |PREPARE |ALTER |DROP |## |# |- )")
COMMENT = re.compile(r"^(#|//|--|/\*|\*)")


class Human:
    transcribing = False

    def __init__(self, desk, person, rng, env):
        self.d = desk
        self.p = person
        self.rng = rng
        self.env = env               # assessment, run command, progress, markers
        self.no_err_at = -1

    # -- pauses ---------------------------------------------------------------------------------
    def line_start_pause(self, content, kind, blank_before):
        p, r = self.p, self.rng
        if kind == "prose":
            med = p.para_med if (blank_before or content.startswith("#")) else p.sent_med
            t = ln(r, med, 0.7)
        else:
            f = 1.0
            if BLOCK_START.match(content):
                f *= 1.7
            if content[:1] in ")]}":
                f *= 0.45
            if COMMENT.match(content):
                f *= 1.4
            if blank_before:
                f *= 1.6
            t = ln(r, p.line_med * f, 0.75)
        if r.random() < p.think_p:
            t += ln(r, p.think_med, 0.9)
        return t

    def inline_pause(self, s, i, prose):
        p, r = self.p, self.rng
        c = s[i]
        prev = s[i - 1] if i > 0 else ""
        if prose:
            if prev == " ":
                if i >= 2 and s[i - 2] in ".!?:":
                    return ln(r, p.sent_med, 0.6)
                t = 0.0
                if i >= 2 and s[i - 2] == ",":
                    if r.random() < 0.4:
                        t += ln(r, p.word_med * 1.5, 0.6)
                elif r.random() < p.word_p:
                    t += ln(r, p.word_med, 0.6)
                if r.random() < p.burst_p:
                    t += ln(r, 2600, 0.6)
                if p.search and r.random() < 0.3:
                    t += ln(r, 380, 0.5)   # hunt-and-peck: a look at the screen after each word
                return t
            return 0.0
        if prev in " (,=[{:" and (is_word(c) or c in "\"'`"):
            t = 0.0
            if r.random() < p.tok_p:
                t += ln(r, p.tok_med, 0.7)
            if p.search and prev == " " and r.random() < 0.25:
                t += ln(r, 350, 0.5)
            if r.random() < p.think_p * 0.15:
                t += ln(r, p.think_med * 0.6, 0.8)
            return t
        return 0.0

    # -- typing ---------------------------------------------------------------------------------
    def write(self, text, kind):
        """Type `text` at the cursor, line by line, the editor auto-indenting."""
        d, r, p = self.d, self.rng, self.p
        lines = text.split("\n")
        for li, line in enumerate(lines):
            if li > 0:
                if r.random() < 0.25:
                    d.wait(ln(r, 260, 0.5))
                if p.save_p and r.random() < p.save_p:
                    d.save()
                d.press_enter(self.ctx(False, False, kind))
                target = leading_ws(line)
                content = line[len(target):]
                if content == "":
                    if li == len(lines) - 1:
                        self.clear_line_ws()
                    continue
                self.fix_indent(target, kind)
                d.wait(self.line_start_pause(content, kind, lines[li - 1].strip() == ""))
                if self.maybe_paste_line(content):
                    continue
            else:
                content = line
                if content == "":
                    continue
            lk = "prose" if (kind == "prose" or COMMENT.match(content.lstrip())) else "code"
            self.type_line(content, lk)

    def ctx(self, ws, fam, kind, post=False):
        return (ws, fam, post, kind == "prose")

    def clear_line_ws(self):
        d = self.d
        text = d.text()
        ls = line_start(text, d.pos)
        while d.pos > ls and text[ls:d.pos].strip(" \t") == "":
            d.press_backspace()
            text = d.text()

    def fix_indent(self, target, kind):
        d, p = self.d, self.p
        guard = 0
        while guard < 40:
            guard += 1
            text = d.text()
            ls = line_start(text, d.pos)
            cur = text[ls:d.pos]
            if cur == target:
                return
            unit = indent_unit(d.file)
            if target.startswith(cur):
                rem = target[len(cur):]
                if rem.startswith(unit) and p.uses_tab:
                    d.press_tab(self.ctx(False, False, kind))
                else:
                    d.type_char(rem[0], self.ctx(False, False, kind))
            else:
                d.press_backspace(self.ctx(False, False, kind))

    def maybe_paste_line(self, content):
        """Instead of typing a line: copy it from elsewhere in the workspace, or paste it after
        looking it up."""
        d, r, p = self.d, self.rng, self.p
        if self.transcribing or len(content) < 14:
            return False
        if p.copy_line_p and r.random() < p.copy_line_p:
            for f, text in d.ws.files.items():
                at = text.find(content)
                if at >= 0 and not (f == d.file and at <= d.pos <= at + len(content)):
                    home_f, home_pos = d.file, d.pos
                    d.drag_select(f, at, at + len(content))
                    d.copy()
                    d.click(home_f, home_pos)
                    d.paste(content)
                    return True
        if len(content) >= 20 and r.random() < p.lookup_paste_p:
            d.away(ln(r, 30000, 0.8), via_keys=r.random() < p.alt_tab_p,
                   state="lookaway" if r.random() < 0.3 else None)
            d.paste(content)
            return True
        return False

    def err_p(self, c, prose):
        p = self.p
        e = p.err * (p.prose_err if prose else 1.0)
        if not c.isalnum():
            e *= 1.3
        elif c.isdigit():
            e *= 1.2
        return e

    def type_line(self, s, kind):
        d, r, p = self.d, self.rng, self.p
        prose = kind == "prose"
        n = len(s)
        i = 0
        post = 0
        fam_end = -1
        fam = False
        caps_end = -1
        while i < n:
            c = s[i]
            ws = is_word(c) and (i == 0 or not is_word(s[i - 1]))
            t = self.inline_pause(s, i, prose)
            if t:
                d.wait(t)
            if ws:
                j = i
                while j < n and is_word(s[j]):
                    j += 1
                word = s[i:j]
                fam = word.lower() in COMMON_WORDS
                fam_end = j
                if not self.transcribing:
                    if prose and i > 0 and s[i - 2:i] in (". ", "? ") and r.random() < p.phrase_p:
                        self.phrase_restart()
                    if self.try_autocomplete(word):
                        i = j
                        continue
                    res = self.try_draft(word, prose)
                    if res == "left":
                        i = j
                        continue
                if not d.caps and p.caps_p and j - i >= 3 and word.isupper() and word.isalpha() and r.random() < p.caps_p:
                    self.d._key(None, "modifier", self.ctx(False, False, kind))   # CapsLock
                    d.caps = True
                    caps_end = j
            if i >= fam_end:
                fam = False
            if d.caps and i >= caps_end:
                self.d._key(None, "modifier", self.ctx(False, False, kind))
                d.caps = False
            ctx = (ws, fam, post > 0, prose)
            if c != " " and i != self.no_err_at and r.random() < self.err_p(c, prose):
                adv = self.make_error(s, i, ctx)
                self.no_err_at = i + adv
                i += adv
                post = 3
                continue
            if p.dead_keys and prose and c in "éèàüöäç":
                d.dead_key_char(c, ctx)
            else:
                d.type_char(c, ctx)
            i += 1
            if post:
                post -= 1
        if d.caps:
            self.d._key(None, "modifier", None)
            d.caps = False

    def notice(self, k):
        r, p = self.rng, self.p
        self.d.wait(ln(r, p.detect_med if k else p.detect_med * 0.6, 0.5))

    def backspaces(self, m, ctx=None):
        d, r, p = self.d, self.rng, self.p
        if m >= 5 and r.random() < p.autorepeat_p:
            text = d.text()
            ls = line_start(text, d.pos)
            over = 0
            if r.random() < 0.35:
                over = r.randint(1, 3)
                seg = text[ls:d.pos - m]
                if len(seg) < over or seg[len(seg) - over:].strip(" \t") != seg[len(seg) - over:] or not seg.strip():
                    over = 0
            lost = text[d.pos - m - over:d.pos - m] if over else ""
            d.hold_backspace(m + over)
            if lost:
                d.wait(ln(r, 350, 0.5))
                for ch in lost:
                    d.type_char(ch, ctx)
            return
        for _ in range(m):
            d.press_backspace(ctx)

    def make_error(self, s, i, ctx):
        """A slip (substitution, insertion, omission, transposition), noticed after k more keys
        and corrected with backspace. Returns how far `i` advances."""
        d, r, p = self.d, self.rng, self.p
        c = s[i]
        n = len(s)
        prose = ctx[3]
        x = r.random()
        typ = "sub" if x < 0.55 else "ins" if x < 0.70 else "omi" if x < 0.85 else "tra"
        k = 0 if r.random() < p.detect_now else min(1 + int(r.expovariate(1 / 1.2)), 4)
        w = neighbour(r, c)
        if typ == "sub" and w != c and c.isalpha() and r.random() < p.unnoticed and not self.transcribing:
            d.type_char(w, ctx)
            d.ws.markers.append(Marker(d.file, d.pos - 1, d.pos, c, "typo"))
            return 1
        if typ == "tra" and (i + 1 >= n or not is_word(s[i + 1]) or s[i + 1] == c):
            typ = "sub"
        if typ == "omi" and i + 1 >= n:
            typ = "sub"
        if typ == "sub":
            if w == c:
                d.type_char(c, ctx)
                return 1
            d.type_char(w, ctx)
            extra = s[i + 1:i + 1 + k]
            for ch in extra:
                d.type_char(ch, ctx)
            self.notice(k)
            self.backspaces(1 + len(extra), ctx)
            return 0
        if typ == "ins":
            d.type_char(c, ctx)
            d.type_char(w if w != c else c, ctx)
            extra = s[i + 1:i + 1 + k]
            for ch in extra:
                d.type_char(ch, ctx)
            self.notice(k)
            self.backspaces(1 + len(extra), ctx)
            return 1
        if typ == "omi":
            extra = s[i + 1:i + 1 + max(1, k)]
            for ch in extra:
                d.type_char(ch, ctx)
            self.notice(k)
            self.backspaces(len(extra), ctx)
            return 0
        d.type_char(s[i + 1], ctx)
        d.type_char(c, ctx)
        extra = s[i + 2:i + 2 + k]
        for ch in extra:
            d.type_char(ch, ctx)
        self.notice(k)
        self.backspaces(2 + len(extra), ctx)
        return 0

    def try_autocomplete(self, word):
        d, r, p = self.d, self.rng, self.p
        if not p.autocomplete_p or len(word) < 6 or d.anchor is not None or r.random() >= p.autocomplete_p:
            return False
        text = d.text()
        if re.search(r"(?<![\w])" + re.escape(word) + r"(?![\w])", text) is None:
            return False
        k = r.randint(2, min(4, len(word) - 2))
        for ch in word[:k]:
            d.type_char(ch, (True, False, False, False))
        d.wait(ln(r, 260, 0.4))
        d._key(None, "enter" if r.random() < 0.5 else "whitespace", None)
        d._apply(d.pos - k, k, word, "autocomplete")
        d.pos = d.pos - k + len(word)
        return True

    def try_draft(self, word, prose):
        """Typing a word, then taking it back: at once (a draft) or later (left in place and
        corrected after re-reading)."""
        d, r, p = self.d, self.rng, self.p
        if d.anchor is not None:
            return None
        f = 2.0 if prose else 1.0
        syn = SYNONYMS.get(word.lower())
        if syn and r.random() < p.delayed_p * f * 3:
            alt = syn[r.randrange(len(syn))]
            if word[:1].isupper():
                alt = alt[:1].upper() + alt[1:]
            start = d.pos
            for ch in alt:
                d.type_char(ch, (True, False, False, prose))
            d.ws.markers.append(Marker(d.file, start, d.pos, word, "draft"))
            return "left"
        if len(word) >= 3 and r.random() < p.draft_p * f:
            if syn:
                alt = syn[r.randrange(len(syn))]
            elif prose and r.random() < 0.5:
                alt = FILLER_PROSE[r.randrange(len(FILLER_PROSE))] + " "
            else:
                alt = word[: r.randint(1, min(4, len(word) - 1))]
                if r.random() < 0.5:
                    alt += neighbour(r, word[len(alt)])
            for ch in alt:
                d.type_char(ch, (True, False, False, prose))
            d.wait(ln(r, 700, 0.6))
            if p.ctrl_bs_p and r.random() < p.ctrl_bs_p and " " not in alt.strip():
                d.ctrl_backspace()
            else:
                self.backspaces(len(alt))
            return "taken"
        return None

    def phrase_restart(self):
        """Start a sentence one way, delete it, start again (writing-process revisions)."""
        d, r, p = self.d, self.rng, self.p
        words = []
        for _ in range(r.randint(2, 5)):
            words.append(FILLER_PROSE[r.randrange(len(FILLER_PROSE))] if r.random() < 0.3
                         else r.choice(["the", "this", "we", "it", "when", "because", "first", "so", "that", "a",
                                        "worker", "query", "cache", "request", "index", "value", "one", "is", "not"]))
        draft = " ".join(words) + " "
        if words:
            draft = draft[0].upper() + draft[1:]
        for ch in draft:
            d.type_char(ch, (ch == " ", False, False, True))
        d.wait(ln(r, 1500, 0.6))
        if p.ctrl_bs_p and r.random() < p.ctrl_bs_p:
            start = d.pos - len(draft)
            for _ in range(len(words) + 2):
                if d.pos <= start:
                    break
                d.ctrl_backspace()
            assert d.pos == start
        else:
            self.backspaces(len(draft))

    # -- later corrections ----------------------------------------------------------------------
    def fix_markers(self, only_file=None):
        d, r = self.d, self.rng
        for m in list(d.ws.markers):
            if only_file and m.file != only_file:
                continue
            d.ws.markers.remove(m)
            if m.end <= m.start:
                continue
            cur = d.ws.files[m.file][m.start:m.end]
            if m.kind == "typo":
                d.wait(ln(r, 1500, 0.6))
                d.click(m.file, m.end)
                d.press_backspace()
                d.type_char(m.fix)
            else:
                d.wait(ln(r, 2500, 0.6))
                d.dclick_word(m.file, m.start, m.end)
                for ch in m.fix:
                    d.type_char(ch, (True, False, False, False))
            del cur

    def outstanding(self):
        return len(self.d.ws.markers)


# ---------------------------------------------------------------------------------------------
# A person re-typing a solution shown elsewhere: human hands, no composing
# ---------------------------------------------------------------------------------------------

class Transcriber(Human):
    transcribing = True

    def __init__(self, desk, person, rng, env, variant):
        super().__init__(desk, person, rng, env)
        self.variant = variant
        r = rng
        self.chunk = {"second_screen": (22, 0.3), "phone_or_paper": (11, 0.35), "alt_tab_window": (45, 0.3),
                      "careful_faker": (20, 0.35), "fast_transcriber": (26, 0.3), "slow_transcriber": (8, 0.4)}[variant]
        self.glance_med = {"second_screen": U(r, 350, 700), "phone_or_paper": U(r, 800, 1600),
                           "alt_tab_window": U(r, 250, 500), "careful_faker": U(r, 400, 800),
                           "fast_transcriber": U(r, 250, 500), "slow_transcriber": U(r, 600, 1200)}[variant]
        self.since = 0
        self.next_glance = self._chunk_len()
        person.draft_p = person.delayed_p = person.phrase_p = 0.0
        person.autocomplete_p = 0.0
        person.err *= 0.8

    def _chunk_len(self):
        m, s = self.chunk
        return max(3, int(ln(self.rng, m, s)))

    def glance(self):
        d, r = self.d, self.rng
        if self.variant == "alt_tab_window":
            d.away(ln(r, 2200, 0.5), via_keys=r.random() < 0.85, back_click=r.random() < 0.3)
        else:
            d.wait(ln(r, self.glance_med, 0.45))
            if self.variant == "phone_or_paper" and r.random() < 0.04:
                d.wait(ln(r, 4000, 0.5))   # lost the place
        self.since = 0
        self.next_glance = self._chunk_len()

    def line_start_pause(self, content, kind, blank_before):
        r = self.rng
        t = ln(r, 320 if kind != "prose" else 420, 0.4)
        if self.variant == "careful_faker" and r.random() < 0.12:
            t += r.expovariate(1 / 5000)   # a fake "thinking" pause, not tied to structure
        return t

    def inline_pause(self, s, i, prose):
        self.since += 1
        if self.since >= self.next_glance and i > 0 and s[i - 1] in " (,.=":
            self.glance()
        return 0.0


# ---------------------------------------------------------------------------------------------
# A script typing text
# ---------------------------------------------------------------------------------------------

class BotWriter:
    def __init__(self, desk, rng, indent_mode="aware", typo_p=0.0, typo_lag=False):
        self.d = desk
        self.rng = rng
        self.mode = indent_mode
        self.typo_p = typo_p
        self.typo_lag = typo_lag

    def write(self, text):
        d = self.d
        lines = text.split("\n")
        for li, line in enumerate(lines):
            if li > 0:
                d.press_enter(("nl",))
                target = leading_ws(line)
                content = line[len(target):]
                self.indent(target, last=(li == len(lines) - 1), empty=(content == ""))
                first_ctx = ("line",)
            else:
                content = line
                first_ctx = None
            for j, c in enumerate(content):
                if j == 0 and first_ctx:
                    ctx = first_ctx
                elif j > 0 and content[j - 1] == " " and c != " ":
                    ctx = ("word",)
                else:
                    ctx = None
                if self.typo_p and c.isalpha() and self.rng.random() < self.typo_p:
                    w = neighbour(self.rng, c)
                    if w != c:
                        d.type_char(w, ctx)
                        extra = ""
                        if self.typo_lag and self.rng.random() < 0.5:
                            extra = content[j + 1:j + 1 + self.rng.randint(1, 2)]
                            if "\n" in extra:
                                extra = ""
                            for ch in extra:
                                d.type_char(ch, None)
                        d.wait(ln(self.rng, 300, 0.4))
                        for _ in range(1 + len(extra)):
                            d.press_backspace(None)
                        ctx = None
                d.type_char(c, ctx)

    def indent(self, target, last, empty):
        d = self.d
        text = d.text()
        ls = line_start(text, d.pos)
        cur = text[ls:d.pos]
        if empty:
            if last and cur:
                for _ in range(8):
                    if d.text()[line_start(d.text(), d.pos):d.pos] == "":
                        break
                    d.press_backspace(None)
            return
        if cur == target:
            return
        if self.mode == "select_home":
            # Shift+Home selects the editor's indentation; typing the line's own indentation
            # replaces it (Backspace when it has none)
            if cur:
                d.release_shift()
                t = d.now + d.timing.gap(None, None, None, d)
                mod = d.rec.key(t, None, "modifier", d.timing.phys)
                d.now = t
                d.nav(ls, sel_anchor=d.pos)
                mod["_up"] = d.now + 1.0
                d.rec.open_keys.append(mod)
                if target:
                    for ch in target:
                        d.type_char(ch, None)
                else:
                    d.press_backspace(None)
                return
            for ch in target:
                d.type_char(ch, None)
            return
        guard = 0
        unit = indent_unit(d.file)
        while cur != target and guard < 40:
            guard += 1
            if target.startswith(cur):
                rem = target[len(cur):]
                if rem.startswith(unit):
                    d.press_tab(None)
                else:
                    d.type_char(rem[0], None)
            else:
                d.press_backspace(None)
            text = d.text()
            ls = line_start(text, d.pos)
            cur = text[ls:d.pos]
# ---------------------------------------------------------------------------------------------
# Face continuity: three on-device models with their own score distributions
# ---------------------------------------------------------------------------------------------

FACE_MODELS = {
    # genuine / impostor similarity (mean, sd) at good quality; how much poor quality lowers
    # genuine scores. Calibrated by eye to published FaceNet-512 / ArcFace / MobileFaceNet
    # cosine-similarity histograms, mapped to 0..1.
    "g1-facenet512": {"version": "2.3.1-int8", "g": (0.80, 0.055), "i": (0.29, 0.085), "q": 0.35},
    "g1-arcface-r100": {"version": "1.4.0", "g": (0.74, 0.065), "i": (0.13, 0.07), "q": 0.40},
    "g1-mobilefacenet-web": {"version": "0.9.3-wasm", "g": (0.71, 0.085), "i": (0.40, 0.10), "q": 0.45},
}
FACE_WEIGHTS = [("g1-facenet512", 0.45), ("g1-arcface-r100", 0.30), ("g1-mobilefacenet-web", 0.25)]


def face_score(rng, model, genuine, quality, offset=0.0, pose=0.0):
    m = FACE_MODELS[model]
    if genuine:
        mu, sd = m["g"]
        mu += offset - m["q"] * max(0.0, 0.85 - quality) - pose
        sd *= 1 + 1.2 * max(0.0, 0.8 - quality)
    else:
        mu, sd = m["i"]
        mu += offset
        sd *= 1 + 0.5 * max(0.0, 0.8 - quality)
    return round(clamp(rng.gauss(mu, sd), 0.0, 1.0), 4)


def quality_for(rng, state):
    if state == "dim":
        return clamp(rng.gauss(0.36, 0.08), 0.08, 0.6)
    if state == "lookaway":
        return clamp(rng.gauss(0.50, 0.10), 0.15, 0.75)
    return clamp(rng.gauss(0.82, 0.06), 0.45, 0.99)


IDENTITY = ("A", "B", "B2", "Bdim")


def face_checks(rec, rng, model, segments, t_from, t_to, offset_a):
    """A face check every 30-120 s. `segments`: (t0, t1, state), later ones win. Who sits there:
    A (the candidate), B (someone else), B2 (someone who looks like A), Bdim (someone else in
    poor light). Conditions: away (nobody), dim, lookaway, passer (a second face behind),
    helper (a second person beside the candidate)."""
    fixed = rng.random() < 0.5
    base = rng.uniform(30000, 120000)
    t = t_from + rng.uniform(3000, 40000)
    ver = FACE_MODELS[model]["version"]
    drift = 0.0
    while t < t_to:
        drift = 0.7 * drift + rng.gauss(0, 0.02)
        who, cond = "A", None
        for s0, s1, st in segments:
            if s0 <= t < s1:
                if st in IDENTITY:
                    who = st
                else:
                    cond = st
        if cond == "away" or (cond is None and rng.random() < 0.004):
            data = {"type": "face_check", "similarity": 0.0, "model_id": model, "model_version": ver,
                    "face_count": 0, "quality": 0.0}
        else:
            look = cond if cond in ("dim", "lookaway") else None
            if who == "Bdim":
                look = "dim"
            q = quality_for(rng, look)
            count = 2 if cond == "passer" or (cond == "helper" and rng.random() < 0.85) else 1
            if who == "A":
                pose = rng.uniform(0.05, 0.2) if look == "lookaway" else 0.0
                sim = face_score(rng, model, True, q, offset_a + drift, pose)
            else:
                sim = face_score(rng, model, False, q, rng.uniform(0.12, 0.22) if who == "B2" else 0.0)
            data = {"type": "face_check", "similarity": sim, "model_id": model, "model_version": ver,
                    "face_count": count, "quality": round(q, 3)}
        rec.face(t, data)
        t += rng.uniform(30000, 120000) if not fixed else base * rng.uniform(0.92, 1.08)


def calibration(seed):
    """Operator calibration sets: independent of every session (their own stream)."""
    out = []
    for model, _ in FACE_WEIGHTS:
        r = rng_for(seed, "face-calibration", model)
        gen, imp = [], []
        for _ in range(600):
            q = quality_for(r, "dim" if r.random() < 0.1 else ("lookaway" if r.random() < 0.1 else None))
            gen.append(face_score(r, model, True, q, r.gauss(0, 0.03)))
            q2 = quality_for(r, None)
            imp.append(face_score(r, model, False, q2))
        out.append({"model_id": model, "model_version": FACE_MODELS[model]["version"], "genuine": gen,
                    "impostor": imp})
    return out


# ---------------------------------------------------------------------------------------------
# Sessions
# ---------------------------------------------------------------------------------------------

LIMITS = (300, 6000)


class Env:
    """One session's assessment, workspace and progress."""

    def __init__(self, slug, cat, rng):
        self.slug = slug
        self.content = CONTENT[slug]
        self.starter = cat[slug]["files"]
        self.limit_ms = cat[slug]["limit_min"] * 60000.0
        self.rng = rng
        names = template_names(self.content)
        self.names = {k: v[rng.randrange(len(v))] for k, v in names.items()}
        self.done = 0
        self.total = 1
        self.own_tests = 0
        cmd, dur, nvis = self.content["run"]
        self.nvis = nvis
        self.init_fail = max(1, nvis // 2 + rng.randint(-1, 1))

    def items(self, ids=None):
        return resolve_items(self.content, self.rng, self.names, ids)

    def notes(self, n_sent):
        return notes_text(self.content, self.rng, self.names, n_sent)

    def run(self, desk, outstanding=0, final=False):
        r = self.rng
        cmd, (lo, hi), nvis = self.content["run"]
        prog = self.done / max(1, self.total)
        failing = int(round(self.init_fail * (1 - prog)))
        if final and r.random() < 0.6:
            failing = 0 if prog > 0.7 else failing
        if outstanding and r.random() < 0.7:
            failing += 1
        total = nvis + self.own_tests
        failing = min(failing, total)
        dur = r.uniform(lo, hi)
        if outstanding and self.slug in ("distributed-cache-strategy", "rate-limiting") and r.random() < 0.5:
            desk.run(cmd, 2, None, None, dur * 0.4)     # does not compile
        elif outstanding and self.slug in ("microservice-orchestration", "rest-api-design") and r.random() < 0.4:
            desk.run(cmd, 1, None, None, dur * 0.5)
        else:
            desk.run(cmd, 0 if failing == 0 else 1, total - failing, failing, dur)
        desk.wait(ln(r, 12000, 0.7))


def est_keys(text, p_err=0.03):
    n = 0
    shift = 0
    at_line_start = True
    for c in text:
        if c == "\n":
            n += 1
            at_line_start = True
            continue
        if at_line_start and c in " \t":
            continue
        at_line_start = False
        n += 1
        if needs_shift(c):
            shift += 1
    return (n + shift * 0.8) * (1 + 3.2 * p_err)


def sample_target(rng, profile):
    if profile == "quick_fix":
        return rng.uniform(340, 560)
    if profile == "test_and_prose_writer":
        return rng.uniform(1300, 4200)
    return sample_length(rng)


def sample_length(rng):
    """Session lengths in key presses: many short tasks, a long tail (and the corpus size)."""
    x = rng.random()
    if x < 0.28:
        return rng.uniform(330, 600)
    if x < 0.78:
        return rng.uniform(600, 1400)
    if x < 0.94:
        return rng.uniform(1400, 3000)
    return rng.uniform(3000, 5400)


def plan_steps(env, rng, target, profile="", err=0.03, linear=False):
    """Items (and notes) worth about `target` key presses."""
    items = env.items()
    steps = []
    total = 0.0
    if profile == "quick_fix" or target < 650:
        shorts = [it for it in items if it.get("short")]
        rng.shuffle(shorts)
        for it in shorts:
            e = est_keys(it.get("new", it.get("text", "")), err) * 0.9
            if total + e <= target * 1.15:
                steps.append(("item", it))
                total += e
            if total >= target * 0.8:
                break
        steps.sort(key=lambda s: items.index(s[1]))
    else:
        for it in items:
            e = est_keys(it.get("new", it.get("text", "")), err)
            if total + e <= target * 1.1:
                steps.append(("item", it))
                total += e
    left = target - total
    if left > 140:
        n_sent = max(1, int(left / 170))
        text = env.notes(n_sent)
        if profile == "test_and_prose_writer" or (not linear and rng.random() < 0.25):
            steps.insert(min(len(steps), rng.randint(1, max(1, len(steps)))), ("notes", text))
        else:
            steps.append(("notes", text))
    if not steps:
        it = min(items, key=lambda it: len(it.get("new", it.get("text", ""))))
        steps.append(("item", it))
    env.total = sum(1 for s in steps if s[0] == "item")
    return steps


def reading_phase(desk, person, env, rng, scale=1.0):
    """Reading the prompt and the starter files: clicks and selections, no typing."""
    total = min(ln(rng, person.read_med, 0.5) * scale, env.limit_ms * 0.2)
    files = [f for f, _ in env.starter]
    spent = 0.0
    while spent < total:
        dt = ln(rng, 40000, 0.8)
        desk.wait(min(dt, total - spent + 1))
        spent += dt
        f = files[min(len(files) - 1, int(rng.random() ** 1.8 * len(files)))]
        text = desk.ws.files[f]
        pos = rng.randrange(len(text) + 1)
        if rng.random() < 0.2 and len(text) > 40:
            a = rng.randrange(len(text) - 20)
            desk.drag_select(f, a, a + rng.randint(5, 20))
        else:
            desk.click(f, pos)
    if rng.random() < person.lookup_p:
        desk.away(ln(rng, 60000, 0.8), via_keys=rng.random() < person.alt_tab_p)


def goto(h, f, pos):
    d, r, p = h.d, h.rng, h.p
    if f != d.file or r.random() >= p.nav_keys_p:
        d.click(f, pos)
        return
    text = d.text()
    cl = text.count("\n", 0, d.pos)
    tl = text.count("\n", 0, pos)
    if abs(cl - tl) > 40:
        d.click(f, pos)
        return
    col = d.pos - line_start(text, d.pos)
    path = []
    q = d.pos
    for _ in range(abs(tl - cl)):
        if tl > cl:
            ls2 = text.find("\n", q) + 1
        else:
            ls2 = line_start(text, line_start(text, q) - 1)
        q = min(ls2 + col, line_end(text, ls2))
        path.append(q)
    if len(path) >= 6 and r.random() < p.autorepeat_p:
        d.nav(path[0])
        t0 = d.now
        for k, qq in enumerate(path[1:]):
            d.nav(qq, repeat_t=t0 + p.repeat_delay + k * p.repeat_interval + r.uniform(0, 0.5))
        d.wait(ln(r, 120, 0.4))
    else:
        for qq in path:
            d.nav(qq)
    ls = line_start(text, q)
    if pos == q:
        return
    if pos == line_end(text, pos):
        d.nav(pos)                      # End
        return
    if abs(pos - q) > 12:
        d.click(f, pos)
        return
    step = 1 if pos > q else -1
    while q != pos:
        q += step
        d.nav(q)


def select_span(h, a, b):
    d, r, p = h.d, h.rng, h.p
    text = d.text()
    span = text[a:b]
    if b - a <= 30 and all(is_word(c) for c in span):
        d.dclick_word(d.file, a, b)
    elif "\n" not in span and b == line_end(text, a) and r.random() < p.nav_keys_p:
        goto(h, d.file, a)
        d.release_shift()
        t = d.now + d.timing.gap(None, None, None, d)
        mod = d.rec.key(t, None, "modifier", d.timing.phys)   # Shift+End
        d.now = t
        d.nav(b, sel_anchor=a)
        mod["_up"] = d.now + ln(r, 80, 0.4)
        d.rec.open_keys.append(mod)
    else:
        d.drag_select(d.file, a, b)


def human_item(h, env, item, plan_scale=1.0):
    d, r, p = h.d, h.rng, h.p
    if item["op"] == "new":
        ins = item["text"]
    else:
        f, pos, dl, ins = locate(d.ws, item)
    size = len(ins)
    plan = ln(r, p.item_med * (0.6 + min(2.0, size / 800)), 0.7) * plan_scale
    if r.random() < 0.1:
        d.segment(d.now, d.now + plan * 0.6, "lookaway")
    d.wait(plan)
    if r.random() < p.lookup_p * 0.5:
        d.away(ln(r, 40000, 0.9) * plan_scale, via_keys=r.random() < p.alt_tab_p,
               state="lookaway" if r.random() < 0.3 else None)
    if item["op"] == "new":
        d.create_file(item["file"])
        h.write(ins, item["kind"])
    else:
        f, pos, dl, ins = locate(d.ws, item)
        goto(h, f, pos)
        if dl:
            select_span(h, pos, pos + dl)
            if ins == "" or r.random() < 0.45:
                d.press_backspace()
        h.write(ins, item["kind"])
    if item["kind"] == "test":
        env.own_tests += max(1, ins.count("def test") + ins.count("func Test") + ins.count(" it(\""))
    env.done += 1


def post_item(h, env, item, plan_scale=1.0):
    d, r, p = h.d, h.rng, h.p
    ext = os.path.splitext(d.file or "")[1]
    if h.outstanding() and r.random() < 0.5:
        h.fix_markers(d.file)
    if ext in AFTERTHOUGHT and r.random() < p.afterthought_p:
        text = d.text()
        e = line_end(text, d.pos)
        if e != d.pos:
            d.nav(e) if r.random() < p.nav_keys_p else d.click(d.file, e)
        d.wait(ln(r, 2500, 0.6) * plan_scale)
        d.press_enter()
        h.type_line(r.choice(AFTERTHOUGHT[ext]).replace("{notes}", env.content["notes"]["file"]), "prose")
    if ext in DEBUG_LINE and r.random() < p.debug_p:
        text = d.text()
        e = line_end(text, d.pos)
        if e != d.pos:
            d.click(d.file, e)
        a = d.pos
        d.press_enter()
        h.type_line(r.choice(DEBUG_LINE[ext]), "code")
        b = d.pos
        env.run(d, h.outstanding())
        d.drag_select(d.file, b, a)
        d.press_backspace()
    if p.undo_p and r.random() < p.undo_p * 4:
        text = d.text()
        a = d.pos
        while a > 0 and is_word(text[a - 1]):
            a -= 1
        if d.pos - a >= 3:
            word = text[a:d.pos]
            d.dclick_word(d.file, a, d.pos)
            d.press_backspace()
            d.wait(ln(r, 900, 0.5))
            d.undo_insert(a, word)
    if r.random() < p.run_p:
        env.run(d, h.outstanding())
    if p.save_p and r.random() < 0.5:
        d.save()


def human_notes(h, env, text, path):
    d = h.d
    if path in d.ws.files:
        f = path
        t = d.ws.files[f]
        d.click(f, len(t))
        h.write("\n" + text if t and not t.endswith("\n") else text, "prose")
    else:
        d.create_file(path)
        h.write(text, "prose")


class Built:
    def __init__(self, rec, clock, desk, env, face_model, person_a, extra=None):
        self.rec, self.clock, self.desk, self.env = rec, clock, desk, env
        self.face_model, self.person_a = face_model, person_a
        self.extra = extra or {}
        self.t0 = desk.t0


def new_session(seed, sid, slug, cat, attempt):
    rng = rng_for(seed, sid, "attempt", attempt)
    env = Env(slug, cat, rng)
    ws = Workspace(env.starter)
    rec = Rec()
    clock = Clock(rng_for(seed, sid, "clock"))
    t0 = rng.uniform(2000, 40000)    # the page was open before the clock started
    return rng, env, ws, rec, clock, t0


def honest_faces(desk, rng):
    """Bad light for a while, someone walking past."""
    t_end = desk.now
    if rng.random() < 0.12:
        a = rng.uniform(0, t_end)
        desk.segment(a, a + rng.uniform(300000, 1800000), "dim")
    for _ in range(rng.choice([0, 0, 0, 1, 1, 2])):
        a = rng.uniform(0, t_end)
        desk.segment(a, a + rng.uniform(15000, 90000), "passer")


def build_honest(seed, sid, profile, slug, cat, attempt, target, scale=1.0):
    rng, env, ws, rec, clock, t0 = new_session(seed, sid, slug, cat, attempt)
    base = profile
    if profile == "quick_fix":
        base = rng.choice(["typical", "typical", "fast_touch_typist", "slow_hunt_and_peck"])
    if profile == "interrupted_reload":
        base = "typical"
    person = Person(rng, base)
    for a in ("item_med", "line_med", "think_med", "para_med", "sent_med", "read_med"):
        setattr(person, a, getattr(person, a) * scale)
    desk = Desk(rng, ws, rec, person, t0)
    h = Human(desk, person, rng, env)
    steps = plan_steps(env, rng, target, profile, person.err)
    reading_phase(desk, person, env, rng, scale if profile != "quick_fix" else 0.5 * scale)
    reload_at = rng.randrange(1, max(2, len(steps) + 1)) if profile == "interrupted_reload" else -1
    long = target > 1500
    notes_file = env.content["notes"]["file"]
    for si, (kind, payload) in enumerate(steps):
        if si == reload_at:
            mode = "restart" if rng.random() < 0.4 else "continue"
            desk.release_shift()
            if mode == "restart":
                gap = ln(rng, 150000, 0.5)
                new_clock = Clock(rng_for(seed, sid, "clock2"))
                rec.reload(desk.now + 1, "restart", new_clock, gap * 0.9)
                desk.segment(desk.now, desk.now + gap, "away")
            else:
                gap = ln(rng, 7000, 0.5)
                rec.reload(desk.now + 1, "continue")
            desk.now += gap
            desk.file = None
            desk.cursors = {}
            desk.prev = None
        if long and si > 0 and rng.random() < person.break_p:
            b = ln(rng, 240000, 0.5) * scale
            desk.segment(desk.now + 2000, desk.now + b, "away")
            desk.wait(b)
        if kind == "item":
            human_item(h, env, payload, scale)
            post_item(h, env, payload, scale)
        else:
            desk.wait(ln(rng, person.item_med * 1.5, 0.6) * scale)
            human_notes(h, env, payload, notes_file)
    if h.outstanding():
        h.fix_markers()
    env.run(desk, 0, final=True) if rng.random() < 0.8 else desk.wait(ln(rng, 20000, 0.6))
    desk.release_shift()
    rec.finish()
    honest_faces(desk, rng)
    return Built(rec, clock, desk, env, None, person)


def finish_faces(seed, sid, built, t_from):
    r = rng_for(seed, sid, "face")
    model = pick(r, FACE_WEIGHTS)[0]
    offset = r.gauss(0, 0.03)
    face_checks(built.rec, r, model, built.desk.face_segments, t_from, built.desk.now + r.uniform(2000, 30000), offset)
    return model


# -- scripted typing ---------------------------------------------------------------------------

def cheater_setup(desk, person, env, rng):
    """Reading the task and fetching the solution from somewhere else."""
    reading_phase(desk, person, env, rng, rng.uniform(0.2, 0.6))
    if rng.random() < 0.8:
        desk.away(ln(rng, 240000, 0.7), via_keys=rng.random() < person.alt_tab_p,
                  state="lookaway" if rng.random() < 0.3 else None)


def launch_bot(desk, rng, how, f, pos):
    """Start the typing script with the caret at (f, pos)."""
    if how == "terminal":
        desk.away(ln(rng, 5000, 0.5), via_keys=rng.random() < 0.5, back_click=False)
        desk.click(f, pos)
        desk.wait(rng.uniform(500, 4000))
    else:
        desk.click(f, pos)
        desk.wait(ln(rng, 700, 0.4))
        desk.chord("j", "letter")   # the script's hotkey
        desk.wait(rng.uniform(50, 400))


def build_scripted(seed, sid, cls, variant, slug, cat, attempt, target, bot_factory):
    rng, env, ws, rec, clock, t0 = new_session(seed, sid, slug, cat, attempt)
    person = Person(rng, "typical")
    desk = Desk(rng, ws, rec, person, t0)
    h = Human(desk, person, rng, env)
    cheater_setup(desk, person, env, rng)
    bot = bot_factory(rng)
    steps = plan_steps(env, rng, target, "", 0.0, linear=True)
    how = "terminal" if rng.random() < 0.5 else "hotkey"
    mode = "aware" if rng.random() < 0.6 else "select_home"
    typo = getattr(bot, "typo_p", 0.0)
    bw = BotWriter(desk, rng, mode, typo, getattr(bot, "typo_lag", False))
    faker = variant in ("process_faker",)
    notes_file = env.content["notes"]["file"]
    for kind, payload in steps:
        desk.wait(ln(rng, 4000, 0.6))
        if kind == "item":
            it = payload
            if it["op"] == "new":
                desk.create_file(it["file"])
                f, pos, dl, ins = it["file"], 0, 0, it["text"]
            else:
                f, pos, dl, ins = locate(ws, it)
                if dl:
                    desk.click(f, pos)
                    select_span(h, pos, pos + dl)
                    desk.press_backspace()
            launch_bot(desk, rng, how, f, pos)
            desk.timing = bot
            bw.write(ins)
            desk.release_shift()
            desk.timing = person
            env.done += 1
        else:
            if notes_file in ws.files:
                f, pos = notes_file, len(ws.files[notes_file])
            else:
                desk.create_file(notes_file)
                f, pos = notes_file, 0
            launch_bot(desk, rng, how, f, pos)
            desk.timing = bot
            bw.write(payload)
            desk.release_shift()
            desk.timing = person
        if faker and rng.random() < 0.5:
            env.run(desk)
        if faker and rng.random() < 0.3:
            desk.away(ln(rng, 20000, 0.8), via_keys=rng.random() < 0.5)
    if rng.random() < 0.6:
        env.run(desk, final=True)
    desk.release_shift()
    rec.finish()
    honest_faces(desk, rng)
    return Built(rec, clock, desk, env, None, person, {"bot": bot})


# -- pasting ----------------------------------------------------------------------------------

def final_files(ws_files, items):
    tmp = Workspace(ws_files)
    for it in items:
        if it["op"] == "new":
            if it["file"] not in tmp.files:
                tmp.create(it["file"])
            tmp.apply(it["file"], len(tmp.files[it["file"]]), 0, it["text"])
        else:
            f, pos, dl, ins = locate(tmp, it)
            tmp.apply(f, pos, dl, ins)
    return tmp.files


def build_paste(seed, sid, variant, slug, cat, attempt, target):
    rng, env, ws, rec, clock, t0 = new_session(seed, sid, slug, cat, attempt)
    person = Person(rng, rng.choice(["typical", "typical", "fast_touch_typist"]))
    desk = Desk(rng, ws, rec, person, t0)
    h = Human(desk, person, rng, env)
    h.p.unnoticed = 0.0
    cheater_setup(desk, person, env, rng)
    items = env.items()
    # the pasted solution: all items (or most), whatever their size
    k = len(items) if rng.random() < 0.6 else max(1, int(len(items) * rng.uniform(0.5, 0.9)))
    items = items[:k]
    notes_file = env.content["notes"]["file"]
    origin = {"drop": "drop", "extension_insert": "other"}.get(variant, "paste")
    via = "keys" if variant not in ("drop", "context_menu", "extension_insert") else "menu"

    def fetch():
        if variant != "extension_insert" and rng.random() < 0.8:
            desk.away(ln(rng, 25000, 0.8), via_keys=rng.random() < person.alt_tab_p, back_click=False)

    def put(text):
        if variant == "extension_insert":
            desk.wait(ln(rng, 3000, 0.6))
            a, b = desk.sel()
            desk._apply(a, b - a, text, "other", glue=False)
            desk.pos, desk.anchor = a + len(text), None
        elif variant == "drop":
            desk.wait(ln(rng, 1500, 0.5))
            a, b = desk.sel()
            desk._apply(a, b - a, text, "drop", glue=False)
            desk.pos, desk.anchor = a + len(text), None
        else:
            desk.paste(text, "paste", via)

    if variant in ("single_paste_per_file", "paste_then_tweak", "drop", "context_menu"):
        final = final_files(ws.files, items)
        touched = []
        for it in items:
            if it["file"] not in touched:
                touched.append(it["file"])
        for f in touched:
            fetch()
            if f not in ws.files:
                desk.create_file(f)
            else:
                desk.click(f, rng.randrange(len(ws.files[f]) + 1))
                if via == "keys":
                    desk.select_all()
                else:
                    desk.drag_select(f, 0, len(ws.files[f]))
            put(final[f])
            env.done += 1
    else:  # few_chunks, extension_insert, typed_header_paste_body
        for it in items:
            if it["op"] == "new":
                fetch()
                desk.create_file(it["file"])
                ins = it["text"]
            else:
                f, pos, dl, ins = locate(ws, it)
                desk.click(f, pos)
                if dl:
                    select_span(h, pos, pos + dl)
            if variant == "typed_header_paste_body" and "\n" in ins.strip("\n") and rng.random() < 0.7:
                lead = ins[:ins.index("\n", 1) if ins.startswith("\n") else ins.index("\n")]
                h.write(lead, it["kind"])
                ins = ins[len(lead):]
                fetch()
                desk.click(desk.file, desk.pos)
            elif len(ins) < 120 and rng.random() < 0.6:
                h.write(ins, it["kind"])
                env.done += 1
                continue
            else:
                fetch()
                if it["op"] != "new":
                    desk.click(desk.file, desk.pos, desk.anchor)
            put(ins)
            env.done += 1
    if variant == "paste_then_tweak" or rng.random() < 0.3:
        # make it look worked on: retype an identifier here and there, add a comment
        for _ in range(rng.randint(1, 4)):
            f = items[rng.randrange(len(items))]["file"]
            text = ws.files[f]
            words = [m for m in re.finditer(r"\b[a-z_]{5,}\b", text)]
            if not words:
                continue
            m = words[rng.randrange(len(words))]
            desk.wait(ln(rng, 8000, 0.7))
            desk.dclick_word(f, m.start(), m.end())
            h.type_line(m.group(0), "code")
    if rng.random() < 0.7:
        env.run(desk)
    # the rest by hand (notes, small fixes) so that the session has the key presses of any other
    keys_left = max(0.0, target - rec.nkeys)
    if keys_left > 60:
        text = env.notes(max(1, int(keys_left / 150) + 1))
        human_notes(h, env, text, notes_file)
    if rng.random() < 0.5:
        env.run(desk, final=True)
    desk.release_shift()
    rec.finish()
    honest_faces(desk, rng)
    return Built(rec, clock, desk, env, None, person)


# -- transcription ----------------------------------------------------------------------------

TRANSCRIBE_VARIANTS = ["second_screen", "phone_or_paper", "alt_tab_window", "careful_faker", "fast_transcriber",
                       "slow_transcriber"]


def build_transcription(seed, sid, variant, slug, cat, attempt, target):
    rng, env, ws, rec, clock, t0 = new_session(seed, sid, slug, cat, attempt)
    base = {"fast_transcriber": "fast_touch_typist", "slow_transcriber": "slow_hunt_and_peck"}.get(variant, "typical")
    person = Person(rng, base)
    desk = Desk(rng, ws, rec, person, t0)
    h = Transcriber(desk, person, rng, env, variant)
    cheater_setup(desk, person, env, rng)
    steps = plan_steps(env, rng, target, "", person.err, linear=True)
    # top to bottom: by file, then by position in the file
    order = {f: i for i, (f, _) in enumerate(env.starter)}

    def key(step):
        kind, it = step
        if kind == "notes":
            return (10 ** 6, 0)
        if it["op"] != "edit":
            return (order.get(it["file"], 999), 10 ** 7)
        return (order.get(it["file"], 999), ws.files[it["file"]].find(it["old"]))

    steps.sort(key=key)
    notes_file = env.content["notes"]["file"]
    for kind, payload in steps:
        desk.wait(ln(rng, 1800, 0.5))
        if kind == "item":
            it = payload
            if it["op"] == "new":
                desk.create_file(it["file"])
                h.write(it["text"], it["kind"])
            else:
                f, pos, dl, ins = locate(ws, it)
                desk.click(f, pos)
                if dl:
                    select_span(h, pos, pos + dl)
                    if ins == "" or rng.random() < 0.5:
                        desk.press_backspace()
                h.write(ins, it["kind"])
            env.done += 1
        else:
            human_notes(h, env, payload, notes_file)
    if rng.random() < 0.5:
        env.run(desk, final=True)
    desk.release_shift()
    rec.finish()
    honest_faces(desk, rng)
    return Built(rec, clock, desk, env, None, person)


# -- someone else takes over ------------------------------------------------------------------

SWAP_VARIANTS = ["break_swap", "direct_swap", "helper_takes_over", "lookalike", "low_light_cover", "swap_back"]


def build_face_swap(seed, sid, variant, slug, cat, attempt, target):
    rng, env, ws, rec, clock, t0 = new_session(seed, sid, slug, cat, attempt)
    a = Person(rng, rng.choice(["typical", "slow_hunt_and_peck", "non_native_reviser"]))
    b = Person(rng, rng.choice(["fast_touch_typist", "typical", "keyboard_navigator"]))
    desk = Desk(rng, ws, rec, a, t0)
    ha = Human(desk, a, rng, env)
    hb = Human(desk, b, rng, env)
    steps = plan_steps(env, rng, target, "", a.err)
    reading_phase(desk, a, env, rng, 0.6)
    n = len(steps)
    swap_at = 0 if n == 1 else rng.randint(1, max(1, n - 1)) if rng.random() < 0.8 else 0
    back_at = rng.randint(swap_at + 1, n) if variant == "swap_back" and swap_at < n else n + 1
    if n == 1:
        swap_at = 0
    state_b = {"lookalike": "B2", "low_light_cover": "Bdim"}.get(variant, "B")
    h = ha
    notes_file = env.content["notes"]["file"]
    for si, (kind, payload) in enumerate(steps):
        if si == swap_at:
            desk.release_shift()
            if variant == "break_swap":
                g = ln(rng, 200000, 0.5)
                desk.segment(desk.now, desk.now + g, "away")
                desk.wait(g)
            elif variant == "helper_takes_over":
                g = ln(rng, 400000, 0.5)
                desk.segment(desk.now - g * 0.5, desk.now + g * 0.5, "helper")
                desk.wait(g * 0.5)
            else:
                g = ln(rng, 25000, 0.6)
                desk.segment(desk.now, desk.now + g, "away" if rng.random() < 0.6 else "helper")
                desk.wait(g)
            desk.segment(desk.now, 1e15, state_b)
            desk.timing = b
            h = hb
            desk.prev = None
        if si == back_at:
            g = ln(rng, 60000, 0.5)
            desk.segment(desk.now, desk.now + g, "away")
            desk.wait(g)
            desk.segment(desk.now, 1e15, "A")
            desk.timing = a
            h = ha
        if kind == "item":
            human_item(h, env, payload)
            post_item(h, env, payload)
        else:
            human_notes(h, env, payload, notes_file)
    if ha.outstanding() or hb.outstanding():
        h.fix_markers()
    if rng.random() < 0.7:
        env.run(desk, final=True)
    desk.release_shift()
    rec.finish()
    honest_faces(desk, rng)
    return Built(rec, clock, desk, env, None, a)
# ---------------------------------------------------------------------------------------------
# The corpus
# ---------------------------------------------------------------------------------------------

HONEST_MIX = [
    ("typical", 0.22), ("fast_touch_typist", 0.15), ("slow_hunt_and_peck", 0.10), ("non_native_reviser", 0.13),
    ("test_and_prose_writer", 0.12), ("quick_fix", 0.15), ("keyboard_navigator", 0.08), ("interrupted_reload", 0.05),
]
VARIANTS = {
    "constant_interval": ["pyautogui_interval", "xdotool_delay", "ahk_keydelay", "usb_injector", "line_pause"],
    "uniform_jitter": ["plain", "word_pauses", "line_pauses", "word_and_line_pauses"],
    "iid_human_like": ["lognormal", "lognormal_with_shift_lead", "gamma", "ex_gaussian", "clipped_normal", "weibull",
                       "mixture_pauses"],
    "humanized_bot": ["word_bursts", "fatigue_drift", "digraph_table", "process_faker"],
    "replayed_timing": ["verbatim", "typing_only", "printable_only", "offset_loop"],
    "whole_paste": ["single_paste_per_file", "few_chunks", "paste_then_tweak", "drop", "context_menu",
                    "extension_insert", "typed_header_paste_body"],
    "transcription": TRANSCRIBE_VARIANTS,
    "face_swap": SWAP_VARIANTS,
}
CLASSES = ["honest", "constant_interval", "uniform_jitter", "iid_human_like", "humanized_bot", "replayed_timing",
           "whole_paste", "transcription", "face_swap"]
PRINTABLE = ("letter", "digit", "punctuation", "whitespace", "enter")


def allocate(total, mix):
    raw = [(name, w * total) for name, w in mix]
    counts = [[name, int(x)] for name, x in raw]
    rest = total - sum(c for _, c in counts)
    order = sorted(range(len(raw)), key=lambda i: -(raw[i][1] - int(raw[i][1])))
    for i in order[:rest]:
        counts[i][1] += 1
    out = []
    for name, c in counts:
        out.extend([name] * c)
    return out


def load_catalogue(root):
    cat = {}
    for slug in CONTENT:
        spec = json.loads((root / slug / "assessment.json").read_text(encoding="utf-8"))
        files = []
        for task in spec["tasks"]:
            for path in task["starter_files"]:
                files.append((path, (root / slug / "starter" / path).read_bytes().decode("utf-8")))
        for _, text in files:
            assert all(ord(c) < 0x10000 for c in text), "positions are UTF-16 units: keep to the BMP"
        cat[slug] = {"files": files, "limit_min": spec["time_limit_minutes"]}
    return cat


def replay_sequence(events, variant, rng):
    keys = [e["data"] for e in events if e["data"]["type"] == "keystroke"]
    holds = sorted(k["up_ms"] - k["down_ms"] for k in keys if "up_ms" in k)
    med = holds[len(holds) // 2] if holds else 90.0
    if variant == "printable_only":
        keys = [k for k in keys if k["key_class"] in PRINTABLE]
    seq = []
    prev = None
    for k in keys:
        g = 150.0 if prev is None else k["down_ms"] - prev
        prev = k["down_ms"]
        if g < 0:
            continue
        if variant == "typing_only" and g > 5000:
            continue
        seq.append((g, k["up_ms"] - k["down_ms"] if "up_ms" in k else med))
    if variant == "offset_loop" and len(seq) > 10:
        o = rng.randrange(len(seq))
        seq = seq[o:] + seq[:o]
    return seq


def bot_factory(cls, variant):
    if cls == "constant_interval":
        return lambda rng: ConstantBot(rng, variant)
    if cls == "uniform_jitter":
        return lambda rng: UniformBot(rng, variant)
    if cls == "iid_human_like":
        return lambda rng: IIDBot(rng, variant)
    if cls == "humanized_bot":
        return lambda rng: HumanizedBot(rng, variant)
    raise ValueError(cls)


def session_json(sid, cls, profile, slug, source, built, seed, limit_keys):
    r = rng_for(seed, sid, "wall")
    day = r.randrange(0, 90)
    started_ms = (int(datetime(2026, 9, 1, tzinfo=timezone.utc).timestamp()) + day * 86400
                  + r.randrange(6 * 3600, 22 * 3600)) * 1000
    t0 = built.t0
    wall0 = started_ms - t0
    model = finish_faces(seed, sid, built, t0)
    events = serialize(built.rec, built.clock, wall0, started_ms)
    obj = {
        "id": sid,
        "class": cls,
        "profile": profile,
        "assessment": slug,
        "source": source,
        "consent": {"keystroke_dynamics": True, "face_continuity": True},
        "started_at": iso_s(started_ms),
        "starter_files": [{"path": p, "content": c} for p, c in built.env.starter],
        "events": events,
    }
    return obj, model


def build_with_limits(seed, sid, builder, limit_hi, target, limit_ms_of):
    """Re-draws a session until its key presses are within the limits and it ends in time."""
    scale = 1.0
    best = None
    for attempt in range(14):
        built = builder(attempt, target, scale)
        nk = built.rec.nkeys
        dur = built.desk.now - built.t0
        ok_k = LIMITS[0] <= nk <= limit_hi
        ok_t = dur <= built.env.limit_ms * 0.98
        if ok_k and ok_t:
            return built
        if best is None and ok_t and LIMITS[0] <= nk <= LIMITS[1]:
            best = built
        if nk > limit_hi:
            target *= 0.85 * limit_hi / nk
        elif nk < LIMITS[0]:
            target *= 1.2 * LIMITS[0] / max(nk, 50)
        if not ok_t:
            scale *= 0.65
            target *= 0.85
    if best is not None:
        return best
    raise RuntimeError(f"{sid}: could not fit the limits")


def generate(seed, out, per_class, catalogue):
    cat = load_catalogue(catalogue)
    slugs = list(CONTENT)
    out.mkdir(parents=True, exist_ok=True)
    used_models = set()
    stats = []
    honest_keys = {}
    honest_meta = {}
    lines = []

    def emit(obj, model):
        used_models.add(model)
        lines.append(json.dumps(obj, ensure_ascii=False, separators=(",", ":")))

    # honest first: replayed sessions need their timing
    profiles = allocate(4 * per_class, HONEST_MIX)
    plan_rng = rng_for(seed, "plan")
    plan_rng.shuffle(profiles)
    for i, profile in enumerate(profiles, 1):
        sid = f"{GEN}-honest-{i:04d}"
        slug = slugs[rng_for(seed, sid, "slug").randrange(len(slugs))]
        target = sample_target(rng_for(seed, sid, "target"), profile)
        hi = 599 if profile == "quick_fix" else LIMITS[1]

        def builder(attempt, target, scale, sid=sid, profile=profile, slug=slug):
            b = build_honest(seed, sid, profile, slug, cat, attempt, target, scale)
            return b

        built = build_with_limits(seed, sid, builder, hi, target, None)
        obj, model = session_json(sid, "honest", profile, slug, None, built, seed, hi)
        emit(obj, model)
        honest_keys[sid] = obj["events"]
        honest_meta[sid] = (profile, built.rec.nkeys, bool(built.rec.reloads))
        stats.append(("honest", profile, built.rec.nkeys))

    sources = [s for s, (p, nk, rl) in honest_meta.items() if nk >= 700 and not rl]
    src_rng = rng_for(seed, "sources")
    src_rng.shuffle(sources)

    for cls in CLASSES[1:]:
        variants = VARIANTS[cls]
        for i in range(1, per_class + 1):
            sid = f"{GEN}-{cls}-{i:04d}"
            variant = variants[(i - 1) % len(variants)]
            r = rng_for(seed, sid, "setup")
            slug = slugs[r.randrange(len(slugs))]
            target = sample_length(r)
            source = None
            if cls in ("constant_interval", "uniform_jitter", "iid_human_like", "humanized_bot"):
                fac = bot_factory(cls, variant)

                def builder(attempt, target, scale, sid=sid, cls=cls, variant=variant, slug=slug, fac=fac):
                    return build_scripted(seed, sid, cls, variant, slug, cat, attempt, target, fac)
            elif cls == "replayed_timing":
                source = sources[(i - 1) % len(sources)]
                seq = replay_sequence(honest_keys[source], variant, rng_for(seed, sid, "offset"))
                src_keys = honest_meta[source][1]
                target = min(target, src_keys * 1.1) if variant != "offset_loop" else target

                def builder(attempt, target, scale, sid=sid, variant=variant, slug=slug, seq=seq):
                    fac = lambda rng: ReplayBot(rng, seq, variant)
                    return build_scripted(seed, sid, "replayed_timing", variant, slug, cat, attempt, target, fac)
            elif cls == "whole_paste":
                target = r.uniform(340, 900)   # what is typed by hand around the pastes
                def builder(attempt, target, scale, sid=sid, variant=variant, slug=slug):
                    return build_paste(seed, sid, variant, slug, cat, attempt, target)
            elif cls == "transcription":
                def builder(attempt, target, scale, sid=sid, variant=variant, slug=slug):
                    return build_transcription(seed, sid, variant, slug, cat, attempt, target)
            else:
                target = max(target, 700)

                def builder(attempt, target, scale, sid=sid, variant=variant, slug=slug):
                    return build_face_swap(seed, sid, variant, slug, cat, attempt, target)
            built = build_with_limits(seed, sid, builder, LIMITS[1], target, None)
            obj, model = session_json(sid, cls, variant, slug, source, built, seed, LIMITS[1])
            emit(obj, model)
            stats.append((cls, variant, built.rec.nkeys))

    with open(out / "sessions.jsonl", "w", encoding="utf-8", newline="\n") as fh:
        for line in lines:
            fh.write(line)
            fh.write("\n")
    cal = [m for m in calibration(seed) if m["model_id"] in used_models]
    with open(out / "face_models.json", "w", encoding="utf-8", newline="\n") as fh:
        json.dump(cal, fh, separators=(",", ":"))
        fh.write("\n")
    readme = HERE / "README.md"
    if readme.exists():
        (out / "README.md").write_bytes(readme.read_bytes())
    return stats


def main(argv=None):
    ap = argparse.ArgumentParser(description="g1 (lab): labelled candidate sessions from the typing literature")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--per-class", type=int, default=40)
    ap.add_argument("--catalogue", type=Path, default=DEFAULT_CATALOGUE)
    ap.add_argument("--check", action="store_true", help="re-read the corpus and verify it (check.py)")
    a = ap.parse_args(argv)
    t = time.time()
    stats = generate(a.seed, a.out, a.per_class, a.catalogue)
    print(f"wrote {len(stats)} sessions to {a.out} in {time.time() - t:.1f} s", file=sys.stderr)
    if a.check:
        sys.path.insert(0, str(HERE))
        import check
        return check.main([str(a.out)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
