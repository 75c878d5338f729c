"""Job functions for the RQ worker test (imported by name: apps.rq_jobs.*)."""

from __future__ import annotations


def add(x: int, y: int) -> int:
    return x + y


def word_count(text: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for word in text.split():
        counts[word] = counts.get(word, 0) + 1
    return counts


class PaymentDeclined(Exception):
    pass


def charge(amount: int) -> str:
    if amount > 100:
        raise PaymentDeclined(f"amount {amount} over the limit")
    return f"charged {amount}"
