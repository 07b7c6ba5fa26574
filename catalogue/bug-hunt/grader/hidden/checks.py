"""The Bug Hunt's hidden checks. `python3 checks.py <key>` runs one check against the code in the
current directory (/work) and prints its verdict as one line: @@CLARITY-CHECK {"passed", "message"}.

Interfaces relied on (all fixed by the starter and named in the prompt): the route
GET /accounts/<id>/invoices?page=N of invoices.app.create_app() (a WSGI app), its "overdue" field,
invoices.listing.send_overdue_reminders(db, mailer) with mailer.send_overdue_notice(email, invoice,
fee_cents), invoices.payments.record_payment(db, invoice_id, amount_cents, provider_ref),
POST /webhooks/payments signed as invoices/signing.py documents, invoices.fx.RateCache(fetch,
ttl_seconds, clock) with rate() and convert(), invoices.db.get_db(), and invoices/schema.sql.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import pathlib
import sys
import threading
import time
import traceback
import types
import uuid
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

HERE = pathlib.Path(__file__).resolve().parent
MARKER = "@@CLARITY-CHECK "
WEBHOOK_SECRET = "whsec_grader_" + uuid.uuid4().hex[:8]


class CheckFailed(Exception):
    pass


def expect(condition, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


# --- database ------------------------------------------------------------------------------

_BASE_URL = os.environ.get("DATABASE_URL", "")


def fresh_schema():
    """A new schema with the submission's invoices/schema.sql; DATABASE_URL (used by get_db())
    points at it. Returns the grader's own connection to it."""
    import pgclient

    name = "g_" + uuid.uuid4().hex[:12]
    with pgclient.connect(_BASE_URL) as admin:
        admin.execute(f"CREATE SCHEMA {name}")
    sep = "&" if "?" in _BASE_URL else "?"
    os.environ["DATABASE_URL"] = f"{_BASE_URL}{sep}options=-c%20search_path%3D{name}"
    conn = pgclient.connect(os.environ["DATABASE_URL"])
    schema_file = pathlib.Path("invoices/schema.sql")
    sql = schema_file.read_text() if schema_file.exists() else (HERE / "original_schema.sql").read_text()
    try:
        conn.execute(sql)
    except Exception as exc:
        raise CheckFailed(f"invoices/schema.sql does not load into PostgreSQL: {exc}")
    return conn


def add_account(conn, account_id: int, tz: str = "Europe/London", currency: str = "GBP") -> None:
    conn.execute(
        "INSERT INTO accounts (id, name, email, timezone, display_currency) VALUES (%s, %s, %s, %s, %s)",
        (account_id, f"Account {account_id}", f"owner{account_id}@example.com", tz, currency),
    )


def add_invoice(conn, account_id: int, *, amount: int = 10_000, currency: str = "GBP",
                due: date = date(2025, 3, 31), issued: datetime | None = None, number: str | None = None) -> int:
    return conn.execute(
        "INSERT INTO invoices (account_id, number, customer_name, currency, amount_cents, balance_cents,"
        " issued_at, due_date) VALUES (%s, %s, 'A customer', %s, %s, %s, %s, %s) RETURNING id",
        (account_id, number or f"INV-{uuid.uuid4().hex[:8]}", currency, amount, amount,
         issued or datetime(2025, 1, 1, tzinfo=timezone.utc), due),
    ).fetchone()[0]


def add_invoices(conn, account_id: int, count: int) -> None:
    start = datetime(2024, 1, 1, 9, tzinfo=timezone.utc)
    for i in range(count):
        add_invoice(conn, account_id, issued=start + timedelta(days=i), number=f"INV-{i + 1:05d}")


def invoice_state(conn, invoice_id: int) -> tuple[int, str]:
    row = conn.execute("SELECT balance_cents, status FROM invoices WHERE id = %s", (invoice_id,)).fetchone()
    return row.balance_cents, row.status


def payment_rows(conn, invoice_id: int) -> list:
    return conn.execute("SELECT provider_ref, amount_cents FROM payments WHERE invoice_id = %s ORDER BY id",
                        (invoice_id,)).fetchall()


