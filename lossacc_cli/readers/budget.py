"""What a file claims, bounded before anything is allocated for it.

A file states how much data follows before the data itself: a Parquet footer its row and value
counts, a ``.npy`` header its shape, a zip directory the size of each member. Decoders allocate
what is claimed before they find out whether the data is there (a 1 KB file whose footer claims
10**12 rows makes Arrow allocate terabytes). Every claim is checked here first, against two
bounds, and refused with a message that says what was claimed:

- what the file can hold: an uncompressed member is no larger than the archive, a deflated one
  at most 1,032 times its compressed size, a Parquet column chunk no larger than the file;
- the memory budget: :func:`memory_budget` bytes for one epoch's arrays, from the process's
  address-space limit, the cgroup's memory limit and the machine's memory (or
  ``LOSSACC_MEMORY_BUDGET``).
"""

from __future__ import annotations

import math
import os
import re
from functools import lru_cache

from lossacc_cli.errors import InputError

BUDGET_ENV = "LOSSACC_MEMORY_BUDGET"
"""Bytes one epoch's arrays may take (``512M``, ``4G``, ``1500000000``); overrides the default."""

BUDGET_SHARE = 0.75
"""Share of the memory available to the process that one epoch's arrays may claim."""

MIN_BUDGET = 256 << 20
"""Whatever the limits say, an epoch of this size is always tried."""

DEFLATE_MAX_RATIO = 1032
"""Deflate never expands data more than ~1032:1 (258-byte matches coded in 2 bits)."""

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?)(?:I?B)?\s*", re.IGNORECASE)


def human(n_bytes: float) -> str:
    """``7.28 TiB``, ``3.1 KiB``, ``512 bytes``."""
    if n_bytes < 1024:
        return f"{int(n_bytes)} bytes"
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        n_bytes /= 1024
        if n_bytes < 1024 or unit == "EiB":
            return f"{n_bytes:.3g} {unit}" if n_bytes < 1000 else f"{n_bytes:,.0f} {unit}"
    raise AssertionError("unreachable")


def parse_size(text: str) -> int | None:
    """``"512M"`` -> 536870912; None when ``text`` is no size."""
    match = _SIZE.fullmatch(text)
    if not match:
        return None
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def memory_budget() -> int:
    """Bytes one epoch's arrays may claim.

    ``LOSSACC_MEMORY_BUDGET`` when set; otherwise :data:`BUDGET_SHARE` of the least of: the
    address-space and data-segment limits (``ulimit -v``/``-d``) less what the process already
    maps, the cgroup's memory limit, and the machine's memory; never below :data:`MIN_BUDGET`.
    """
    override = os.environ.get(BUDGET_ENV)
    if override:
        size = parse_size(override)
        if size is not None:
            return size
    return _default_budget()


@lru_cache(maxsize=1)
def _default_budget() -> int:
    limits = [_physical_memory(), _cgroup_limit(), *_rlimit_headroom()]
    known = [n for n in limits if n is not None and n > 0]
    if not known:
        return 1 << 62
    return max(MIN_BUDGET, int(min(known) * BUDGET_SHARE))


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _cgroup_limit() -> int | None:
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path, "rb") as handle:
                text = handle.read(64).strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 60:  # v1 says "no limit" with a huge number
            return int(text)
    return None


def _rlimit_headroom() -> list[int | None]:
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return []
    mapped = _mapped_bytes()
    out: list[int | None] = []
    for name in ("RLIMIT_AS", "RLIMIT_DATA"):
        limit = getattr(resource, name, None)
        if limit is None:
            continue
        soft, _ = resource.getrlimit(limit)
        if soft != resource.RLIM_INFINITY and soft > 0:
            out.append(max(0, soft - mapped))
    return out


def _mapped_bytes() -> int:
    """The process's virtual size now (what an address-space limit already counts)."""
    try:
        with open("/proc/self/statm", "rb") as handle:
            return int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def refuse_beyond_file(label: str, claim: str, claimed: int, holds: int, what: str = "the file") -> None:
    """InputError when ``claimed`` bytes cannot come out of ``holds`` bytes of ``what``."""
    if claimed > holds:
        raise InputError(
            f"{label}: {claim} ({human(claimed)}), but {what} holds only {human(holds)}: "
            "the file is damaged or not what it claims to be"
        )


class Budget:
    """The memory one epoch's arrays claim, added up as they are planned; refused beyond
    :func:`memory_budget`."""

    def __init__(self, label: str, limit: int | None = None) -> None:
        self.label = label
        self.limit = memory_budget() if limit is None else limit
        self.claimed = 0

    def take(self, claim: str, n_bytes: int) -> None:
        """Count ``n_bytes`` more for ``claim`` (``"the footer claims 10**12 rows"``)."""
        self.claimed += max(0, int(n_bytes))
        if self.claimed > self.limit:
            raise InputError(
                f"{self.label}: {claim}: {human(self.claimed)} to hold in memory, more than the "
                f"{human(self.limit)} this process may use for one epoch (the budget comes from the "
                f"machine's memory and limits; {BUDGET_ENV} sets it)"
            )


