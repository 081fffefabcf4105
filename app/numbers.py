"""Numbers as pidone reads them from people: ASCII digits only, nothing stripped or folded.

Python's int() and float() are generous: they take any Unicode digit ("١٥" is 15), surrounding
whitespace, underscores ("1_0") and, for float, "inf", "nan" and exponents. A command line or an
API that accepts such spellings means what no one wrote; these accept only the plain ones.
(Checked without `re`: this runs before the child is spawned.)
"""

from __future__ import annotations

MAX_DIGITS = 12
"""More digits than any count or duration pidone takes: int() of a huge string is costly."""


def is_whole_number(text: str, max_digits: int = MAX_DIGITS) -> bool:
    """ASCII digits only, at least one, at most `max_digits`."""
    return 0 < len(text) <= max_digits and _digits(text)


def parse_seconds(text: str) -> float:
    """A decimal number of seconds, zero or more: "3", "0.5", ".25"; ValueError otherwise."""
    whole, _, fraction = text.partition(".")
    if len(text) > 2 * MAX_DIGITS or not (whole or fraction) \
            or not (_digits(whole) and _digits(fraction)):
        raise ValueError(f"expected a number of seconds such as 3 or 0.5, not {text!r}")
    return float(text)


def _digits(text: str) -> bool:
    """Only 0-9, or nothing: str.isdigit() alone admits "³" and "١"."""
    return text.isascii() and (text.isdigit() or not text)