# --- HTTP ----------------------------------------------------------------------------------


def call(method: str, url: str, body: bytes = b"", headers: dict | None = None) -> tuple[int, object]:
    """Calls the submission's WSGI application; returns (status, parsed JSON body or None)."""
    from wsgiref.util import setup_testing_defaults

    from invoices.app import create_app

    path, _, query = url.partition("?")
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
               "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
               "CONTENT_TYPE": "application/json"}
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    setup_testing_defaults(environ)
    seen = {}

    def start_response(status, response_headers, exc_info=None):
        seen["status"] = int(status.split()[0])

    chunks = create_app()(environ, start_response)
    data = b"".join(chunks)
    try:
        parsed = json.loads(data) if data else None
    except ValueError:
        parsed = data.decode(errors="replace")[:200]
    return seen["status"], parsed


def page(account_id: int, n: int):
    return call("GET", f"/accounts/{account_id}/invoices?page={n}")


# --- frozen clock ----------------------------------------------------------------------------


@contextmanager
def frozen(instant: datetime):
    """Freezes the clock seen by the invoices package (datetime.now/utcnow/today, date.today,
    time.time), whichever way its modules imported them."""
    import datetime as real_dt

    utc = instant.astimezone(timezone.utc)

    class FrozenDatetime(real_dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return utc.astimezone(tz) if tz is not None else utc.replace(tzinfo=None)

        @classmethod
        def utcnow(cls):
            return utc.replace(tzinfo=None)

        @classmethod
        def today(cls):
            return utc.replace(tzinfo=None)

    class FrozenDate(real_dt.date):
        @classmethod
        def today(cls):
            return utc.date()

    fake_module = types.ModuleType("datetime")
    fake_module.__dict__.update(real_dt.__dict__)
    fake_module.datetime = FrozenDatetime
    fake_module.date = FrozenDate
    saved = []
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "invoices" or name.startswith("invoices.")):
            continue
        for attr, value in list(vars(module).items()):
            replacement = {id(real_dt.datetime): FrozenDatetime, id(real_dt.date): FrozenDate,
                           id(real_dt): fake_module}.get(id(value))
            if replacement is not None:
                saved.append((module, attr, value))
                setattr(module, attr, replacement)
    real_time = time.time
    time.time = lambda: utc.timestamp()
    try:
        yield
    finally:
        time.time = real_time
        for module, attr, value in saved:
            setattr(module, attr, value)


class Mailer:
    def __init__(self):
        self.sent = []

    def send_overdue_notice(self, email, invoice, fee_cents):
        self.sent.append((email, getattr(invoice, "number", invoice), fee_cents))


def overdue_at(tz: str, due: date, local: datetime) -> tuple[bool, int, int]:
    """An account in `tz` with one open invoice due on `due`, at local time `local`: returns
    (the invoice list's "overdue", reminders sent by the job, balance after the job)."""
    import invoices.listing  # noqa: F401  (so that its clock is frozen)
    from invoices.db import get_db
    from invoices.listing import send_overdue_reminders

    conn = fresh_schema()
    add_account(conn, 1, tz, "USD")
    invoice_id = add_invoice(conn, 1, currency="USD", due=due, amount=10_000)
    mailer = Mailer()
    with frozen(local.replace(tzinfo=ZoneInfo(tz))):
        status, body = page(1, 1)
        expect(status == 200, f"the invoice list answered {status}: {body}")
        shown = body["invoices"][0]["overdue"]
        sent = send_overdue_reminders(get_db(), mailer)
    balance, _ = invoice_state(conn, invoice_id)
    expect(sent == len(mailer.sent), f"send_overdue_reminders returned {sent} but sent {len(mailer.sent)} mails")
    return shown, sent, balance


def describe(local: datetime, tz: str) -> str:
    return f"{local:%Y-%m-%d %H:%M} in {tz}"


# --- checks: SUP-1184 pagination ---------------------------------------------------------------


