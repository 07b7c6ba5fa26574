"""Exchange rates, for showing invoice amounts in the account's display currency."""

from __future__ import annotations

import json
import time
import urllib.request
from decimal import ROUND_HALF_EVEN, Decimal

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
    gunicorn worker."""

    def __init__(self, fetch=fetch_rates, ttl_seconds: float = 300.0, clock=time.monotonic):
        self._fetch = fetch
        self._ttl = ttl_seconds
        self._clock = clock
        self._rates: dict[str, Decimal] = {}
        self._fetched_at: float | None = None

    def _refresh_if_stale(self) -> None:
        now = self._clock()
        if self._fetched_at is not None and now - self._fetched_at < self._ttl:
            return
        # Mark the table fresh first so that concurrent requests don't all call the FX service.
        self._fetched_at = now
        self._rates.clear()
        self._rates.update(self._fetch())

    def rate(self, currency: str) -> Decimal:
        self._refresh_if_stale()
        return self._rates[currency]

    def convert(self, amount_cents: int, from_currency: str, to_currency: str) -> int:
        if from_currency == to_currency:
            return amount_cents
        in_eur = Decimal(amount_cents) / self.rate(from_currency)
        converted = in_eur * self.rate(to_currency)
        return int(converted.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


rates = RateCache()
