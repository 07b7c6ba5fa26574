"""Invoice list for the customer dashboard, and the hourly overdue-reminder job."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from .db import get_db
from .fx import rates
from .web import Blueprint, jsonify, request

bp = Blueprint("invoices", __name__)

PAGE_SIZE = 20
LATE_FEE_CENTS = 1500

INVOICE_COLUMNS = (
    "id, number, customer_name, currency, amount_cents, balance_cents,"
    " due_date, status, late_fee_applied"
)


@dataclass(frozen=True)
class Account:
    id: int
    name: str
    email: str
    timezone: str  # IANA name, e.g. "America/Los_Angeles"
    display_currency: str


@dataclass(frozen=True)
class Invoice:
    id: int
    number: str
    customer_name: str
    currency: str
    amount_cents: int
    balance_cents: int
    due_date: date  # payable until the end of this day, in the account's time zone
    status: str  # 'open' | 'paid' | 'void'
    late_fee_applied: bool


def load_account(db, account_id: int) -> Account:
    row = db.execute(
        "SELECT id, name, email, timezone, display_currency FROM accounts WHERE id = %s",
        (account_id,),
    ).fetchone()
    if row is None:
        raise LookupError(f"account {account_id} not found")
    return Account(*row)


def is_overdue(invoice: Invoice, account: Account) -> bool:
    """An open invoice is overdue once its due date has ended in the account's time zone."""
    if invoice.status != "open":
        return False
    return datetime.now(ZoneInfo(account.timezone)).date() > invoice.due_date


def serialize(invoice: Invoice, account: Account) -> dict:
    return {
        "id": invoice.id,
        "number": invoice.number,
        "customer_name": invoice.customer_name,
        "currency": invoice.currency,
        "amount_cents": invoice.amount_cents,
        "balance_cents": invoice.balance_cents,
        "display_amount_cents": rates.convert(
            invoice.amount_cents, invoice.currency, account.display_currency
        ),
        "display_currency": account.display_currency,
        "due_date": invoice.due_date.isoformat(),
        "status": invoice.status,
        "overdue": is_overdue(invoice, account),
    }


@bp.get("/accounts/<int:account_id>/invoices")
def list_invoices(account_id: int):
    try:
        page = int(request.args.get("page", "1"))
    except ValueError:
        return jsonify({"error": "page must be an integer"}), 400
    if page < 1:
        return jsonify({"error": "page must be 1 or more"}), 400

    db = get_db()
    account = load_account(db, account_id)
    total = db.execute(
        "SELECT count(*) FROM invoices WHERE account_id = %s", (account_id,)
    ).fetchone()[0]
    total_pages = max(-(-total // PAGE_SIZE), 1)  # ceiling division
    if page > total_pages:
        return jsonify({"error": "page out of range"}), 404

    rows = db.execute(
        f"""
        SELECT {INVOICE_COLUMNS}
        FROM invoices
        WHERE account_id = %s
        ORDER BY issued_at DESC, id DESC
        LIMIT %s OFFSET %s
        """,
        (account_id, PAGE_SIZE, (page - 1) * PAGE_SIZE),
    ).fetchall()
    return jsonify(
        {
            "page": page,
            "total_pages": total_pages,
            "total": total,
            "invoices": [serialize(Invoice(*row), account) for row in rows],
        }
    )


def send_overdue_reminders(db, mailer) -> int:
    """Runs hourly from cron. The first time an open invoice is seen overdue, adds the late fee
    and emails the account owner. Returns the number of reminders sent."""
    accounts = [
        Account(*row)
        for row in db.execute(
            "SELECT id, name, email, timezone, display_currency FROM accounts WHERE active"
        ).fetchall()
    ]
    sent = 0
    for account in accounts:
        invoices = [
            Invoice(*row)
            for row in db.execute(
                f"SELECT {INVOICE_COLUMNS} FROM invoices"
                " WHERE account_id = %s AND status = 'open' AND NOT late_fee_applied",
                (account.id,),
            ).fetchall()
        ]
        for invoice in invoices:
            if not is_overdue(invoice, account):
                continue
            with db.transaction():
                updated = db.execute(
                    "UPDATE invoices"
                    " SET balance_cents = balance_cents + %s, late_fee_applied = true"
                    " WHERE id = %s AND status = 'open' AND NOT late_fee_applied",
                    (LATE_FEE_CENTS, invoice.id),
                ).rowcount
            if updated:
                mailer.send_overdue_notice(account.email, invoice, LATE_FEE_CENTS)
                sent += 1
    return sent