def check_pagination_41():
    conn = fresh_schema()
    add_account(conn, 1)
    add_invoices(conn, 1, 41)
    status, first = page(1, 1)
    expect(status == 200, f"page 1 answered {status}: {first}")
    expect(first.get("total_pages") == 3, f"41 invoices gave total_pages {first.get('total_pages')}, expected 3")
    status, third = page(1, 3)
    expect(status == 200, f"page 3 of 41 invoices answered {status}: {third}")
    numbers = [i["number"] for i in third["invoices"]]
    expect(numbers == ["INV-00001"], f"page 3 of 41 invoices listed {numbers}, expected only the oldest, INV-00001")
    status, _ = page(1, 4)
    expect(status == 404, f"page 4 of 41 invoices answered {status}, expected 404")


def check_pagination_47():
    conn = fresh_schema()
    add_account(conn, 5521)
    add_invoices(conn, 5521, 47)
    status, third = page(5521, 3)
    expect(status == 200, f"page 3 of 47 invoices answered {status}: {third} (SUP-1184)")
    numbers = [i["number"] for i in third["invoices"]]
    expected = [f"INV-{n:05d}" for n in range(7, 0, -1)]
    expect(numbers == expected, f"page 3 listed {numbers}, expected the 7 oldest newest first")


def check_pagination_40():
    conn = fresh_schema()
    add_account(conn, 1)
    add_invoices(conn, 1, 40)
    status, first = page(1, 1)
    expect(status == 200 and first.get("total_pages") == 2,
           f"40 invoices: page 1 answered {status} with total_pages {first.get('total_pages') if isinstance(first, dict) else first}, expected 2")
    status, second = page(1, 2)
    expect(status == 200 and len(second["invoices"]) == 20, f"page 2 of 40 answered {status} with "
           f"{len(second['invoices']) if isinstance(second, dict) and 'invoices' in second else second} invoices, expected 20")
    status, third = page(1, 3)
    expect(status == 404, f"page 3 of exactly 40 invoices answered {status}, expected 404 (no empty extra page)")


def check_pagination_empty():
    conn = fresh_schema()
    add_account(conn, 1)
    status, body = page(1, 1)
    expect(status == 200, f"page 1 of an account without invoices answered {status}: {body}, expected 200")
    expect(body.get("invoices") == [] and body.get("total_pages") == 1 and body.get("total") == 0,
           f"an account without invoices got {body}, expected no invoices, total 0, total_pages 1")


def check_pagination_cover():
    conn = fresh_schema()
    add_account(conn, 1)
    add_invoices(conn, 1, 60)
    seen = []
    for n in (1, 2, 3):
        status, body = page(1, n)
        expect(status == 200, f"page {n} of 60 invoices answered {status}: {body}")
        seen += [i["number"] for i in body["invoices"]]
    expect(seen == [f"INV-{n:05d}" for n in range(60, 0, -1)],
           "pages 1 to 3 of 60 invoices did not list each invoice once, newest first")
    status, _ = page(1, 4)
    expect(status == 404, f"page 4 of 60 invoices answered {status}, expected 404")
    status, _ = call("GET", "/accounts/1/invoices?page=0")
    expect(status == 400, f"page=0 answered {status}, expected 400")


# --- checks: SUP-1201 overdue in the account's time zone --------------------------------------


def check_overdue_west_evening():
    for tz, due, local in [
        ("America/Los_Angeles", date(2025, 7, 15), datetime(2025, 7, 15, 17, 12)),
        ("America/Los_Angeles", date(2025, 7, 15), datetime(2025, 7, 15, 23, 59)),
        ("Pacific/Honolulu", date(2025, 7, 15), datetime(2025, 7, 15, 23, 59)),
    ]:
        shown, sent, balance = overdue_at(tz, due, local)
        expect(not shown, f"an invoice due {due} showed as overdue at {describe(local, tz)}")
        expect(sent == 0 and balance == 10_000,
               f"at {describe(local, tz)}, on the due date, the reminder job sent {sent} notice(s) and the balance became {balance}")


