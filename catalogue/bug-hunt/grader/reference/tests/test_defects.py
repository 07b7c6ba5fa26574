"""One or more tests per defect, each failing on the code as shipped (see FINDINGS.md)."""

from __future__ import annotations

import threading
import unittest
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from helpers import DatabaseTestCase, RecordingMailer, frozen_time
from invoices import db
from invoices.app import create_app
from invoices.fx import RateCache
from invoices.listing import INVOICE_COLUMNS, Invoice, load_account, send_overdue_reminders, serialize
from invoices.payments import record_payment


class TotalPages(DatabaseTestCase):
    def pages(self, count: int) -> tuple[int, int, int]:
        self.add_account(1)
        self.add_invoices(1, count)
        client = create_app().test_client()
        first = client.get("/accounts/1/invoices?page=1").get_json()
        last = client.get(f"/accounts/1/invoices?page={first['total_pages']}")
        beyond = client.get(f"/accounts/1/invoices?page={first['total_pages'] + 1}")
        self.assertEqual(beyond.status_code, 404)
        return first["total_pages"], len(last.get_json()["invoices"]), last.status_code

    def test_exactly_40_invoices_are_two_full_pages(self):
        self.assertEqual(self.pages(40), (2, 20, 200))

    def test_41_invoices_are_three_pages_the_last_with_one(self):
        self.assertEqual(self.pages(41), (3, 1, 200))

    def test_no_invoices_is_one_empty_page(self):
        self.assertEqual(self.pages(0), (1, 0, 200))


class OverdueInTheAccountsTimeZone(DatabaseTestCase):
    def check(self, tz: str, due: date, local: datetime, overdue: bool) -> None:
        self.add_account(1, tz, "USD")
        invoice_id = self.add_invoice(1, currency="USD", due_date=due)
        row = self.db.execute(f"SELECT {INVOICE_COLUMNS} FROM invoices WHERE id = %s",
                              (invoice_id,)).fetchone()
        mailer = RecordingMailer()
        with frozen_time(local.replace(tzinfo=ZoneInfo(tz))):
            shown = serialize(Invoice(*row), load_account(self.db, 1))["overdue"]
            sent = send_overdue_reminders(self.db, mailer)
        self.assertEqual((shown, sent), (overdue, int(overdue)))

    def test_2359_on_the_due_date_in_los_angeles_is_not_overdue(self):
        self.check("America/Los_Angeles", date(2025, 3, 20), datetime(2025, 3, 20, 23, 59), False)

    def test_0001_after_the_due_date_in_los_angeles_is_overdue(self):
        self.check("America/Los_Angeles", date(2025, 3, 20), datetime(2025, 3, 21, 0, 1), True)

    def test_the_night_daylight_saving_ends_in_los_angeles(self):
        self.check("America/Los_Angeles", date(2025, 11, 2), datetime(2025, 11, 2, 23, 59), False)

    def test_0030_after_the_due_date_in_berlin_is_overdue(self):
        # 23:30 UTC on the due date: the UTC rule said "not yet"
        self.check("Europe/Berlin", date(2025, 1, 15), datetime(2025, 1, 16, 0, 30), True)

    def test_2359_in_honolulu(self):
        self.check("Pacific/Honolulu", date(2025, 6, 1), datetime(2025, 6, 1, 23, 59), False)


class Crash(Exception):
    pass


class CrashAfter:
    """A connection that dies (as a pod restart would) right after its n-th statement."""

    def __init__(self, conn, n: int):
        self._conn, self._left = conn, n

    def execute(self, *args, **kwargs):
        result = self._conn.execute(*args, **kwargs)
        self._left -= 1
        if self._left == 0:
            self._conn.close()
            raise Crash()
        return result

    def __getattr__(self, name):
        return getattr(self._conn, name)


class RecordPayment(DatabaseTestCase):
    def setUp(self):
        super().setUp()
        self.add_account(1)
        self.invoice_id = self.add_invoice(1, amount_cents=10_000)

    def state(self):
        row = self.db.execute("SELECT balance_cents, status FROM invoices WHERE id = %s",
                              (self.invoice_id,)).fetchone()
        count = self.db.execute("SELECT count(*) FROM payments").fetchone()[0]
        return row.balance_cents, row.status, count

    def test_a_crash_between_the_insert_and_the_update_is_repaired_by_the_retry(self):
        for n in range(1, 8):
            with self.subTest(crash_after_statement=n):
                self.db.execute("DELETE FROM payments")
                self.db.execute("UPDATE invoices SET balance_cents = 10000, status = 'open'")
                conn = db.connect()
                try:
                    record_payment(CrashAfter(conn, n), self.invoice_id, 10_000, "py_1")
                except Crash:
                    pass
                finally:
                    conn.close()
                record_payment(self.db, self.invoice_id, 10_000, "py_1")  # the provider retries
                self.assertEqual(self.state(), (0, "paid", 1))

    def test_concurrent_partial_payments_are_all_applied(self):
        start = threading.Barrier(4)

        def pay(i):
            with db.connect() as conn:
                start.wait()
                record_payment(conn, self.invoice_id, 2_500, f"py_part{i}")

        threads = [threading.Thread(target=pay, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        self.assertEqual(self.state(), (0, "paid", 4))

    def test_provider_ref_is_unique(self):
        record_payment(self.db, self.invoice_id, 100, "py_dup")
        with self.assertRaises(db.UniqueViolation):
            self.db.execute("INSERT INTO payments (invoice_id, amount_cents, provider_ref,"
                            " received_at) VALUES (%s, 100, 'py_dup', now())", (self.invoice_id,))


class RateCacheRefresh(unittest.TestCase):
    RATES = {"EUR": Decimal(1), "USD": Decimal("1.1")}

    def test_a_reader_during_a_refresh_sees_the_previous_rates(self):
        now = [0.0]
        release = threading.Event()
        calls = []

        def fetch():
            calls.append(now[0])
            if len(calls) == 2:
                release.wait(5)
            return dict(self.RATES)

        cache = RateCache(fetch=fetch, ttl_seconds=300, clock=lambda: now[0])
        cache.rate("USD")
        now[0] = 300.0
        refresher = threading.Thread(target=cache.rate, args=("USD",))
        refresher.start()
        while len(calls) < 2:
            pass
        try:
            self.assertEqual(cache.rate("USD"), Decimal("1.1"))  # KeyError before the fix
        finally:
            release.set()
            refresher.join()
        self.assertEqual(len(calls), 2)

    def test_a_failed_refresh_keeps_the_previous_rates(self):
        now = [0.0]
        fail = [False]

        def fetch():
            if fail[0]:
                raise TimeoutError("provider timed out")
            return dict(self.RATES)

        cache = RateCache(fetch=fetch, ttl_seconds=300, clock=lambda: now[0])
        cache.rate("USD")
        now[0], fail[0] = 301.0, True
        self.assertEqual(cache.rate("USD"), Decimal("1.1"))
        now[0] = 302.0
        self.assertEqual(cache.rate("USD"), Decimal("1.1"))


if __name__ == "__main__":
    unittest.main()
