"""Mutation fuzzing of epoch files through the CLI.

Start from small VALID Parquet and NPZ epoch files, damage their bytes (truncate at a random
point, flip random bytes, splice in a chunk of another file, zero a range, repeat or insert a
chunk), rewrite what they *claim* (an integer of the Parquet footer: row counts, value counts,
sizes, offsets; the shape or dtype in a ``.npy`` header; a member's sizes in the zip directory),
or replace the file by another *kind* of file (a FIFO, a socket, a link to ``/dev/zero``, a
broken link, a link loop, a folder), and run ``lossacc analyze`` on them in-process. A damaged
file may still be readable (exit 0) or be refused (exit 2 with one ``error: `` line); anything
else is a finding: a traceback, an exception escaping the CLI, an ``internal error`` line (an
unexpected exception caught only at the CLI edge), another exit code, a malformed message, a
case that does not end within its time limit (a hang), or one that ran out of memory under the
memory cap (a claim that was allocated before it was checked).

Every case is a pure function of ``(seed, index)``, so a finding is reproduced by its index::

    python -m tests.fuzz_inputs --cases 5000 --seed 1 --memory 2G
    python -m tests.fuzz_inputs --only 1234 --seed 1 --keep /tmp/case   # one case, files kept
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from typer.testing import CliRunner

from lossacc_cli.cli.app import app
from tests import claims

DEFAULT_SEED = 20240601

# --- valid seed files -------------------------------------------------------------------------


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _logits(n=8, k=3, seed=0, dtype=np.float32):
    return _rng(seed).normal(size=(n, k)).astype(dtype)


def _probs(n=8, k=3, seed=0):
    z = _logits(n, k, seed, np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _parquet_bytes(columns: dict, *, metadata=None, **options) -> bytes:
    table = pa.table(columns)
    if metadata:
        table = table.replace_schema_metadata(metadata)
    sink = io.BytesIO()
    pq.write_table(table, sink, **options)
    return sink.getvalue()


def _npz_bytes(compressed: bool = False, **arrays) -> bytes:
    sink = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(sink, **arrays)
    return sink.getvalue()


LABELS = np.array([0, 1, 2, 0, 1, 2, 0, 1])
IDS = np.arange(500, 508)
STR_IDS = [f"img-{i:03d}" for i in range(8)]


def _list(matrix, value_type=pa.float32()):
    return pa.array(list(np.asarray(matrix)), type=pa.list_(value_type))


def _fixed(matrix):
    matrix = np.asarray(matrix)
    flat = pa.array(matrix.reshape(-1), type=pa.from_numpy_dtype(matrix.dtype))
    return pa.FixedSizeListArray.from_arrays(flat, matrix.shape[1])


def _seed_builders(epoch: int) -> dict[str, tuple[str, Callable[[], bytes]]]:
    """name -> (extension, builder) of the valid files of one epoch."""
    s = epoch * 101
    names = json.dumps(["cat", "dog", "bird"]).encode()
    return {
        "parquet-list-str-ids": (".parquet", lambda: _parquet_bytes(
            {"sample_id": STR_IDS, "label": LABELS, "logits": _list(_logits(seed=s))},
            metadata={b"lossacc.class_names": names})),
        "parquet-fixed-probs": (".parquet", lambda: _parquet_bytes(
            {"id": IDS, "target": LABELS, "probs": _fixed(_probs(seed=s))}, compression="none")),
        "parquet-wide-f16": (".parquet", lambda: _parquet_bytes(
            {"sample_id": IDS, "label": LABELS}
            | {f"logit_{k}": _logits(seed=s, dtype=np.float16)[:, k] for k in range(3)})),
        "parquet-binary-split": (".parquet", lambda: _parquet_bytes(
            {"sample_id": IDS, "label": LABELS % 2, "prob": _probs(k=2, seed=s)[:, 1],
             "split": ["val", "test"] * 4, "epoch": np.full(8, epoch)},
            compression="gzip", use_dictionary=False)),
        "parquet-compact": (".parquet", lambda: _parquet_bytes(
            {"sample_id": IDS, "label": LABELS, "loss": -np.log(_probs(seed=s).max(axis=1)),
             "pred": _probs(seed=s).argmax(axis=1), "confidence": _probs(seed=s).max(axis=1)},
            row_group_size=3)),
        "npz-logits": (".npz", lambda: _npz_bytes(
            logits=_logits(seed=s), labels=LABELS, sample_ids=IDS)),
        "npz-probs-compressed": (".npz", lambda: _npz_bytes(
            True, probs=_probs(seed=s), labels=LABELS, ids=np.array(STR_IDS))),
        "npz-binary-logit-epoch": (".npz", lambda: _npz_bytes(
            logit=_logits(k=1, seed=s)[:, 0].astype(np.float64), labels=LABELS % 2,
            sample_ids=IDS, epoch=np.int64(epoch))),
    }


@lru_cache(maxsize=None)
def seed_files(epoch: int) -> dict[str, tuple[str, bytes]]:
    """name -> (extension, bytes) of every valid seed file, for one epoch number."""
    return {name: (ext, build()) for name, (ext, build) in _seed_builders(epoch).items()}


# --- mutations --------------------------------------------------------------------------------


def _span(rng, size: int, most: int) -> tuple[int, int]:
    start = int(rng.integers(0, max(size, 1)))
    return start, min(size, start + int(rng.integers(1, most + 1)))


def truncate(data: bytes, rng, donors) -> tuple[str, bytes]:
    cut = int(rng.integers(0, len(data)))
    return f"truncate at {cut}", data[:cut]


def flip_bytes(data: bytes, rng, donors) -> tuple[str, bytes]:
    out = bytearray(data)
    count = int(rng.integers(1, 9))
    where = rng.integers(0, len(out), size=count)
    for i in where:
        out[i] ^= int(rng.integers(1, 256))
    return f"flip {count} bytes at {sorted(where.tolist())}", bytes(out)


def flip_tail(data: bytes, rng, donors) -> tuple[str, bytes]:
    """Flip bytes in the last 200: the Parquet footer and the ZIP central directory live there."""
    out = bytearray(data)
    lo = max(0, len(out) - 200)
    where = rng.integers(lo, len(out), size=int(rng.integers(1, 5)))
    for i in where:
        out[i] ^= int(rng.integers(1, 256))
    return f"flip tail bytes at {sorted(where.tolist())}", bytes(out)


def splice(data: bytes, rng, donors) -> tuple[str, bytes]:
    donor = donors[int(rng.integers(len(donors)))]
    a, b = _span(rng, len(donor), 256)
    at = int(rng.integers(0, len(data)))
    overwrite = bool(rng.integers(2))
    tail = data[at + (b - a):] if overwrite else data[at:]
    return (f"splice donor[{a}:{b}] at {at} ({'overwrite' if overwrite else 'insert'})",
            data[:at] + donor[a:b] + tail)


def zero_range(data: bytes, rng, donors) -> tuple[str, bytes]:
    a, b = _span(rng, len(data), 64)
    return f"zero [{a}:{b}]", data[:a] + bytes(b - a) + data[b:]


def repeat_chunk(data: bytes, rng, donors) -> tuple[str, bytes]:
    a, b = _span(rng, len(data), 128)
    return f"repeat [{a}:{b}]", data[:b] + data[a:b] + data[b:]


def set_extreme(data: bytes, rng, donors) -> tuple[str, bytes]:
    """Overwrite 4 or 8 bytes with an extreme integer/float pattern (lengths, sizes, NaN, inf)."""
    patterns = [b"\xff\xff\xff\x7f", b"\x00\x00\x80\x7f", b"\x00\x00\xc0\x7f", b"\xff\xff\xff\xff",
                b"\x00\x00\x00\x80", b"\xff" * 8, b"\x00\x00\x00\x00\x00\x00\xf0\x7f"]
    pattern = patterns[int(rng.integers(len(patterns)))]
    at = int(rng.integers(0, max(1, len(data) - len(pattern))))
    return f"set {pattern.hex()} at {at}", data[:at] + pattern + data[at + len(pattern):]


_EXTREMES = (0, 1, -1, 2**31 - 1, 2**31, 2**32 + 7, 2**40, 10**12, 2**62, -(2**62))


def _extreme(rng, old: int) -> int:
    choice = int(rng.integers(len(_EXTREMES) + 3))
    if choice < len(_EXTREMES):
        return _EXTREMES[choice]
    return (old * 1000, old + 1, old - 1)[choice - len(_EXTREMES)]


def claim_footer(data: bytes, rng, donors) -> tuple[str, bytes]:
    """Rewrite one integer the Parquet footer claims (a row or value count, a size, an offset)."""
    try:
        footer = claims.read_footer(data)
    except Exception:  # noqa: BLE001 - a footer already damaged by an earlier mutation
        return flip_tail(data, rng, donors)
    entries = claims.all_ints(footer)
    if not entries:
        return flip_tail(data, rng, donors)
    picks = rng.choice(len(entries), size=min(len(entries), int(rng.integers(1, 4))), replace=False)
    steps = []
    for pick in sorted(int(i) for i in picks):
        entry = entries[pick]
        old, entry[2] = entry[2], _extreme(rng, entry[2])
        steps.append(f"footer int #{pick} (field {entry[0]}) {old} -> {entry[2]}")
    return "claim " + ", ".join(steps), claims.write_footer(data, footer)


def claim_npy(data: bytes, rng, donors) -> tuple[str, bytes]:
    """Rewrite the shape or dtype one ``.npy`` header of an NPZ archive claims."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
    except Exception:  # noqa: BLE001 - an archive already damaged by an earlier mutation
        return flip_bytes(data, rng, donors)
    if not infos:
        return flip_bytes(data, rng, donors)
    target = infos[int(rng.integers(len(infos)))]
    how = int(rng.integers(3))
    note = {}

    def change(name: str, blob: bytes) -> bytes:
        if name != target.filename or not blob.startswith(b"\x93NUMPY"):
            return blob
        header, _, _ = claims.npy_header(blob)
        shape = list(header["shape"])
        if how == 0 and shape:
            axis = int(rng.integers(len(shape)))
            shape[axis] = _extreme(rng, shape[axis])
        elif how == 1:
            shape = [int(_extreme(rng, 3)) for _ in range(int(rng.integers(0, 4)))]
        else:
            header = {**header, "descr": ("|V4000000000", "<f8", "|S100000000", "<U999999999", "|u1")[
                int(rng.integers(5))]}
        note["what"] = f"{name}: shape {tuple(shape)}, descr {header['descr']}"
        return claims.with_npy_header(blob, {**header, "shape": tuple(shape)})

    try:
        rebuilt = claims.rebuild_npz(data, change, compression=target.compress_type)
    except Exception:  # noqa: BLE001 - an archive already damaged by an earlier mutation
        return flip_bytes(data, rng, donors)
    return f"claim npy header {note.get('what', target.filename)}", rebuilt


