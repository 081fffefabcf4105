"""Numbers as pidone reads them from people: ASCII digits only, nothing stripped or folded.

Python's int() and float() are generous: they take any Unicode digit ("١٥" is 15), surrounding
whitespace, underscores ("1_0") and, for float, "inf", "nan" and exponents. A command line or an
API that accepts such spellings means what no one wrote; these accept only the plain ones.
"""

from __future__ import annotations

import re

_WHOLE = re.compile(r"[0-9]+", re.ASCII)
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+", re.ASCII)
MAX_DIGITS = 12
"""More digits than any count or duration pidone takes: int() of a huge string is costly."""


def is_whole_number(text: str, max_digits: int = MAX_DIGITS) -> bool:
    """ASCII digits only, at least one, at most `max_digits`."""
    return len(text) <= max_digits and _WHOLE.fullmatch(text) is not None


def parse_seconds(text: str) -> float:
    """A decimal number of seconds, zero or more: "3", "0.5", ".25"; ValueError otherwise."""
    if len(text) > 2 * MAX_DIGITS or _DECIMAL.fullmatch(text) is None:
        raise ValueError(f"expected a number of seconds such as 3 or 0.5, not {text!r}")
    return float(text)