def check_overdue_west_after_midnight():
    tz, due, local = "America/Los_Angeles", date(2025, 7, 15), datetime(2025, 7, 16, 0, 1)
    shown, sent, balance = overdue_at(tz, due, local)
    expect(shown, f"an invoice due {due} was not overdue at {describe(local, tz)}")
    expect(sent == 1 and balance == 11_500,
           f"at {describe(local, tz)} the reminder job sent {sent} notice(s), balance {balance} (expected 1 and 11500)")


def check_overdue_east():
    tz, due, local = "Europe/Berlin", date(2025, 1, 15), datetime(2025, 1, 16, 0, 30)
    shown, sent, balance = overdue_at(tz, due, local)
    expect(shown and sent == 1 and balance == 11_500,
           f"at {describe(local, tz)} (23:30 UTC on the due date) the invoice showed overdue={shown}, "
           f"the job sent {sent} notice(s), balance {balance}; expected overdue, 1 notice, 11500")


def check_overdue_dst():
    tz, due = "America/Los_Angeles", date(2025, 11, 2)  # the night daylight saving time ends
    local = datetime(2025, 11, 2, 23, 59)
    shown, sent, balance = overdue_at(tz, due, local)
    expect(not shown and sent == 0, f"at {describe(local, tz)} (DST ended that night) the invoice due that day "
           f"showed overdue={shown} and the job sent {sent} notice(s)")
    local = datetime(2025, 11, 3, 0, 1)
    shown, sent, balance = overdue_at(tz, due, local)
    expect(shown and sent == 1, f"at {describe(local, tz)} the invoice due {due} showed overdue={shown} "
           f"and the job sent {sent} notice(s); expected overdue and 1 notice")


# --- checks: SUP-1207 payments ------------------------------------------------------------------


class Crash(BaseException):
    """The process dying: not an Exception, so `except Exception` in the code under test
    cannot swallow it."""


class _Counter:
    def __init__(self, crash_after: int | None, delay: float):
        self.left = crash_after
        self.delay = delay
        self.count = 0


class _CursorProxy:
    def __init__(self, cursor, owner):
        self._cursor, self._owner = cursor, owner

    def execute(self, *args, **kwargs):
        self._cursor.execute(*args, **kwargs)
        self._owner._after_statement()
        return self

    def __getattr__(self, name):
        return getattr(self._cursor, name)

    def __iter__(self):
        return iter(self._cursor)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


class ConnectionProxy:
    """The submission's connection, with a delay after each statement (a loaded database) or a
    crash after the n-th (the process dies: the connection closes, an open transaction rolls
    back). Transaction control goes straight to the real connection."""

    def __init__(self, conn, crash_after: int | None = None, delay: float = 0.0):
        self._conn = conn
        self._state = _Counter(crash_after, delay)

    def _after_statement(self):
        s = self._state
        s.count += 1
        if s.delay:
            time.sleep(s.delay)
        if s.left is not None:
            s.left -= 1
            if s.left == 0:
                try:
                    self._conn.close()
                finally:
                    raise Crash()

    def execute(self, *args, **kwargs):
        result = self._conn.execute(*args, **kwargs)
        self._after_statement()
        return result

    def cursor(self, *args, **kwargs):
        return _CursorProxy(self._conn.cursor(*args, **kwargs), self)

    def __getattr__(self, name):
        return getattr(self._conn, name)


def new_connection():
    """A connection of the submission's own client, to the check's schema."""
    import invoices.db as cdb

    if hasattr(cdb, "connect"):
        return cdb.connect(os.environ["DATABASE_URL"])
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("c", cdb.get_db()))
    t.start()
    t.join()
    return box["c"]