def claim_zip(data: bytes, rng, donors) -> tuple[str, bytes]:
    """Rewrite the sizes the zip directory claims for a member."""
    sizes = (0, 1, 0xFFFFFFFF, 0xFFFFFF00, 2**31, int(rng.integers(1, 1 << 20)))
    file_size = sizes[int(rng.integers(len(sizes)))] if rng.integers(2) else None
    compress_size = sizes[int(rng.integers(len(sizes)))] if rng.integers(2) or file_size is None else None
    try:
        damaged = claims.claim_zip_sizes(data, file_size=file_size, compress_size=compress_size)
    except Exception:  # noqa: BLE001 - headers already cut by an earlier mutation
        return flip_bytes(data, rng, donors)
    return f"claim zip sizes file={file_size} compressed={compress_size}", damaged


def claim(data: bytes, rng, donors) -> tuple[str, bytes]:
    """A claim mutation that fits the file (footer for Parquet, headers or directory for NPZ)."""
    if data[-4:] == b"PAR1":
        return claim_footer(data, rng, donors)
    if data[:2] == b"PK":
        return (claim_npy if rng.integers(2) else claim_zip)(data, rng, donors)
    return set_extreme(data, rng, donors)


MUTATORS = (truncate, flip_bytes, flip_tail, splice, zero_range, repeat_chunk, set_extreme, claim, claim)