def array_bytes(shape: tuple[int, ...], itemsize: int) -> int:
    """Bytes of an array of ``shape`` (exact Python integers: no overflow)."""
    return math.prod(int(n) for n in shape) * int(itemsize)


# --- Parquet: what the footer claims the columns read will decode to ----------------------------

_PHYSICAL_BYTES = {"BOOLEAN": 1, "INT32": 4, "INT64": 8, "INT96": 12, "FLOAT": 4, "DOUBLE": 8}
BYTES_PER_STRING = 24
"""A string id's decoded bytes, for claims bounded without the column chunks' sizes."""


def parquet_claim(metadata, groups: list[int], columns: list[str], file_size: int,
                  label: str, budget: Budget, chunk=None) -> None:
    """Check the decoded size of ``columns`` in row groups ``groups`` that the footer claims.

    A flat fixed-width column claims its rows (the row group's ``num_rows``) times its width.
    A list or byte-array column chunk claims a value count (``num_values``) and sizes; a chunk
    cannot be larger than the file. Decoded, it all must fit the budget. ``chunk(group, leaf)``
    gives a column chunk's metadata; without it (a large footer) a byte-array column counts
    :data:`BYTES_PER_STRING` per row and a list column the row group's uncompressed size.

    Raises
    ------
    InputError
        A claim beyond the file or beyond the budget (the message quotes the claim).
    """
    wanted = set(columns)
    schema = metadata.schema
    leaves = [(i, leaf) for i in range(metadata.num_columns)
              if (leaf := schema.column(i)).path.split(".")[0] in wanted]
    flat = sum(_PHYSICAL_BYTES[leaf.physical_type] for _, leaf in leaves
               if leaf.physical_type in _PHYSICAL_BYTES and not leaf.max_repetition_level)
    nested = [(i, leaf) for i, leaf in leaves
              if leaf.physical_type not in _PHYSICAL_BYTES or leaf.max_repetition_level]
    rows = 0
    decoded = 0
    for group in groups:
        row_group = metadata.row_group(group)
        group_rows = row_group.num_rows
        rows += group_rows
        decoded += max(0, group_rows) * flat
        if chunk is None:
            for _, leaf in nested:
                decoded += (max(0, row_group.total_byte_size) if leaf.max_repetition_level
                            else max(0, group_rows) * BYTES_PER_STRING)
            continue
        for i, leaf in nested:
            chunk_meta = chunk(group, i)
            refuse_beyond_file(label, f"the footer claims a column chunk '{leaf.path}' of "
                               f"{chunk_meta.total_compressed_size:,} bytes",
                               chunk_meta.total_compressed_size, file_size)
            width = _PHYSICAL_BYTES.get(leaf.physical_type)
            if width is None:  # byte arrays: their decoded size, plus one offset per value
                width = (leaf.length or 0) if leaf.physical_type == "FIXED_LEN_BYTE_ARRAY" else 0
                decoded += max(0, chunk_meta.total_uncompressed_size) if not width else 0
                width = width or 4
            decoded += max(0, chunk_meta.num_values) * width
    decoded += rows * 8 * max(1, len(wanted))  # offsets and validity, per row and column
    budget.take(f"the footer claims {rows:,} rows ({human(decoded)} decoded for the columns read)",
                decoded)


# --- NPZ: the .npy header of a member against the member and the archive -------------------------

ZIP_STORED, ZIP_DEFLATED = 0, 8


def npz_member_claim(info, shape: tuple[int, ...], dtype, header_bytes: int, archive_size: int,
                     label: str, name: str, budget: Budget) -> None:
    """Check a member whose .npy header claims ``shape`` of ``dtype``.

    The data must fit in what the zip directory says the member holds, which must fit in the
    archive (stored) or be at most :data:`DEFLATE_MAX_RATIO` times the compressed bytes (deflated);
    and the array must fit the budget.
    """
    claim = f"array '{name}': the .npy header claims shape {tuple(int(n) for n in shape)} of {dtype}"
    n_bytes = array_bytes(shape, dtype.itemsize)
    holds = max(0, info.file_size - header_bytes)
    if info.compress_type == ZIP_STORED:
        refuse_beyond_file(label, f"array '{name}': the zip directory claims {info.file_size:,} bytes",
                           info.compress_size, archive_size, "the archive")
        holds = min(holds, max(0, archive_size - header_bytes))
    elif info.compress_type == ZIP_DEFLATED:
        refuse_beyond_file(label, f"array '{name}': the zip directory claims {info.compress_size:,} "
                           "compressed bytes", info.compress_size, archive_size, "the archive")
        holds = min(holds, info.compress_size * DEFLATE_MAX_RATIO)
    refuse_beyond_file(label, claim, n_bytes, holds, f"member '{name}.npy'")
    budget.take(claim, n_bytes)
