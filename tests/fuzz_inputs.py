"""Mutation fuzzing of epoch files through the CLI.

Start from small VALID Parquet and NPZ epoch files, damage their bytes (truncate at a random
point, flip random bytes, splice in a chunk of another file, zero a range, repeat or insert a
chunk), and run ``lossacc analyze`` on them in-process. A damaged file may still be readable
(exit 0) or be refused (exit 2 with one ``error: `` line); anything else is a finding: a
traceback, an exception escaping the CLI, an ``internal error`` line (an unexpected exception
caught only at the CLI edge), another exit code, or a malformed message.

Every case is a pure function of ``(seed, index)``, so a finding is reproduced by its index::

    python -m tests.fuzz_inputs --cases 5000 --seed 1
    python -m tests.fuzz_inputs --only 1234 --seed 1 --keep /tmp/case   # one case, files kept
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from typer.testing import CliRunner

from lossacc_cli.cli.app import app

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


MUTATORS = (truncate, flip_bytes, flip_tail, splice, zero_range, repeat_chunk, set_extreme)


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

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        for name, blob in self.files.items():
            (folder / name).write_bytes(blob)
        return folder / self.path if self.path else folder


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
    if layout == "beside a valid epoch":
        files[f"epoch_001{first[name][0]}"] = first[name][1]
    path = f"epoch_002{ext}" if layout == "as PATH" else ""
    return Case(index, name, mutation, layout, files, path)


def run_case(index: int, seed: int, workdir: Path, runner: CliRunner | None = None) -> Outcome:
    """Build case ``index`` of stream ``seed`` in ``workdir`` (removed afterwards) and run it."""
    case = build_case(index, seed)
    folder = workdir / f"case_{index}"
    path = case.write(folder)
    runner = runner or CliRunner()
    try:
        result = runner.invoke(app, ["analyze", str(path), "--format", "json"],
                               env={"NO_COLOR": "1"})
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    problem = judge(result)
    detail = (result.stderr.strip().splitlines() or [""])[-1][:300]
    if problem == "traceback" or (problem or "").startswith("exception"):
        detail = repr(result.exception)[:300]
    return Outcome(index, case.seed_file, case.mutation, case.layout, result.exit_code, problem,
                   detail)


def fuzz(n_cases: int, seed: int = DEFAULT_SEED, workdir: Path | None = None,
         start: int = 0) -> list[Outcome]:
    """Run cases ``start .. start + n_cases - 1`` of stream ``seed``."""
    runner = CliRunner()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(workdir) if workdir is not None else Path(tmp)
        return [run_case(i, seed, base, runner) for i in range(start, start + n_cases)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--only", type=int, help="run just this case index")
    parser.add_argument("--keep", type=Path, help="with --only: leave the case's files here")
    args = parser.parse_args(argv)
    if args.only is not None:
        with tempfile.TemporaryDirectory() as tmp:
            outcome = run_case(args.only, args.seed, Path(tmp))
        if args.keep:
            print("files in", build_case(args.only, args.seed).write(args.keep))
        print(outcome)
        return 1 if outcome.problem else 0
    outcomes = fuzz(args.cases, args.seed)
    bad = [o for o in outcomes if o.problem]
    codes = {code: sum(o.exit_code == code for o in outcomes) for code in (0, 2)}
    print(f"{len(outcomes)} cases (seed {args.seed}): exit 0: {codes[0]}, exit 2: {codes[2]}, "
          f"findings: {len(bad)}, tracebacks: {sum(o.problem == 'traceback' for o in bad)}")
    for outcome in bad[:50]:
        print(outcome)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
