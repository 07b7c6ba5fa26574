"""Exchange rates, for showing invoice amounts in the account's display currency."""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from decimal import ROUND_HALF_EVEN, Decimal

log = logging.getLogger(__name__)

RATES_URL = "https://fx.internal.ledgerline.example/v1/latest?base=EUR"


def fetch_rates() -> dict[str, Decimal]:
    """Rates against EUR, e.g. {"EUR": 1, "USD": 1.0842, "GBP": 0.8571, ...}."""
    with urllib.request.urlopen(RATES_URL, timeout=3) as resp:  # raises on errors and 4xx/5xx
        body = json.load(resp)
    table = {code: Decimal(str(rate)) for code, rate in body["rates"].items()}
    table["EUR"] = Decimal(1)
    return table


class RateCache:
    """Keeps the rate table for five minutes. One instance is shared by all request threads of a
    gunicorn worker.

    The table is never modified in place: a refresh builds a new one and swaps it in, so a reader
    always sees a complete table. One thread refreshes at a time; while it does, the others keep
    using the previous table (they wait only when there is none yet). A failed refresh keeps the
    previous table and is retried after `retry_seconds`.
    """

    def __init__(self, fetch=fetch_rates, ttl_seconds: float = 300.0, clock=time.monotonic,
                 retry_seconds: float = 30.0):
        self._fetch = fetch
        self._ttl = ttl_seconds
        self._retry = min(retry_seconds, ttl_seconds)
        self._clock = clock
        self._rates: dict[str, Decimal] = {}
        self._fetched_at: float | None = None
        self._refreshing = threading.Lock()

    def _fresh(self, now: float) -> bool:
        return self._fetched_at is not None and now - self._fetched_at < self._ttl

    def _table(self) -> dict[str, Decimal]:
        rates = self._rates
        if self._fresh(self._clock()):
            return rates
        # Only one refresher; the others serve the previous table if there is one.
        if not self._refreshing.acquire(blocking=not rates):
            return rates
        try:
            now = self._clock()
            if self._fresh(now):  # refreshed while we waited
                return self._rates
            try:
                table = dict(self._fetch())
            except Exception:
                if not self._rates:
                    raise
                log.warning("FX refresh failed; keeping the previous rates", exc_info=True)
                self._fetched_at = now - self._ttl + self._retry
                return self._rates
            self._rates = table
            self._fetched_at = now
            return table
        finally:
            self._refreshing.release()

    def rate(self, currency: str) -> Decimal:
        return self._table()[currency]

    def convert(self, amount_cents: int, from_currency: str, to_currency: str) -> int:
        if from_currency == to_currency:
            return amount_cents
        table = self._table()  # one table for both rates
        in_eur = Decimal(amount_cents) / table[from_currency]
        converted = in_eur * table[to_currency]
        return int(converted.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


rates = RateCache()
