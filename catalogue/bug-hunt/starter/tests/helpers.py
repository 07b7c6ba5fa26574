"""Test helpers: a fresh PostgreSQL schema per test, sample data, and a frozen clock.

Database tests need DATABASE_URL (set in the workspace's test runs); without it they are skipped.
Run everything with: python3 -m unittest discover -s tests -v
"""

from __future__ import annotations

import os
import pathlib
import unittest
import uuid
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from unittest import mock

from invoices import db

SCHEMA = pathlib.Path(__file__).resolve().parent.parent / "invoices" / "schema.sql"


class DatabaseTestCase(unittest.TestCase):
    """Each test runs in its own schema with invoices/schema.sql loaded. `self.db` is a connection
    to it, and get_db() (in any thread) returns one too."""

    def setUp(self):
        base = os.environ.get("DATABASE_URL")
        if not base:
            self.skipTest("DATABASE_URL is not set")
        self._base_url = base
        self.schema = "test_" + uuid.uuid4().hex[:12]
        with db.connect(base) as admin:
            admin.execute(f"CREATE SCHEMA {self.schema}")
        sep = "&" if "?" in base else "?"
        os.environ["DATABASE_URL"] = f"{base}{sep}options=-c%20search_path%3D{self.schema}"
        self.db = db.connect()
        self.db.execute(SCHEMA.read_text())

    def tearDown(self):
        self.db.close()
        db.close_db()
        os.environ["DATABASE_URL"] = self._base_url
        with db.connect(self._base_url) as admin:
            admin.execute(f"DROP SCHEMA {self.schema} CASCADE")

    def add_account(self, account_id: int, timezone_name: str = "Europe/London",
                    display_currency: str = "GBP") -> None:
        self.db.execute(
            "INSERT INTO accounts (id, name, email, timezone, display_currency)"
            " VALUES (%s, %s, %s, %s, %s)",
            (account_id, f"Account {account_id}", f"owner{account_id}@example.com",
             timezone_name, display_currency),
        )

    def add_invoice(self, account_id: int, *, amount_cents: int = 10_000, currency: str = "GBP",
                    due_date: date = date(2025, 3, 31), issued_at: datetime | None = None,
                    number: str | None = None) -> int:
        issued_at = issued_at or datetime(2025, 1, 1, tzinfo=timezone.utc)
        return self.db.execute(
            "INSERT INTO invoices (account_id, number, customer_name, currency, amount_cents,"
            " balance_cents, issued_at, due_date)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (account_id, number or f"INV-{uuid.uuid4().hex[:6]}", "A customer", currency,
             amount_cents, amount_cents, issued_at, due_date),
        ).fetchone()[0]

    def add_invoices(self, account_id: int, count: int, currency: str = "GBP") -> list[int]:
        """`count` invoices issued a day apart, oldest first; returns their ids."""
        start = datetime(2025, 1, 1, 9, tzinfo=timezone.utc)
        return [
            self.add_invoice(account_id, currency=currency, issued_at=start + timedelta(days=i),
                             number=f"INV-{i + 1:05d}")
            for i in range(count)
        ]


@contextmanager
def frozen_time(instant: datetime, module: str = "invoices.listing"):
    """Makes `datetime.now()`/`utcnow()` as seen by `module` return `instant` (an aware datetime)."""
    instant = instant.astimezone(timezone.utc)

    class FrozenDatetime(datetime):
        @classmethod
        def now(cls, tz=None):
            return instant.astimezone(tz) if tz is not None else instant.replace(tzinfo=None)

        @classmethod
        def utcnow(cls):
            return instant.replace(tzinfo=None)

    with mock.patch(f"{module}.datetime", FrozenDatetime):
        yield


class RecordingMailer:
    def __init__(self):
        self.sent: list[tuple] = []

    def send_overdue_notice(self, email, invoice, fee_cents) -> None:
        self.sent.append((email, invoice.number, fee_cents))
