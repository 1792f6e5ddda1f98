"""Number formats of the page; ``None`` (a non-finite number in the JSON) shows as n/a."""

from __future__ import annotations


def _ok(x) -> bool:
    return x is not None and x == x


def nats(x, digits: int = 4) -> str:
    return f"{x:.{digits}f}" if _ok(x) else "n/a"


def signed(x, digits: int = 4) -> str:
    return f"{x:+.{digits}f}" if _ok(x) else "n/a"


def pct(x, digits: int = 2) -> str:
    return f"{100 * x:.{digits}f}%" if _ok(x) else "n/a"


def share(x) -> str:
    """A share of a named quantity, in whole percent (may exceed 100% or be negative)."""
    return f"{100 * x:.0f}%" if _ok(x) and abs(x) != float("inf") else "n/a"


def prob(x) -> str:
    """4 decimals, or 2 significant digits below 1e-3 (3e-7 must not show as 0.0000)."""
    if not _ok(x):
        return "n/a"
    return f"{x:.4f}" if x == 0 or x >= 1e-3 else f"{x:.1e}"


def exact(x) -> str:
    """For hover texts: six significant digits."""
    if x is None:
        return "n/a"
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if isinstance(x, int):
        return f"{x:,}"
    return f"{x:.6g}" if _ok(x) else "n/a"


def count(n) -> str:
    return f"{n:,}" if n is not None else "n/a"
