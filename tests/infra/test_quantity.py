"""Kubernetes quantities: parsing every suffix, writing byte counts rounded up."""

from __future__ import annotations

from decimal import Decimal

import pytest

from infra.quantity import QuantityError, format_bytes, parse_quantity


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1Gi", Decimal(2**30)),
        ("512Mi", Decimal(512 * 2**20)),
        ("1.5Gi", Decimal(3 * 2**29)),
        ("250m", Decimal("0.25")),
        ("2", Decimal(2)),
        ("1G", Decimal(10**9)),
        ("1e3", Decimal(1000)),
        (4.0, Decimal(4)),
    ],
)
def test_parse(text: str | float, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "lots", "1GB", "Gi", "1 Gi"])
def test_parse_refuses_what_is_not_a_quantity(text: str) -> None:
    with pytest.raises(QuantityError, match="is not a Kubernetes quantity"):
        parse_quantity(text)


@pytest.mark.parametrize(
    ("size", "text"),
    [(1, "1Mi"), (2**20, "1Mi"), (2**20 + 1, "2Mi"), (10 * 2**30, "10Gi"), (10 * 2**30 + 1, "11Gi"), (0, "1Mi")],
)
def test_format_rounds_up(size: int, text: str) -> None:
    assert format_bytes(size) == text
    assert parse_quantity(text) >= size
