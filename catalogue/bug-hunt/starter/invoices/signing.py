"""Webhook signatures from the card payment provider.

The provider signs the raw request body with HMAC-SHA256 under the shared secret in
$PAYMENTS_WEBHOOK_SECRET and sends it as `Provider-Signature: sha256=<hex digest>`.
This file is infrastructure, not one of the defects.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os

from .web import abort

HEADER = "Provider-Signature"


def _secret() -> bytes:
    return os.environ.get("PAYMENTS_WEBHOOK_SECRET", "whsec_dev").encode()


def sign(body: bytes, secret: bytes | None = None) -> str:
    """The header value the provider sends for `body` (for tests and local tools)."""
    return "sha256=" + hmac.new(secret or _secret(), body, hashlib.sha256).hexdigest()


def verify_signature(request) -> dict:
    """Checks the provider's signature on the current request and returns the parsed event;
    aborts with 400 if the signature is missing or wrong, or the body is not a JSON object."""
    body = request.get_data()
    given = request.headers.get(HEADER, "")
    if not hmac.compare_digest(given, sign(body)):
        abort(400, "bad signature")
    try:
        event = json.loads(body)
    except ValueError:
        abort(400, "body is not JSON")
    if not isinstance(event, dict) or "type" not in event:
        abort(400, "not an event")
    return event