KINDS = ("fifo", "socket", "link to /dev/zero", "link to /dev/null", "broken link", "link loop",
         "folder", "empty")
"""What a damaged file can be replaced by: every kind that is no regular file (and an empty one)."""


def mutate(data: bytes, rng, donors: list[bytes]) -> tuple[str, bytes]:
    """One to three mutations in a row; returns their description and the damaged bytes."""
    steps = []
    for _ in range(int(rng.integers(1, 4))):
        if not data:
            break
        mutator = MUTATORS[int(rng.integers(len(MUTATORS)))]
        what, data = mutator(data, rng, donors)
        steps.append(what)
    return "; ".join(steps) or "empty", data


# --- running ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    index: int
    seed_file: str
    mutation: str
    layout: str
    exit_code: int
    problem: str | None
    detail: str

    def __str__(self) -> str:
        return (f"case {self.index} [{self.seed_file}; {self.layout}; {self.mutation}] -> exit "
                f"{self.exit_code}: {self.problem}: {self.detail}")


def judge(result) -> str | None:
    """None when the CLI behaved (exit 0, or exit 2 with one clean error line)."""
    text = result.stdout + result.stderr
    if "Traceback" in text:
        return "traceback"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return f"exception {type(result.exception).__name__}"
    if result.exit_code not in (0, 2):
        return f"exit code {result.exit_code}"
    lines = result.stderr.splitlines()
    if result.exit_code == 0:
        return None if all(line.startswith("warning: ") for line in lines) else "stray stderr"
    if not lines or not lines[-1].startswith("error: "):
        return "no error line"
    if "internal error" in lines[-1]:
        return "internal error"
    if "not enough memory" in lines[-1] or "malloc of size" in lines[-1]:
        return "out of memory"  # a claim was allocated before it was checked
    if result.stdout or not all(line.startswith("warning: ") for line in lines[:-1]):
        return "malformed output"
    return None