def check_payment_crash_retry():
    from invoices.payments import record_payment

    conn = fresh_schema()
    add_account(conn, 3104)
    statements = None
    for n in range(1, 12):
        invoice_id = add_invoice(conn, 3104, amount=10_000)
        ref = f"py_crash_{n}"
        real = new_connection()
        proxy = ConnectionProxy(real, crash_after=n)
        crashed = False
        try:
            record_payment(proxy, invoice_id, 10_000, ref)
        except Crash:
            crashed = True
        finally:
            try:
                real.close()
            except Exception:
                pass
        if not crashed:
            statements = proxy._state.count
        retry = new_connection()
        try:
            record_payment(retry, invoice_id, 10_000, ref)  # the provider retries the webhook
        except Exception as exc:
            raise CheckFailed(f"after a crash following statement {n} of record_payment, the provider's "
                              f"retry raised {type(exc).__name__}: {exc}")
        finally:
            retry.close()
        state, rows = invoice_state(conn, invoice_id), payment_rows(conn, invoice_id)
        expect(state == (0, "paid") and len(rows) == 1,
               f"the process died right after statement {n} of record_payment and the provider retried: "
               f"the invoice ended {state[1]} with balance {state[0]} and {len(rows)} payment row(s) "
               f"(expected paid, 0, 1 row)")
        if not crashed:
            break
    expect(statements is not None, "record_payment issued more than 10 statements; not checked beyond")


def run_concurrently(calls, delay: float = 0.03, timeout: float = 8.0):
    """Runs each record_payment(args) in its own thread and connection at the same moment, with
    `delay` after every statement. Returns the exceptions raised."""
    from invoices.payments import record_payment

    start = threading.Barrier(len(calls))
    errors = []

    def one(args):
        conn = new_connection()
        try:
            start.wait(5)
            record_payment(ConnectionProxy(conn, delay=delay), *args)
        except Exception as exc:
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=one, args=(a,), daemon=True) for a in calls]
    for t in threads:
        t.start()
    end = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.1, end - time.monotonic()))
    expect(not any(t.is_alive() for t in threads), "concurrent record_payment calls were still running after 8 s (deadlock?)")
    return errors


def check_payment_concurrent_parts():
    conn = fresh_schema()
    add_account(conn, 3104)
    for parts in ([6_000, 4_000], [2_500, 2_500, 2_500, 2_500]):
        invoice_id = add_invoice(conn, 3104, amount=10_000)
        errors = run_concurrently([(invoice_id, a, f"py_{invoice_id}_{i}") for i, a in enumerate(parts)])
        expect(not errors, f"concurrent partial payments raised {type(errors[0]).__name__}: {errors[0]}" if errors else "")
        state, rows = invoice_state(conn, invoice_id), payment_rows(conn, invoice_id)
        expect(state == (0, "paid") and len(rows) == len(parts),
               f"{len(parts)} partial payments {parts} of a 10000 invoice made at the same moment left it "
               f"{state[1]} with balance {state[0]} and {len(rows)} payment rows (expected paid, 0)")


def check_payment_concurrent_duplicate():
    conn = fresh_schema()
    add_account(conn, 3104)
    invoice_id = add_invoice(conn, 3104, amount=10_000)
    errors = run_concurrently([(invoice_id, 5_000, "py_same")] * 3)
    state, rows = invoice_state(conn, invoice_id), payment_rows(conn, invoice_id)
    expect(len(errors) < 3, f"every delivery failed: {errors[0]!r}" if len(errors) == 3 else "")
    expect(state == (5_000, "open") and len(rows) == 1,
           f"one 5000 payment delivered 3 times at the same moment left balance {state[0]} ({state[1]}) and "
           f"{len(rows)} payment rows (expected 5000, open, 1 row)")


def check_payment_redelivery():
    from invoices.db import get_db
    from invoices.payments import record_payment

    conn = fresh_schema()
    add_account(conn, 1)
    invoice_id = add_invoice(conn, 1, amount=10_000)
    record_payment(get_db(), invoice_id, 2_500, "py_once")
    record_payment(get_db(), invoice_id, 2_500, "py_once")
    state, rows = invoice_state(conn, invoice_id), payment_rows(conn, invoice_id)
    expect(state == (7_500, "open") and len(rows) == 1,
           f"one payment delivered twice left balance {state[0]} ({state[1]}), {len(rows)} rows; expected 7500, open, 1")


