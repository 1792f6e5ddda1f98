"""The options every command shares, declared once.

A command declares only its own parameters and receives the shared ones as one object::

    @app.command()
    @shared_options(top=True, fmt=True)
    def outliers(opts: Shared, epoch: EpochOpt = "last") -> None: ...

:func:`shared_options` appends the shared parameters to the command's signature (so Typer shows
and parses them like any other) and hands them to the command as a :class:`Shared`.
"""

from __future__ import annotations

import functools
import inspect
import typing
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer



class Format(str, Enum):
    table = "table"
    json = "json"


class ScoresChoice(str, Enum):
    logits = "logits"
    probs = "probs"


class ColorChoice(str, Enum):
    auto = "auto"
    always = "always"
    never = "never"


# A string, not a Path: Path("s3://bucket/run") would become "s3:/bucket/run".
PathArg = Annotated[
    Optional[str],
    typer.Argument(help="Folder of per-epoch .parquet/.npz files, one long-format Parquet file, or a "
                   "URL (s3://, gs://, az://, hf://). "
                   "Default: preds/ when it exists, else the current folder.", show_default=False),
]
EpochOpt = Annotated[str, typer.Option("--epoch", "-e", help="An epoch number, 'best' (lowest loss) or 'last'.")]
FromOpt = Annotated[
    Optional[str], typer.Option("--from", help="Earlier epoch: a number, 'best' or 'last'. Default: best.")
]
ToOpt = Annotated[Optional[str], typer.Option("--to", help="Later epoch: a number, 'best' or 'last'. Default: last.")]


@dataclass(frozen=True)
class Shared:
    """The shared options as parsed; ``fmt`` and ``top`` are None for commands without them."""

    path: str | None
    output: str | None
    split: str | None
    label_col: str | None
    id_col: str | None
    scores: ScoresChoice | None
    renormalize: bool
    class_names: Path | None
    jobs: int
    color: ColorChoice
    debug: bool
    strict: bool = False
    no_cache: bool = False
    fmt: Format | None = None
    top: int | None = None

    def read_options(self):
        from lossacc_cli.readers.model import ReadOptions

        return ReadOptions(
            label_col=self.label_col,
            id_col=self.id_col,
            scores=self.scores.value if self.scores is not None else None,
            split=self.split,
            renormalize=self.renormalize,
            strict=self.strict,
        )

    def problem(self) -> str | None:
        """What is wrong with the values (one line), or None. Ranges are checked here rather than
        by Click, whose message is a usage block rather than one ``error:`` line."""
        if self.top is not None and self.top < 1:
            return f"--top must be at least 1, not {self.top}"
        if self.jobs < 0:
            return f"--jobs must be 0 (all cores) or more, not {self.jobs}"
        return None


# name -> (annotation, default); the order is the order in --help
_COMMON: dict[str, tuple[object, object]] = {
    "path": (PathArg, None),
    "output": (Annotated[Optional[str], typer.Option(
        "--output", "-o", help="Write the report to this file (atomically); '-' is stdout.")], None),
    "split": (Annotated[Optional[str], typer.Option(
        "--split", help="Keep only rows whose split column equals this.")], None),
    "label_col": (Annotated[Optional[str], typer.Option("--label-col", help="Name of the label column.")], None),
    "id_col": (Annotated[Optional[str], typer.Option("--id-col", help="Name of the sample-id column.")], None),
    "scores": (Annotated[Optional[ScoresChoice], typer.Option(
        "--scores", help="Use logits or probs when a file has both.")], None),
    "renormalize": (Annotated[bool, typer.Option(
        "--renormalize", help="Rescale probability rows that do not sum to 1 (within 1e-3).")], False),
    "class_names": (Annotated[Optional[Path], typer.Option(
        "--class-names", help="File with one class name per line.")], None),
    "jobs": (Annotated[int, typer.Option(
        "--jobs", help="CPU cores to use for reading epochs (0: all of them; never more than the "
        "cores and the epochs). The results do not depend on it.")], 0),
    "color": (Annotated[ColorChoice, typer.Option(
        "--color", help="Colour in the terminal: auto (default), always or never. Never changes the layout.")],
        ColorChoice.auto),
    "debug": (Annotated[bool, typer.Option("--debug", help="Show the traceback of an internal error.")], False),
    "strict": (Annotated[bool, typer.Option(
        "--strict", help="Refuse a newest epoch file that is still being written, instead of "
        "skipping it with a warning.")], False),
    "no_cache": (Annotated[bool, typer.Option(
        "--no-cache", help="Reduce every epoch again, without the cache of earlier runs "
        "(`lossacc cache info`).")], False),
}
_FMT = (Annotated[Format, typer.Option("--format", "-f", help="table (terminal) or json.")], Format.table)
_TOP = (Annotated[int, typer.Option("--top", help="How many samples/classes to list (at least 1).")], 10)


def shared_options(*, fmt: bool = True, top: bool = False):
    """Decorate a command taking ``opts: Shared`` first: the shared options join its signature.

    ``fmt`` adds ``--format table|json``; ``top`` adds ``--top K``.
    """
    extra = dict(_COMMON)
    if fmt:
        extra["fmt"] = _FMT
    if top:
        extra["top"] = _TOP

    def decorate(command):
        hints = typing.get_type_hints(command, include_extras=True)
        own = [p.replace(annotation=hints.get(p.name, p.annotation))
               for p in inspect.signature(command).parameters.values() if p.name != "opts"]
        added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
                 for name, (annotation, default) in extra.items()]
        # the path argument first, then the command's own options, then the shared ones
        params = added[:1] + [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own] + added[1:]

        @functools.wraps(command)
        def wrapper(**kwargs):
            shared = Shared(**{name: kwargs.pop(name) for name in extra})
            problem = shared.problem()
            if problem is not None:
                from lossacc_cli.cli.common import fail

                raise fail(problem)
            return command(shared, **kwargs)

        wrapper.__signature__ = inspect.Signature(params)
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        del wrapper.__wrapped__  # Typer must see the new signature, not the command's own
        return wrapper

    return decorate
