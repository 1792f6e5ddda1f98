"""`lossacc cache info` / `lossacc cache clear`: the cache of per-epoch reductions."""

from __future__ import annotations

import typer

cache_app = typer.Typer(
    help="The cache of per-epoch reductions (each epoch file is reduced once; LOSSACC_CACHE_DIR "
    "moves it, --no-cache skips it).",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _size(n: int) -> str:
    return f"{n / (1 << 20):.1f} MB"


@cache_app.command("info")
def info() -> None:
    """Where the cache is, how many epochs it holds and its size.

    Example: lossacc cache info
    """
    from lossacc_cli.cache import MAX_BYTES, max_bytes, usage
    from lossacc_cli.text import shown

    folder, entries, size = usage()
    bound = max_bytes()
    note = "" if bound == MAX_BYTES else " (LOSSACC_CACHE_MAX_MB)"
    typer.echo(f"folder:  {shown(folder)}")
    typer.echo(f"epochs:  {entries}")
    typer.echo(f"size:    {_size(size)} of at most {_size(bound)}{note}")


@cache_app.command("clear")
def clear() -> None:
    """Remove every cached epoch reduction (they are rebuilt when next needed).

    Example: lossacc cache clear
    """
    from lossacc_cli.cache import clear as clear_cache
    from lossacc_cli.cache import usage
    from lossacc_cli.text import shown

    folder = usage()[0]
    removed, freed = clear_cache()
    typer.echo(f"removed {removed} cached epoch{'s' if removed != 1 else ''} ({_size(freed)}) "
               f"from {shown(folder)}")