def check_payment_parts():
    from invoices.db import get_db
    from invoices.payments import record_payment

    conn = fresh_schema()
    add_account(conn, 1)
    invoice_id = add_invoice(conn, 1, amount=10_000)
    record_payment(get_db(), invoice_id, 3_000, "py_a")
    first = invoice_state(conn, invoice_id)
    record_payment(get_db(), invoice_id, 7_000, "py_b")
    second = invoice_state(conn, invoice_id)
    expect((first, second) == ((7_000, "open"), (0, "paid")),
           f"paying 3000 then 7000 of 10000 gave {first} then {second}; expected (7000, open) then (0, paid)")
    try:
        record_payment(get_db(), 987654, 100, "py_missing")
    except LookupError:
        pass
    except Exception as exc:
        raise CheckFailed(f"a payment for an unknown invoice raised {type(exc).__name__}, expected LookupError")
    else:
        raise CheckFailed("a payment for an unknown invoice was accepted silently (expected LookupError)")


def sign(body: bytes) -> str:
    return "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()


def check_payment_webhook():
    conn = fresh_schema()
    add_account(conn, 1)
    invoice_id = add_invoice(conn, 1, amount=10_000)

    def event(kind, ref):
        return json.dumps({"type": kind, "data": {"id": ref, "amount": 10_000,
                                                  "metadata": {"invoice_id": str(invoice_id)}}}).encode()

    body = event("payment.succeeded", "py_bad")
    status, _ = call("POST", "/webhooks/payments", body, {"Provider-Signature": "sha256=" + "0" * 64})
    expect(status == 400, f"a webhook with a wrong signature answered {status}, expected 400")
    body = event("payment.refunded", "py_other")
    status, _ = call("POST", "/webhooks/payments", body, {"Provider-Signature": sign(body)})
    expect(status == 204 and invoice_state(conn, invoice_id) == (10_000, "open"),
           f"another event type answered {status} and changed the invoice to {invoice_state(conn, invoice_id)}")
    body = event("payment.succeeded", "py_ok")
    for attempt in (1, 2):
        status, _ = call("POST", "/webhooks/payments", body, {"Provider-Signature": sign(body)})
        expect(status == 204, f"delivery {attempt} of a signed payment.succeeded answered {status}, expected 204")
    state = invoice_state(conn, invoice_id)
    expect(state == (0, "paid"), f"after a signed payment of the full amount (delivered twice) the invoice is {state}")


# --- checks: SUP-1212 FX rate cache -------------------------------------------------------------

OLD = {"EUR": Decimal(1), "USD": Decimal("1.1"), "GBP": Decimal("0.8")}
NEW = {"EUR": Decimal(1), "USD": Decimal("1.2"), "GBP": Decimal("0.8")}


def clock_at(box):
    return lambda: box[0]


def check_fx_reader_during_refresh():
    from invoices.fx import RateCache

    now = [1000.0]
    calls = []
    gate = threading.Event()

    def fetch():
        calls.append(now[0])
        if len(calls) >= 2:
            gate.wait(4)
            return dict(NEW)
        return dict(OLD)

    cache = RateCache(fetch=fetch, ttl_seconds=300, clock=clock_at(now))
    expect(cache.convert(1_000, "EUR", "USD") == 1_100, "convert(1000, EUR, USD) with USD at 1.1 did not give 1100")
    now[0] = 1400.0
    outcomes = {}

    def reader(name, fn):
        try:
            outcomes[name] = ("ok", fn())
        except BaseException as exc:  # noqa: BLE001
            outcomes[name] = ("error", f"{type(exc).__name__}: {exc}")

    refresher = threading.Thread(target=reader, args=("refresher", lambda: cache.convert(1_000, "EUR", "USD")), daemon=True)
    refresher.start()
    end = time.monotonic() + 2
    while len(calls) < 2 and time.monotonic() < end and refresher.is_alive():
        time.sleep(0.005)
    readers = [threading.Thread(target=reader, args=(f"reader{i}", (lambda: cache.convert(1_000, "EUR", "USD"))
                                                     if i % 2 else (lambda: cache.rate("GBP"))), daemon=True)
               for i in range(6)]
    for t in readers:
        t.start()
    time.sleep(0.3)
    gate.set()
    for t in [refresher] + readers:
        t.join(3)
    expect(not any(t.is_alive() for t in [refresher] + readers), "a request was still waiting 3 s after the refresh ended")
    bad = {k: v for k, v in outcomes.items() if v[0] == "error" or v[1] not in (1_100, 1_200, Decimal("0.8"))}
    expect(not bad, "requests made while the rate table was being refreshed failed or got wrong values: "
           + ", ".join(f"{k}: {v[1]}" for k, v in sorted(bad.items())))


