"""Webhook from the card payment provider."""

from __future__ import annotations

from .db import get_db
from .signing import verify_signature
from .web import Blueprint, request

bp = Blueprint("payments", __name__)


@bp.post("/webhooks/payments")
def payment_webhook():
    event = verify_signature(request)  # aborts with 400 on a bad signature
    if event["type"] != "payment.succeeded":
        return "", 204
    payment = event["data"]
    record_payment(
        get_db(),
        invoice_id=int(payment["metadata"]["invoice_id"]),
        amount_cents=payment["amount"],
        provider_ref=payment["id"],
    )
    return "", 204


def record_payment(db, invoice_id: int, amount_cents: int, provider_ref: str) -> None:
    """Applies a successful payment to its invoice.

    The provider delivers each event at least once and retries until it receives a 2xx, so this
    must be safe to call twice with the same provider_ref. Invoices may be paid in several parts.
    """
    with db.transaction():
        # Lock the invoice first: concurrent payments of one invoice (parts, or redeliveries of
        # one event) then run one after the other, and the duplicate check below cannot race.
        invoice = db.execute(
            "SELECT balance_cents, status FROM invoices WHERE id = %s FOR UPDATE", (invoice_id,)
        ).fetchone()
        if invoice is None:
            raise LookupError(f"invoice {invoice_id} not found")

        already = db.execute(
            "SELECT 1 FROM payments WHERE provider_ref = %s", (provider_ref,)
        ).fetchone()
        if already:
            return

        db.execute(
            "INSERT INTO payments (invoice_id, amount_cents, provider_ref, received_at)"
            " VALUES (%s, %s, %s, now())",
            (invoice_id, amount_cents, provider_ref),
        )
        # The payment row and the balance commit together or not at all.
        db.execute(
            "UPDATE invoices SET balance_cents = balance_cents - %s,"
            " status = CASE WHEN balance_cents - %s <= 0 THEN 'paid' ELSE 'open' END"
            " WHERE id = %s",
            (amount_cents, amount_cents, invoice_id),
        )
