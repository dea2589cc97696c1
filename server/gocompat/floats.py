"""``strconv.FormatFloat(f, fmt, prec, 64)`` for the formats fmt and encoding/json use: e, E, f, g, G.

``prec < 0`` means Go's shortest representation that reads back to the same float (Python's ``repr`` digits).
In that mode ``g`` switches to an exponent when the exponent is below -4 or at least 6 (hence ``1e+06``).
"""

from __future__ import annotations

import math
from decimal import Decimal

__all__ = ["format_float"]


def _shortest_digits(value: float) -> tuple[str, int]:
    """(digits, dp) such that abs(value) == 0.<digits> * 10**dp; digits has no trailing zeros, '' for zero."""
    _, digit_tuple, exponent = Decimal(repr(abs(value))).as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(str(d) for d in digit_tuple).lstrip("0")
    stripped = digits.rstrip("0")
    exponent += len(digits) - len(stripped)
    if not stripped:
        return "", 0
    return stripped, len(stripped) + exponent


def _format_e(digits: str, dp: int, upper: bool) -> str:
    mantissa = (digits[:1] or "0") + ("." + digits[1:] if len(digits) > 1 else "")
    exponent = dp - 1 if digits else 0
    sign = "-" if exponent < 0 else "+"
    return f"{mantissa}{'E' if upper else 'e'}{sign}{abs(exponent):02d}"


def _format_f(digits: str, dp: int) -> str:
    whole = (digits[:dp] + "0" * (dp - len(digits))) if dp > 0 else "0"
    fraction_width = max(len(digits) - dp, 0)
    fraction = "".join(digits[dp + i] if 0 <= dp + i < len(digits) else "0" for i in range(fraction_width))
    return whole + ("." + fraction if fraction else "")


def format_float(value: float, fmt: str, prec: int) -> str:
    """Format like Go. ``fmt`` is one of ``eEfgG``; ``prec`` is the precision or -1 for shortest."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    upper = fmt in "EG"
    if prec >= 0:
        # Python rounds the exact binary value half-to-even, as strconv does.
        return sign + format(abs(value), f".{max(prec, 1) if fmt in 'gG' else prec}{fmt}")
    digits, dp = _shortest_digits(value)
    if fmt in "eE":
        return sign + _format_e(digits, dp, upper)
    if fmt == "f":
        return sign + _format_f(digits, dp)
    exponent = dp - 1 if digits else -1
    if exponent < -4 or exponent >= 6:
        return sign + _format_e(digits, dp, upper)
    return sign + _format_f(digits, dp)