def check_fx_failed_refresh():
    from invoices.fx import RateCache

    now = [1000.0]
    calls = []

    def fetch():
        calls.append(now[0])
        if len(calls) == 2:
            raise TimeoutError("FX provider timed out")
        return dict(OLD if len(calls) == 1 else NEW)

    cache = RateCache(fetch=fetch, ttl_seconds=300, clock=clock_at(now))
    cache.convert(1_000, "EUR", "USD")
    now[0] = 1400.0
    try:
        cache.convert(1_000, "EUR", "USD")  # the provider times out: this request may fail
    except KeyError as exc:
        raise CheckFailed(f"the request whose refresh timed out raised KeyError {exc}")
    except Exception:
        pass
    for t in (1401.0, 1460.0, 1699.0):
        now[0] = t
        try:
            value = cache.convert(1_000, "EUR", "USD")
        except Exception as exc:
            raise CheckFailed(f"after one FX timeout, a request {t - 1400:g} s later raised {type(exc).__name__}: {exc}")
        expect(value in (1_100, 1_200), f"after one FX timeout, convert gave {value} (expected 1100 or 1200)")


def check_fx_provider_down():
    from invoices.fx import RateCache

    now = [1000.0]
    calls = []

    def fetch():
        calls.append(now[0])
        if len(calls) >= 2:
            raise TimeoutError("FX provider down")
        return dict(OLD)

    cache = RateCache(fetch=fetch, ttl_seconds=300, clock=clock_at(now))
    cache.convert(1_000, "EUR", "USD")
    failures = []
    for t in (1400.0, 1401.0, 1500.0):
        now[0] = t
        try:
            cache.convert(1_000, "EUR", "USD")
        except Exception as exc:
            failures.append(f"{type(exc).__name__} at +{t - 1400:g} s")
    expect(not failures, "with the FX provider down, requests failed instead of using the previous rates: "
           + ", ".join(failures))


