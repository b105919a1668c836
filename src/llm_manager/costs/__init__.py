"""What calls cost and where the money went: prices, the spend ledger (and budgets, in :mod:`.budgets`).

>>> price = lookup_price("openai", "gpt-4o-mini")                      # doctest: +SKIP
>>> cost_of(price, prompt_tokens=1200, completion_tokens=300, cached_tokens=1000)  # doctest: +SKIP
Decimal('0.000285')
>>> async with Ledger(await open_database(None)) as ledger:            # doctest: +SKIP
...     ledger.record([LedgerRow(ts=now, request_id="r1", attempt=1, deployment="mini", provider="openai",
...                              model="gpt-4o-mini", status="ok", cost=Decimal("0.000285"))])
...     await ledger.flush()
...     await ledger.totals("model", since=parse_since("7d", now))

Importing this package does not import ``genai-prices`` (~0.2 s): the first price lookup does.
"""

from __future__ import annotations

from llm_manager.costs.ledger import BILLED_STATUSES, Dimension, Ledger, LedgerRow, LedgerStatus, Total, parse_since
from llm_manager.costs.prices import (
    ModelPrice,
    PriceTier,
    cost_of,
    lookup_price,
    resolve_price,
    warn_unknown_price_once,
)

__all__ = [
    "BILLED_STATUSES",
    "Dimension",
    "Ledger",
    "LedgerRow",
    "LedgerStatus",
    "ModelPrice",
    "PriceTier",
    "Total",
    "cost_of",
    "lookup_price",
    "parse_since",
    "resolve_price",
    "warn_unknown_price_once",
]
