"""Kubernetes resource quantities (``512Mi``, ``1.5Gi``, ``250m``, ``2``) to numbers and back.

Only what the program and the policies need: parsing every suffix Kubernetes accepts for memory, storage and
CPU, and writing byte counts in whole MiB or GiB, rounded up, so a computed size is never smaller than asked.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

_SUFFIXES = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")
MIB = 2**20
GIB = 2**30


class QuantityError(ValueError):
    """A string that is not a Kubernetes quantity."""


def parse_quantity(value: str | int | float) -> Decimal:
    """The number a quantity stands for (``"1Gi"`` -> 1073741824, ``"250m"`` -> 0.25).

    Raises QuantityError naming the value when it is not a quantity.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Decimal(str(value))
    match = _QUANTITY.match(str(value).strip())
    if match is None or match.group(2) not in _SUFFIXES:
        raise QuantityError(f"{value!r} is not a Kubernetes quantity (examples: 512Mi, 20Gi, 2, 500m)")
    try:
        return Decimal(match.group(1)) * _SUFFIXES[match.group(2)]
    except InvalidOperation as exc:
        raise QuantityError(f"{value!r} is not a Kubernetes quantity") from exc


def format_bytes(size: int) -> str:
    """A byte count as a quantity, rounded up: whole GiB from 10 GiB on, else whole MiB."""
    if size >= 10 * GIB:
        return f"{math.ceil(size / GIB)}Gi"
    return f"{max(1, math.ceil(size / MIB))}Mi"
