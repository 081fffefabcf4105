"""How much of what a client or a user sent pidone repeats back: a short, printable prefix.

A 404 that echoes a 15 KB path makes every answer an amplifier for clients that never read,
and a path or signal name with a newline in it would forge lines in pidone's log.
"""

from __future__ import annotations

EXCERPT_CHARACTERS = 64


def excerpt(text: str, limit: int = EXCERPT_CHARACTERS) -> str:
    """`text` cut to `limit` characters ("..." tells that it was), control characters escaped."""
    cut = text[:limit]
    if not cut.isprintable():
        cut = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
                      for ch in cut)
    return cut + "..." if len(text) > limit else cut
