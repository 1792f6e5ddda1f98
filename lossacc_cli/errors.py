"""One base exception; subclasses say which input was wrong.

Only the CLI maps these to exit codes: every :class:`LossaccError` is exit code 2 (the tool could
not judge); any other exception is a bug, exit code 3.
"""

from __future__ import annotations

from collections.abc import Sequence

from lossacc_cli.text import shown

_MAX_IDS_SHOWN = 5


class LossaccError(Exception):
    """Base class of every expected fault; the message is one line meant for the user."""


class UsageError(LossaccError):
    """The command line asks for something that cannot be done (bad option value, unknown epoch)."""


class InputError(LossaccError):
    """An input file is missing, unreadable or holds invalid values."""


class OutputError(LossaccError):
    """The report cannot be written where it was asked for (or must not be: it is an input)."""


def format_ids(ids: Sequence[object], count: int | None = None) -> str:
    """``"17 rows, first ids: a17, a203, b9"`` for the first few offending sample ids."""
    count = len(ids) if count is None else count
    first = ", ".join(shown(i) for i in list(ids)[:_MAX_IDS_SHOWN])
    noun = "row" if count == 1 else "rows"
    return f"{count} {noun}, first ids: {first}" if first else f"{count} {noun}"


def input_error(
    source: object,
    field: str,
    problem: str,
    *,
    ids: Sequence[object] = (),
    count: int | None = None,
    hint: str = "",
) -> InputError:
    """Build the one-line error the spec asks for: file, field, problem, offending ids and count.

    >>> str(input_error("e1.npz", "probs", "row sums differ from 1 by up to 0.31", ids=["a", "b"]))
    "e1.npz: field 'probs': row sums differ from 1 by up to 0.31 (2 rows, first ids: a, b)"
    """
    where = f" ({format_ids(ids, count)})" if (len(ids) or count) else ""
    tail = f"; {hint}" if hint else ""
    return InputError(f"{source}: field '{field}': {problem}{where}{tail}")