@dataclass(frozen=True)
class Case:
    """The files of one case (name -> bytes), which of them is PATH ('' = the folder), and how
    it was made."""

    index: int
    seed_file: str
    mutation: str
    layout: str
    files: dict
    path: str
    kinds: dict = None  # name -> one of KINDS, for files that are no regular file

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        for name, blob in self.files.items():
            (folder / name).write_bytes(blob)
        for name, kind in (self.kinds or {}).items():
            make_kind(folder, name, kind)
        return folder / self.path if self.path else folder


def make_kind(folder: Path, name: str, kind: str) -> None:
    """Create ``folder/name`` as a file of ``kind`` (see KINDS)."""
    path = folder / name
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        here = os.getcwd()
        os.chdir(folder)  # a socket's path is limited to ~100 bytes: bind it by its name alone
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.bind(name)
        finally:
            os.chdir(here)
    elif kind.startswith("link to "):
        os.symlink(kind.removeprefix("link to "), path)
    elif kind == "broken link":
        os.symlink(f"gone-{name}", path)
    elif kind == "link loop":
        os.symlink(name, path)
    elif kind == "folder":
        path.mkdir()
    else:
        path.write_bytes(b"")


def build_case(index: int, seed: int) -> Case:
    """Case ``index`` of stream ``seed``: a pure function of both."""
    rng = np.random.default_rng([seed, index])
    first, second = seed_files(1), seed_files(2)
    names = sorted(second)
    name = names[int(rng.integers(len(names)))]
    ext, data = second[name]
    mutation, damaged = mutate(data, rng, [blob for _, blob in second.values()])
    layout = ("alone", "beside a valid epoch", "as PATH")[int(rng.integers(3))]
    files = {f"epoch_002{ext}": damaged}
    kinds = {}
    if rng.random() < 0.08:  # another kind of file in its place
        kind = KINDS[int(rng.integers(len(KINDS)))]
        del files[f"epoch_002{ext}"]
        kinds[f"epoch_002{ext}"] = kind
        mutation = f"replaced by: {kind}"
    if layout == "beside a valid epoch":
        files[f"epoch_001{first[name][0]}"] = first[name][1]
    path = f"epoch_002{ext}" if layout == "as PATH" else ""
    return Case(index, name, mutation, layout, files, path, kinds)


CASE_SECONDS = 30
"""A case that has not ended after this long is a finding (a hang)."""


