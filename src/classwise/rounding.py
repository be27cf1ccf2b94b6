"""One number, one rounding: every accuracy (a fraction) is shown in points or percent by
`points`, which rounds the number as it is written (its shortest decimal form, half away from
zero), once. `f"{v * 100:.1f}"` rounds the binary product instead: 0.0735 * 100 is
7.3500000000000005 and shows as 7.4, while `f"{0.0735:.1%}"` shows 7.3; two columns of one
report disagreed that way."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal


def points(value, digits: int = 1, *, sign: bool = False, missing: str = "-") -> str:
    """A fraction in points (0.0735 -> "7.4"); `sign` writes "+" on positives (differences);
    None or NaN is `missing`."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return missing
    value = float(value)
    if math.isnan(value):
        return missing
    if math.isinf(value):
        return ("+" if sign and value > 0 else "") + ("inf" if value > 0 else "-inf")
    d = (Decimal(repr(value)) * 100).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    if d == 0:
        d = abs(d)  # no "-0.0"
    text = f"{d:f}"
    return f"+{text}" if sign and d >= 0 and not text.startswith("-") else text


def plural(n: int, word: str, words: str | None = None) -> str:
    """`1 pair`, `2 pairs`, `1 seed`, `3 arms`."""
    return f"{n} {word if n == 1 else (words or word + 's')}"


def percent(value, digits: int = 1, **kw) -> str:
    """`points` with a % sign (0.0735 -> "7.4%")."""
    text = points(value, digits, **kw)
    return text if text == kw.get("missing", "-") else f"{text}%"