def check_fx_single_refresher():
    from invoices.fx import RateCache

    now = [1000.0]
    calls = []

    def fetch():
        calls.append(now[0])
        if len(calls) > 1:
            time.sleep(0.2)
        return dict(OLD)

    cache = RateCache(fetch=fetch, ttl_seconds=300, clock=clock_at(now))
    cache.rate("USD")
    now[0] = 1400.0
    start = threading.Barrier(8)

    def one():
        start.wait(3)
        try:
            cache.rate("USD")
        except Exception:
            pass

    threads = [threading.Thread(target=one, daemon=True) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(3)
    expect(len(calls) == 2, f"8 simultaneous requests on a stale table fetched the rates {len(calls) - 1} times (expected once)")


def check_fx_ttl():
    from invoices.fx import RateCache

    now = [0.0]
    calls = []

    def fetch():
        calls.append(now[0])
        return {"EUR": Decimal(1), "USD": Decimal("1.0842"), "GBP": Decimal("0.8571")}

    cache = RateCache(fetch=fetch, ttl_seconds=300, clock=clock_at(now))
    expect(cache.convert(500, "USD", "USD") == 500 and not calls, "converting USD to USD changed the amount or fetched rates")
    for t in (0.0, 10.0, 299.0):
        now[0] = t
        expect(cache.convert(10_000, "GBP", "USD") == 12_650, "convert(10000, GBP, USD) did not give 12650")
    expect(calls == [0.0], f"the rates were fetched at {calls} within the first 300 s (expected once, at 0)")
    now[0] = 301.0
    expect(cache.convert(1_000, "USD", "EUR") == 922, "convert(1000, USD, EUR) did not give 922")
    expect(calls == [0.0, 301.0], f"the rates were fetched at {calls} (expected at 0 and again after 300 s)")


# key, reviewer-readable name, weight, timeout (s), function
CHECKS = [
    ("pagination_41_invoices", "SUP-1184: 41 invoices make 3 pages; page 3 lists the oldest", 3, 10, check_pagination_41),
    ("pagination_ticket_47", "SUP-1184: with 47 invoices page 3 lists the 7 oldest", 2, 10, check_pagination_47),
    ("pagination_exactly_40", "Exactly 40 invoices make 2 full pages and no empty third page", 1, 10, check_pagination_40),
    ("pagination_no_invoices", "An account without invoices gets one empty page, not a 404", 1, 10, check_pagination_empty),
    ("pagination_regression_60", "60 invoices: every invoice listed once, newest first; bad pages refused", 1, 10, check_pagination_cover),
    ("overdue_not_on_due_date_west", "SUP-1201: not overdue on the evening of the due date in Los Angeles and Honolulu (list and reminder job)", 3, 12, check_overdue_west_evening),
    ("overdue_after_local_midnight", "Overdue, with one notice and the late fee, at 00:01 local after the due date", 2, 10, check_overdue_west_after_midnight),
    ("overdue_east_of_utc", "Berlin: overdue at 00:30 local after the due date (still the due date in UTC)", 2, 10, check_overdue_east),
    ("overdue_dst_change", "Los Angeles, the night DST ends: not overdue at 23:59, overdue at 00:01", 2, 10, check_overdue_dst),
    ("payment_crash_then_retry", "SUP-1207: a crash after any statement of record_payment, then the provider's retry, leaves the invoice paid once", 4, 15, check_payment_crash_retry),
    ("payment_concurrent_parts", "SUP-1207: partial payments of one invoice at the same moment are all applied", 4, 15, check_payment_concurrent_parts),
    ("payment_concurrent_duplicate", "One payment delivered three times at the same moment is recorded once", 1, 10, check_payment_concurrent_duplicate),
    ("payment_redelivery", "A redelivered payment is applied once", 1, 10, check_payment_redelivery),
    ("payment_parts_and_unknown_invoice", "Payments in parts leave the invoice open then paid; an unknown invoice raises LookupError", 1, 10, check_payment_parts),
    ("payment_webhook", "The webhook refuses bad signatures, ignores other events and applies a payment once", 1, 10, check_payment_webhook),
    ("fx_reader_during_refresh", "SUP-1212: requests made while the rates are being refreshed get rates, not KeyError", 4, 10, check_fx_reader_during_refresh),
    ("fx_one_failed_refresh", "SUP-1212: after one FX provider timeout the next requests convert again", 3, 10, check_fx_failed_refresh),
    ("fx_provider_down_keeps_rates", "With the FX provider down, the previous rates keep being served", 1, 10, check_fx_provider_down),
    ("fx_single_refresher", "Simultaneous requests on a stale table fetch the rates once", 1, 10, check_fx_single_refresher),
    ("fx_ttl_and_conversion", "Rates are cached for five minutes and conversions are unchanged", 1, 10, check_fx_ttl),
]


def main(key: str) -> None:
    fns = {c[0]: c[4] for c in CHECKS}
    os.environ["PAYMENTS_WEBHOOK_SECRET"] = WEBHOOK_SECRET
    try:
        fns[key]()
        verdict = {"passed": True, "message": ""}
    except CheckFailed as exc:
        verdict = {"passed": False, "message": str(exc)}
    except BaseException as exc:  # noqa: BLE001  (the submission's code raised)
        traceback.print_exc()
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/grader/" not in f.filename and "checks.py" not in f.filename]
        where = f" at {os.path.relpath(frames[-1].filename)}:{frames[-1].lineno}" if frames else ""
        verdict = {"passed": False, "message": f"the code under test raised {type(exc).__name__}: {exc}{where}"[:600]}
    sys.stdout.flush()
    sys.stderr.flush()
    os.write(1, (MARKER + json.dumps(verdict) + "\n").encode())
    os._exit(0)


if __name__ == "__main__":
    sys.path.insert(0, os.getcwd())
    main(sys.argv[1])
