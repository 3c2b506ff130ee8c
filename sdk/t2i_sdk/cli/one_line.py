"""An error message as the one line a CLI prints for it."""
from __future__ import annotations


def one_line(exc: BaseException) -> str:
    """``exc``'s message with its lines joined (``name`` alone when it has no message)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return " ".join(lines) or type(exc).__name__