class _Hang(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: int):
    """Raise _Hang in the main thread after ``seconds`` (a blocking open() is interrupted too)."""
    if seconds <= 0 or not hasattr(signal, "SIGALRM"):
        yield
        return

    def ring(signum, frame):
        raise _Hang(f"no end after {seconds} s")

    previous = signal.signal(signal.SIGALRM, ring)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def memory_cap(limit: int | None):
    """Cap this process's address space at its current size plus ``limit`` bytes (soft limit,
    restored afterwards), so that an allocation a file claims fails instead of growing."""
    if not limit:
        yield
        return
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm", "rb") as handle:
        mapped = int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    cap = mapped + limit if hard == resource.RLIM_INFINITY else min(hard, mapped + limit)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


class _Hung:
    """Stands in for a CliRunner result when the case did not end."""

    exit_code = -1
    stdout = ""
    stderr = ""

    def __init__(self, exc: BaseException) -> None:
        self.exception = exc


def run_case(index: int, seed: int, workdir: Path, runner: CliRunner | None = None) -> Outcome:
    """Build case ``index`` of stream ``seed`` in ``workdir`` (removed afterwards) and run it."""
    case = build_case(index, seed)
    folder = workdir / f"case_{index}"
    path = case.write(folder)
    runner = runner or CliRunner()
    try:
        with time_limit(CASE_SECONDS):
            result = runner.invoke(app, ["analyze", str(path), "--format", "json"],
                                   env={"NO_COLOR": "1"})
    except _Hang as exc:
        result = _Hung(exc)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if isinstance(result, _Hung) or isinstance(result.exception, _Hang):
        return Outcome(index, case.seed_file, case.mutation, case.layout, -1, "hang",
                       f"no end after {CASE_SECONDS} s")
    problem = judge(result)
    detail = (result.stderr.strip().splitlines() or [""])[-1][:300]
    if problem == "traceback" or (problem or "").startswith("exception"):
        detail = repr(result.exception)[:300]
    return Outcome(index, case.seed_file, case.mutation, case.layout, result.exit_code, problem,
                   detail)


MEMORY_CAP = 2 << 30
"""Address space the cases may add to the process (``--memory``; 0: no cap)."""


def fuzz(n_cases: int, seed: int = DEFAULT_SEED, workdir: Path | None = None,
         start: int = 0, memory: int | None = MEMORY_CAP) -> list[Outcome]:
    """Run cases ``start .. start + n_cases - 1`` of stream ``seed`` under a memory cap."""
    runner = CliRunner()
    with tempfile.TemporaryDirectory() as tmp, memory_cap(memory):
        base = Path(workdir) if workdir is not None else Path(tmp)
        return [run_case(i, seed, base, runner) for i in range(start, start + n_cases)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--only", type=int, help="run just this case index")
    parser.add_argument("--keep", type=Path, help="with --only: leave the case's files here")
    parser.add_argument("--memory", default="2G", help="address space the cases may add (0: no cap)")
    args = parser.parse_args(argv)
    from lossacc_cli.readers.budget import parse_size

    memory = parse_size(args.memory) or None
    if args.only is not None:
        with tempfile.TemporaryDirectory() as tmp, memory_cap(memory):
            outcome = run_case(args.only, args.seed, Path(tmp))
        if args.keep:
            print("files in", build_case(args.only, args.seed).write(args.keep))
        print(outcome)
        return 1 if outcome.problem else 0
    outcomes = fuzz(args.cases, args.seed, memory=memory)
    bad = [o for o in outcomes if o.problem]
    codes = {code: sum(o.exit_code == code for o in outcomes) for code in (0, 2)}
    claimed = sum(o.mutation.startswith("claim") or "; claim" in o.mutation for o in outcomes)
    kinds = sum(o.mutation.startswith("replaced by") for o in outcomes)
    if memory:
        cap = f"memory cap +{args.memory}"
    else:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        cap = "no memory cap" if soft == resource.RLIM_INFINITY else f"address space limited to {soft >> 20} MiB"
    print(f"{len(outcomes)} cases (seed {args.seed}, {cap}; {claimed} with claims rewritten, {kinds} "
          f"of another file kind): exit 0: {codes[0]}, exit 2: {codes[2]}, findings: {len(bad)}, "
          f"tracebacks: {sum(o.problem == 'traceback' for o in bad)}, "
          f"hangs: {sum(o.problem == 'hang' for o in bad)}, "
          f"out of memory: {sum(o.problem == 'out of memory' for o in bad)}")
    for outcome in bad[:50]:
        print(outcome)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
