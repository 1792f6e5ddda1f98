"""Hostile inputs, outputs and streams: the second hardening corpus, run through the CLI.

``tests/test_hardening.py`` holds the corpus of bad *values* (every one must be one clear error
line). This one holds what attacks the process itself, family by family:

1. claims    files whose footer/header claims far more than they hold (memory)
2. kinds     paths that are no regular file: FIFOs, sockets, devices, broken links (hangs)
3. outputs   ``--output`` that would destroy an input, a device or the next run
4. streams   outputs that cannot be written: full disk, closed stdout, a closed pipe
5. terminal  escape sequences and markup in ids, class names and paths
6. config    configuration files and option values that are hostile or wrong
7. numbers   integer overflow, deep nesting, encodings, signals, unsafe hints
8. long      the long format at scale
12. reading  runs still being written, shuffled rows, changed labels, checkpoint names

Each :class:`Hostile` case writes its files into a fresh folder and returns a :class:`Setup`
(the command line, and how the process is run); ``check`` judges the :class:`Outcome`. Cases run
in-process (``CliRunner``) unless they need a real process (``process=True``: FIFOs that would
block the test run on a regression, closed or full stdout, signals). ``python -m tests.hostile_run``
runs every case in a real process under an address-space limit and a time limit.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tests import claims
from tests.test_hardening import IDS, LABELS, K, N, lists, logits, npz, parquet, run_dir, valid_npz, valid_parquet

ROOT = Path(__file__).resolve().parents[1]
ESCAPES = ("\x1b", "\x9b", "\x07", "\u202e")
GATE = ("--max-loss-rise", "5%", "--min-accuracy", "0.1")


# --- running a case -------------------------------------------------------------------------------


@dataclass
class Setup:
    """How to run lossacc for one case.

    ``stdout`` is ``pipe`` (captured), ``closed`` (fd 1 closed, ``>&-``), ``full`` (``/dev/full``)
    or ``broken`` (a pipe whose reader has gone). ``interrupt_after`` sends SIGINT to the process
    group after that many seconds (Ctrl-C). ``during`` runs on a thread while lossacc runs (a
    reader of a FIFO, a writer rewriting a file).
    """

    args: list
    env: dict = field(default_factory=dict)
    cwd: Path | None = None
    stdout: str = "pipe"
    interrupt_after: float | None = None
    during: Callable[[], None] | None = None
    launcher: bool = False  # args are a Python command line (``-c SCRIPT ...``), not lossacc's
    state: dict = field(default_factory=dict)  # what the case recorded for its check


@dataclass
class Outcome:
    """What the process did. The case folder's path reads ``<tmp>`` in ``stdout`` and ``stderr``
    (it holds the test's name, which must not satisfy a check)."""

    code: int
    stdout: str
    stderr: str
    tmp: Path
    setup: Setup

    def __post_init__(self) -> None:
        for folder in {str(self.tmp), os.path.realpath(self.tmp)}:
            self.stdout = self.stdout.replace(folder, "<tmp>")
            self.stderr = self.stderr.replace(folder, "<tmp>")

    @property
    def lines(self) -> list[str]:
        return self.stderr.splitlines()


@dataclass(frozen=True)
class Hostile:
    name: str
    family: str
    make: Callable[[Path], Setup]
    check: Callable[[Outcome], None]
    process: bool = False
    skip: Callable[[], str | None] = lambda: None


class Hang(AssertionError):
    """The process did not end within its time limit."""


def run_in_process(case: Hostile, tmp: Path) -> Outcome:
    from typer.testing import CliRunner

    from lossacc_cli.cli.app import app

    setup = case.make(tmp)
    assert setup.stdout == "pipe" and setup.interrupt_after is None and not setup.launcher, "needs a real process"
    thread = _start(setup.during)
    before = os.getcwd()
    try:
        if setup.cwd is not None:
            os.chdir(setup.cwd)
        result = CliRunner().invoke(app, [os.fsdecode(a) for a in setup.args],
                                    env={"NO_COLOR": "1", **setup.env})
    finally:
        os.chdir(before)
        if thread is not None:
            thread.join(10)
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += f"\nTraceback (escaped exception): {result.exception!r}"
    return Outcome(result.exit_code, result.stdout, stderr, tmp, setup)


def run_in_process_or_not(case: Hostile, tmp: Path, *, timeout: float = 60) -> Outcome:
    return run_process(case, tmp, timeout=timeout) if case.process else run_in_process(case, tmp)


def run_process(case: Hostile, tmp: Path, *, timeout: float = 60, memory: int | None = None) -> Outcome:
    """Run the case as ``python -m lossacc_cli ...`` in a new process group (``memory``: an
    address-space limit in bytes)."""
    setup = case.make(tmp)
    env = {**os.environ, "NO_COLOR": "1", **setup.env}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.pop("LOSSACC_DEBUG", None)
    read_end = None
    if setup.stdout == "pipe":
        stdout = subprocess.PIPE
    elif setup.stdout == "full":
        stdout = open(_full_device(tmp), "wb")  # noqa: SIM115 - closed below
    elif setup.stdout == "broken":
        read_end, stdout = os.pipe()
        os.close(read_end)
    else:
        stdout = subprocess.DEVNULL

    def prepare() -> None:
        # as a user's terminal starts it: Ctrl-C not ignored (a job started in the background by
        # a non-interactive shell inherits SIGINT ignored, and Python then never raises it)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if memory is not None:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        if setup.stdout == "closed":
            os.close(1)

    args = [os.fsdecode(a) for a in setup.args]
    cmd = [sys.executable, *args] if setup.launcher else [sys.executable, "-m", "lossacc_cli", *args]
    thread = _start(setup.during)
    proc = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE, env=env,
                            cwd=setup.cwd, preexec_fn=prepare, start_new_session=True)
    if not isinstance(stdout, int):
        stdout.close()
    elif setup.stdout == "broken":
        os.close(stdout)
    try:
        if setup.interrupt_after is not None:
            time.sleep(setup.interrupt_after)
            with _quiet():
                os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with _quiet():
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise Hang(f"{case.name}: no end after {timeout} s") from None
    finally:
        if thread is not None:
            thread.join(10)
    return Outcome(proc.returncode, (out or b"").decode("utf-8", "replace"),
                   err.decode("utf-8", "replace"), tmp, setup)


class _quiet:
    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        return kind is not None and issubclass(kind, ProcessLookupError)


def _start(during):
    if during is None:
        return None
    thread = threading.Thread(target=during, daemon=True)
    thread.start()
    return thread


# --- checks ---------------------------------------------------------------------------------------


def _clean(out: Outcome) -> None:
    text = out.stdout + out.stderr
    assert "Traceback" not in text and "Exception ignored" not in text, text[-2000:]
    assert out.code >= 0, f"killed by signal {-out.code}: {out.stderr[-500:]}"


def error(*parts: str, code: int = 2, stdout: bool = False) -> Callable[[Outcome], None]:
    """Exit ``code``, stderr = warnings then one ``error:`` line holding every part."""

    def check(out: Outcome) -> None:
        _clean(out)
        assert out.code == code, (out.code, out.stdout[-500:], out.stderr[-1500:])
        if not stdout:
            assert out.stdout == "", out.stdout[:500]
        *warnings, line = out.lines or [""]
        assert line.startswith("error: "), out.lines
        assert all(w.startswith("warning: ") for w in warnings), out.lines
        assert "internal error" not in line, line
        for part in parts:
            assert part in line, (part, line)

    return check


def ok(*parts: str, code: int = 0, warnings: tuple[str, ...] = (), then=None) -> Callable[[Outcome], None]:
    """Exit ``code`` (0), every part on stdout, only ``warning:`` lines on stderr, each of
    ``warnings`` among them; ``then(outcome)`` for more."""

    def check(out: Outcome) -> None:
        _clean(out)
        assert out.code == code, (out.code, out.stdout[-500:], out.stderr[-1500:])
        assert all(line.startswith("warning: ") for line in out.lines), out.lines
        for part in parts:
            assert part in out.stdout, (part, out.stdout[-2000:])
        for part in warnings:
            assert any(part in line for line in out.lines), (part, out.lines)
        if then is not None:
            then(out)

    return check


def inert(*escaped: str, code: int = 0, terminal: bool = False) -> Callable[[Outcome], None]:
    """No control sequence from the data on stdout or stderr; each of ``escaped`` (the escaped
    form, such as ``\\x1b[2J``) shows instead. On a terminal rich's own styling codes are allowed,
    only the data's sequences are not."""

    def check(out: Outcome) -> None:
        _clean(out)
        assert out.code == code, (out.code, out.stdout[-500:], out.stderr[-1500:])
        for char in DATA_SEQUENCES if terminal else ESCAPES:
            assert char not in out.stdout, (char, out.stdout[:3000])
            assert char not in out.stderr, (char, out.stderr[-3000:])
        text = out.stdout + out.stderr
        for part in escaped:
            assert part in text, (part, text[-3000:])

    return check


def holds(predicate: Callable[[Outcome], bool], what: str) -> Callable[[Outcome], None]:
    def check(out: Outcome) -> None:
        assert predicate(out), what

    return check


def both(*checks: Callable[[Outcome], None]) -> Callable[[Outcome], None]:
    def check(out: Outcome) -> None:
        for one in checks:
            one(out)

    return check


def as_root() -> str | None:
    return None if os.geteuid() == 0 else "creating device nodes needs root"


def not_root() -> str | None:
    return "root bypasses file permissions" if os.geteuid() == 0 else None


# --- builders -------------------------------------------------------------------------------------


def _parquet_bytes(columns, metadata=None, **options) -> bytes:
    import io

    table = pa.table(columns)
    if metadata:
        table = table.replace_schema_metadata(metadata)
    sink = io.BytesIO()
    pq.write_table(table, sink, **options)
    return sink.getvalue()


def _npz_bytes(compressed=False, **arrays) -> bytes:
    import io

    sink = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(sink, **arrays)
    return sink.getvalue()


def _valid_parquet_bytes(seed=0) -> bytes:
    return _parquet_bytes({"sample_id": IDS, "label": LABELS, "logits": lists(logits(seed=seed))})


def _valid_npz_bytes(seed=0, compressed=False) -> bytes:
    return _npz_bytes(compressed, logits=logits(seed=seed), labels=LABELS, sample_ids=IDS)


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _run_with(tmp: Path, name: str, data: bytes) -> Path:
    """A valid run of epochs 1 and 2 with ``name`` (epoch 3) holding ``data``."""
    folder = run_dir(tmp)
    _write(folder / name, data)
    return folder


def _cmd(*args, **kwargs) -> Setup:
    return Setup(list(args), **kwargs)


def _fifo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return path


def _unix_socket(path: Path) -> Path:
    """A listening-free bound socket file (closed at once: the file stays)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(os.fsencode(path) if len(os.fsencode(path)) < 100 else os.path.relpath(path))
    finally:
        sock.close()
    return path


def _short_tmp(tmp: Path) -> Path:
    """Unix socket paths are limited to ~100 bytes: bind inside a short folder."""
    import tempfile

    short = Path(tempfile.mkdtemp(prefix="lx"))
    (tmp / "short").symlink_to(short)
    return short


# --- 1. claims ------------------------------------------------------------------------------------


def _footer_rows(tmp):
    data = _valid_parquet_bytes(3)
    for path in (claims.FILE_NUM_ROWS, claims.ROW_GROUP_NUM_ROWS, claims.COLUMN_NUM_VALUES):
        data = claims.claim_parquet(data, path, 10**12)
    return _cmd("analyze", _run_with(tmp, "epoch_003.parquet", data))


def _footer_rows_long(tmp):
    data = _parquet_bytes({"epoch": np.repeat([1, 2], 3), "sample_id": np.tile(np.arange(3), 2),
                           "label": np.tile([0, 1, 2], 2), "logits": lists(logits(n=6))})
    for path in (claims.FILE_NUM_ROWS, claims.ROW_GROUP_NUM_ROWS, claims.COLUMN_NUM_VALUES):
        data = claims.claim_parquet(data, path, 10**12)
    return _cmd("analyze", _write(tmp / "long.parquet", data))


def _footer_group_rows_only(tmp):
    data = claims.claim_parquet(_valid_parquet_bytes(3), claims.ROW_GROUP_NUM_ROWS, 10**11)
    data = claims.claim_parquet(data, claims.COLUMN_NUM_VALUES, 10**11)
    return _cmd("analyze", _run_with(tmp, "epoch_003.parquet", data))


def _footer_values_only(tmp):
    data = claims.claim_parquet(_valid_parquet_bytes(3), claims.COLUMN_NUM_VALUES, 5 * 10**12)
    return _cmd("analyze", _run_with(tmp, "epoch_003.parquet", data))


def _footer_chunk_bigger_than_file(tmp):
    data = claims.claim_parquet(_valid_parquet_bytes(3), claims.COLUMN_COMPRESSED, 1 << 40)
    return _cmd("analyze", _run_with(tmp, "epoch_003.parquet", data))


def _footer_histogram_mismatch(tmp, how: str):
    """Size statistics that no longer fit the schema: Arrow's metadata API would abort."""
    data = _parquet_bytes({"sample_id": [f"s{i}" for i in range(N)], "label": LABELS,
                           "logits": lists(logits(seed=3))})
    footer = claims.read_footer(data)
    if how == "schema":  # sample_id's repetition type OPTIONAL -> REQUIRED: one level fewer
        schema = next(e for e in footer if e[0] == 2)[2][1]
        element = next(el for el in schema if any(f[0] == 4 and f[2] == b"sample_id" for f in el))
        next(f for f in element if f[0] == 3)[2] = 0
    else:  # the histogram itself grows by one entry
        for entry in claims._walk(footer, (4, "*", 1, "*", 3, 16, 3)):
            entry[2][1].append(0)
    return _cmd("outliers", _run_with(tmp, "epoch_003.parquet", claims.write_footer(data, footer)))


def _wide_claim(tmp, top: int):
    z = logits()
    columns = {"sample_id": IDS, "label": LABELS, "logit_0": z[:, 0], "logit_1": z[:, 1],
               f"logit_{top}": z[:, 2]}
    return _cmd("analyze", parquet(tmp / "run" / "epoch_001.parquet", columns).parent)


def _class_names_dev_zero(tmp):
    return _cmd("analyze", run_dir(tmp), "--class-names", "/dev/zero")


def _class_names_huge(tmp):
    names = tmp / "names.txt"
    with open(names, "wb") as handle:
        handle.truncate(200 << 20)  # sparse: 200 MB claimed by the size, nothing on disk
    return _cmd("analyze", run_dir(tmp), "--class-names", names)


def _npy_shape(tmp, member: str, shape, compressed=False):
    data = claims.claim_npy_shape(_valid_npz_bytes(3), f"{member}.npy", shape,
                                  compression=zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED)
    return _cmd("analyze", _run_with(tmp, "epoch_003.npz", data))


def _npy_dtype_claim(tmp):
    def change(name, blob):
        if name != "logits.npy":
            return blob
        header, _, _ = claims.npy_header(blob)
        return claims.with_npy_header(blob, {**header, "descr": "|V2000000000", "shape": (6,)})

    data = claims.rebuild_npz(_valid_npz_bytes(3), change)
    return _cmd("analyze", _run_with(tmp, "epoch_003.npz", data))


def _zip_size_claim(tmp):
    data = claims.claim_zip_sizes(_valid_npz_bytes(3), file_size=0xFFFFFF00, compress_size=0xFFFFFF00,
                                  member="logits.npy")
    return _cmd("analyze", _run_with(tmp, "epoch_003.npz", data))


def _over_budget(tmp):
    folder = tmp / "run"
    for e in (1, 2):
        npz(folder / f"epoch_{e}.npz", logits=logits(n=20_000, k=10, seed=e),
            labels=np.arange(20_000) % 10, sample_ids=np.arange(20_000))
    return _cmd("analyze", folder, env={"LOSSACC_MEMORY_BUDGET": "200K"})


# --- 2. kinds -------------------------------------------------------------------------------------


def _fifo_as_path(tmp, name="epoch_001.npz"):
    return _cmd("analyze", _fifo(tmp / name))


def _fifo_in_run(tmp):
    folder = run_dir(tmp)
    _fifo(folder / "epoch_003.npz")
    return _cmd("analyze", folder)


def _fifo_in_epoch_folder(tmp):
    folder = run_dir(tmp)
    valid_npz(folder / "epoch=3" / "part-0.npz")
    _fifo(folder / "epoch=3" / "part-1.npz")
    return _cmd("analyze", folder)


def _fifo_class_names(tmp):
    return _cmd("analyze", run_dir(tmp), "--class-names", _fifo(tmp / "names.txt"))


def _fifo_config(tmp):
    return _cmd("check", run_dir(tmp), "--max-loss", "5", "--config", _fifo(tmp / "lossacc.toml"))


def _fifo_pyproject(tmp):
    _fifo(tmp / "pyproject.toml")
    return _cmd("check", run_dir(tmp), "--max-loss", "50", cwd=tmp)


def _socket_in_run(tmp):
    short = _short_tmp(tmp)
    for e in (1, 2):
        valid_npz(short / f"epoch_{e}.npz", seed=e)
    _unix_socket(short / "epoch_3.npz")
    return _cmd("analyze", short)


def _socket_as_path(tmp):
    short = _short_tmp(tmp)
    return _cmd("analyze", _unix_socket(short / "e_1.npz"))


def _link_to(tmp, target: str, in_run=True):
    if in_run:
        folder = run_dir(tmp)
        os.symlink(target, folder / "epoch_003.npz")
        return _cmd("analyze", folder)
    link = tmp / "epoch_001.npz"
    os.symlink(target, link)
    return _cmd("analyze", link)


def _device_as_path(tmp):
    return _cmd("analyze", "/dev/null")


def _directory_named_like_epoch(tmp):
    folder = run_dir(tmp)
    (folder / "epoch_003.npz").mkdir()
    return _cmd("analyze", folder, "--format", "json")


def _link_loop_path(tmp):
    os.symlink("loop.npz", tmp / "loop.npz")
    return _cmd("analyze", tmp / "loop.npz")


def _class_names_directory(tmp):
    (tmp / "names").mkdir()
    return _cmd("analyze", run_dir(tmp), "--class-names", tmp / "names")


def _config_dev_zero(tmp):
    return _cmd("check", run_dir(tmp), "--max-loss", "5", "--config", "/dev/zero")


# --- 3. outputs -----------------------------------------------------------------------------------


def _snapshot(path: Path) -> tuple:
    info = os.lstat(path)
    return (info.st_mode, info.st_ino, path.read_bytes() if stat.S_ISREG(info.st_mode) else None)


def _unchanged(*paths: str) -> Callable[[Outcome], None]:
    """The files at ``paths`` (relative to the case folder) are as the case left them."""

    def check(out: Outcome) -> None:
        for rel in paths:
            path = out.tmp / rel
            assert _snapshot(path) == out.setup.state[rel], f"{rel} was changed"

    return check


def _remember(setup: Setup, tmp: Path, *paths: str) -> Setup:
    for rel in paths:
        setup.state[rel] = _snapshot(tmp / rel)
    return setup


def _output_is_input(tmp):
    folder = run_dir(tmp)
    return _remember(_cmd("analyze", folder, "--output", folder / "epoch_001.npz"), tmp, "run/epoch_001.npz")


def _output_hard_link_to_input(tmp):
    folder = run_dir(tmp)
    os.link(folder / "epoch_002.npz", tmp / "report.txt")
    return _remember(_cmd("analyze", folder, "-o", tmp / "report.txt"), tmp, "run/epoch_002.npz")


def _output_symlink_to_input(tmp):
    folder = run_dir(tmp)
    os.symlink(folder / "epoch_001.npz", tmp / "report.txt")
    return _remember(_cmd("analyze", folder, "-o", tmp / "report.txt"), tmp, "run/epoch_001.npz")


def _output_is_long_file(tmp):
    path = parquet(tmp / "long.parquet", {"epoch": np.repeat([1, 2], 3), "sample_id": np.tile(np.arange(3), 2),
                                          "label": np.tile([0, 1, 2], 2), "logits": lists(logits(n=6))})
    return _remember(_cmd("analyze", path, "--format", "json", "-o", path), tmp, "long.parquet")


def _output_epoch_name_in_run(tmp):
    folder = run_dir(tmp)
    return _cmd("analyze", folder, "--format", "json", "-o", folder / "epoch_099.npz")


def _output_in_epoch_folder(tmp):
    folder = run_dir(tmp)
    valid_npz(folder / "epoch=7" / "part-0.npz")
    return _cmd("analyze", folder, "-o", folder / "epoch=7" / "part-1.parquet")


def _output_json_in_run(tmp):
    folder = run_dir(tmp)
    return _cmd("analyze", folder, "--format", "json", "-o", folder / "report.json")


def _json_in_run_then_rerun(out: Outcome) -> None:
    assert json.loads((out.tmp / "run" / "report.json").read_text())["command"] == "analyze"
    again = run_in_process(Hostile("rerun", "outputs", lambda t: _cmd("analyze", t / "run", "--format", "json"),
                                   ok()), out.tmp)
    assert again.code == 0 and any("report.json" in line for line in again.lines), again.stderr


def _output_is_class_names(tmp):
    names = tmp / "names.txt"
    names.write_text("a\nb\nc\n")
    return _remember(_cmd("analyze", run_dir(tmp), "--class-names", names, "-o", names), tmp, "names.txt")


def _output_is_config(tmp):
    config = tmp / "lossacc.toml"
    config.write_text("[check]\nmax_loss = 50\n")
    return _remember(_cmd("check", run_dir(tmp), "--config", config, "-o", config), tmp, "lossacc.toml")


def _output_link_to_dev_null(tmp):
    os.symlink("/dev/null", tmp / "out")
    return _cmd("analyze", run_dir(tmp), "-o", tmp / "out")


def _still_link_to_dev_null(out: Outcome) -> None:
    link = out.tmp / "out"
    assert link.is_symlink() and os.readlink(link) == "/dev/null"
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def _output_fifo_with_reader(tmp):
    fifo = _fifo(tmp / "out.fifo")
    got = tmp / "got.txt"

    def read() -> None:
        with open(fifo, "rb") as handle:  # blocks until lossacc opens it for writing
            got.write_bytes(handle.read())

    return _cmd("analyze", run_dir(tmp), "--format", "json", "-o", fifo, during=read)


def _fifo_received(out: Outcome) -> None:
    assert stat.S_ISFIFO(os.lstat(out.tmp / "out.fifo").st_mode), "the FIFO was replaced"
    assert json.loads((out.tmp / "got.txt").read_text())["command"] == "analyze"


def _output_fifo_without_reader(tmp):
    return _cmd("analyze", run_dir(tmp), "-o", _fifo(tmp / "out.fifo"))


def _output_device_node(tmp):
    node = tmp / "null"
    os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a /dev/null of our own
    return _cmd("analyze", run_dir(tmp), "-o", node)


def _still_device(out: Outcome) -> None:
    assert stat.S_ISCHR(os.lstat(out.tmp / "null").st_mode), "the device node was replaced"


def _output_dash(tmp):
    return _cmd("analyze", run_dir(tmp), "--format", "json", "-o", "-")


def _output_keeps_mode(tmp, mode: int):
    report = tmp / "report.json"
    report.write_text("old\n")
    report.chmod(mode)
    return _cmd("analyze", run_dir(tmp), "--format", "json", "-o", report)


def _mode_is(mode: int):
    def check(out: Outcome) -> None:
        report = out.tmp / "report.json"
        assert stat.S_IMODE(report.stat().st_mode) == mode, oct(report.stat().st_mode)
        assert json.loads(report.read_text())["command"] == "analyze"

    return check


def _output_new_file_umask(tmp):
    return _cmd("analyze", run_dir(tmp), "--format", "json", "-o", tmp / "new.json")


def _umask_mode(out: Outcome) -> None:
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((out.tmp / "new.json").stat().st_mode) == 0o666 & ~umask


def _concurrent_writers(tmp):
    folder = run_dir(tmp)
    target = tmp / "report.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}

    def others() -> None:
        procs = [subprocess.Popen([sys.executable, "-m", "lossacc_cli", "analyze", str(folder),
                                   "--format", "json", "-o", str(target)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for _ in range(2)]
        for proc in procs:
            proc.wait(60)

    return _cmd("analyze", folder, "--format", "json", "-o", target, during=others)


def _one_complete_file(out: Outcome) -> None:
    assert json.loads((out.tmp / "report.json").read_text())["command"] == "analyze"
    assert not [p for p in out.tmp.iterdir() if p.name.startswith(".report.json")], "temporary files left"


# --- 4. streams -----------------------------------------------------------------------------------


def _output_directory(tmp):
    (tmp / "reports").mkdir()
    return _cmd("analyze", run_dir(tmp), "-o", tmp / "reports")


def _full_device(tmp: Path, *, output: bool = False) -> str:
    """A device that is always full. As root, a node of our own: were an output ever renamed
    over its target again, the machine's /dev/full must not be the one replaced. (A redirected
    stdout is only opened, never replaced: /dev/full is fine there when no node can be made.)"""
    if os.geteuid() != 0:
        return "/dev/full"  # no one but root could replace it
    node = tmp / "full"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 7))
        with open(node, "wb", buffering=0):
            pass
    except OSError:  # a file system mounted nodev
        if output:
            raise
        node.unlink(missing_ok=True)
        return "/dev/full"
    return str(node)


def private_device() -> str | None:
    """Why a device node of our own cannot be made here (None when it can)."""
    if os.geteuid() != 0:
        return None
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        try:
            _full_device(Path(folder), output=True)
        except OSError as exc:
            return f"device nodes cannot be used here ({exc})"
    return None


def _output_dev_full(tmp):
    return _cmd("analyze", run_dir(tmp), "--format", "json", "-o", _full_device(tmp, output=True))


def _output_unwritable_place(tmp):
    return _cmd("analyze", run_dir(tmp), "--format", "json", "-o", "/proc/lossacc-report.json")


def _output_read_only_folder(tmp):
    folder = tmp / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    return _cmd("analyze", run_dir(tmp), "-o", folder / "report.txt")


def _output_parent_is_file(tmp):
    (tmp / "afile").write_text("x")
    return _cmd("analyze", run_dir(tmp), "-o", tmp / "afile" / "report.txt")


def _output_trailing_slash(tmp):
    return _cmd("analyze", run_dir(tmp), "-o", f"{tmp}/newdir/")


def _stdout(mode: str, *args, command="analyze"):
    def make(tmp):
        extra = GATE if command == "check" else ()
        return _cmd(command, run_dir(tmp), *extra, *args, stdout=mode)

    return make


def _check_gate(rule: tuple, mode: str):
    def make(tmp):
        return _cmd("check", run_dir(tmp), *rule, stdout=mode)

    return make


def _exit(code: int) -> Callable[[Outcome], None]:
    def check(out: Outcome) -> None:
        _clean(out)
        assert out.code == code, (out.code, out.stderr[-1500:])
        assert all(line.startswith("warning: ") for line in out.lines), out.lines

    return check


# --- 5. terminal ----------------------------------------------------------------------------------

EVIL = "\x1b]8;;http:x\x07link\x1b]8;;\x07\x1b[2J\x1b[31m"  # a hyperlink, clear screen, red (no "/")
DATA_SEQUENCES = ("\x1b]", "\x1b[2J", "\x1b[31m", "\x07", "\x9b")  # what the data holds, never rich's own
C1 = "\x9b31m"


def _evil_ids(tmp, ids, fmt=("--format", "table")):
    folder = tmp / "run"  # logits sharpening with the epoch: the ids show in the tables
    for e in (1, 2):
        parquet(folder / f"epoch_{e}.parquet", {"sample_id": ids, "label": LABELS,
                                                 "logits": lists(logits(seed=e) * e)})
    return _cmd("analyze", folder, *fmt, "--top", "6")


def _evil_ids_npz(tmp):
    folder = tmp / "run"
    ids = np.array([f"id{C1}{i}" for i in range(N)])
    for e in (1, 2):
        npz(folder / f"epoch_{e}.npz", logits=logits(seed=e) * e, labels=LABELS, sample_ids=ids)
    return _cmd("outliers", folder, "--top", "6")


def _evil_class_names_metadata(tmp, names, command="analyze"):
    folder = tmp / "run"
    meta = {b"lossacc.class_names": json.dumps(names).encode()}
    for e in (1, 2):
        parquet(folder / f"epoch_{e}.parquet", {"sample_id": IDS, "label": LABELS,
                                                 "logits": lists(logits(seed=e) * e)}, metadata=meta)
    return _cmd(command, folder)


def _evil_class_names_file(tmp):
    names = tmp / "names.txt"
    names.write_text(f"cat{EVIL}\ndog\nbird\u202e\n", encoding="utf-8")
    return _cmd("compare", run_dir(tmp), "--class-names", names)


def _evil_run_path(tmp, command="analyze"):
    folder = run_dir(tmp)
    evil = tmp / f"run{EVIL}"
    folder.rename(evil)
    (evil / "notes.txt").write_text("x")  # a warning naming the folder
    return _cmd(command, evil)


def _evil_error_path(tmp):
    z = logits()
    z[1, 1] = np.nan
    return _cmd("analyze", npz(tmp / "run" / f"epoch_{EVIL}_1.npz", logits=z, labels=LABELS,
                               sample_ids=IDS).parent)


def _evil_on_terminal(tmp):
    setup = _evil_ids(tmp, [f"s{i}{EVIL}" for i in range(N)])
    setup.env.update({"TTY_COMPATIBLE": "1", "FORCE_COLOR": "1", "NO_COLOR": ""})
    return setup


def _markup_ids(tmp):
    return _evil_ids(tmp, [f"[bold red]s{i}[/bold red]" for i in range(N)])


def _surrogate_ids(tmp):
    folder = tmp / "run"
    ids = np.array([f"id\udcff{i}" for i in range(N)])
    for e in (1, 2):
        npz(folder / f"epoch_{e}.npz", logits=logits(seed=e) * e, labels=LABELS, sample_ids=ids)
    return _cmd("outliers", folder, "--top", "6")


def _evil_check_github(tmp):
    folder = run_dir(tmp)
    evil = tmp / f"run{EVIL}"
    folder.rename(evil)
    return _cmd("check", evil, "--max-loss", "0.0001", "--format", "github")


def _evil_output_file(tmp):
    setup = _evil_ids(tmp, [f"s{i}{EVIL}" for i in range(N)])
    setup.args += ["-o", tmp / "report.txt"]
    return setup


def _file_is_inert(out: Outcome) -> None:
    text = (out.tmp / "report.txt").read_text()
    assert not any(c in text for c in ESCAPES) and "\\x1b" in text


# --- 6. config ------------------------------------------------------------------------------------


def _project(tmp, content: bytes | str, name="pyproject.toml", *rules):
    path = tmp / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return _cmd("check", run_dir(tmp), *(rules or ()), cwd=tmp)


def _deleted_cwd(tmp, command="check"):
    gone = tmp / "gone"
    gone.mkdir()
    folder = run_dir(tmp)
    script = (f"import os, sys, runpy; os.chdir({str(gone)!r}); os.rmdir({str(gone)!r}); "
              "sys.argv = ['lossacc'] + sys.argv[1:]; runpy.run_module('lossacc_cli', run_name='__main__')")
    rules = ("--max-loss", "50") if command == "check" else ()
    # run through a tiny launcher so that the working folder is gone before lossacc starts
    return Setup(["-c", script, command, folder, *rules], launcher=True)


def _class_names_text(tmp, text: str | bytes, command="analyze", fmt="json"):
    names = tmp / "names.txt"
    if isinstance(text, str):
        names.write_text(text, encoding="utf-8", newline="")
    else:
        names.write_bytes(text)
    return _cmd(command, run_dir(tmp), "--class-names", names, "--format", fmt)


def _names_are(*names):
    def check(out: Outcome) -> None:
        doc = json.loads(out.stdout)
        assert tuple(doc["class_names"]) == names, doc["class_names"]

    return check


# --- 7. numbers -----------------------------------------------------------------------------------


def _uint64_epoch_parquet(tmp):
    return _cmd("analyze", parquet(tmp / "run" / "epoch_001.parquet",
                                   {"epoch": pa.array([2**64 - 1] * N, pa.uint64()), "sample_id": IDS,
                                    "label": LABELS, "logits": lists(logits())}).parent)


def _uint64_epoch_long(tmp):
    return _cmd("analyze", parquet(tmp / "long.parquet",
                                   {"epoch": pa.array([1, 1, 1, 2**64 - 1, 2**64 - 1, 2**64 - 1], pa.uint64()),
                                    "sample_id": [0, 1, 2] * 2, "label": [0, 1, 2] * 2,
                                    "logits": lists(logits())}))


def _uint64_epoch_npz(tmp):
    return _cmd("analyze", npz(tmp / "run" / "epoch_001.npz", logits=logits(), labels=LABELS,
                               sample_ids=IDS, epoch=np.uint64(2**64 - 1)).parent)


def _huge_epoch_name(tmp):
    return _cmd("analyze", valid_npz(tmp / "run" / "epoch_123456789012345678901234567890.npz").parent)


def _nested_class_names(tmp):
    deep = "[" * 20_000 + "]" * 20_000
    return _cmd("analyze", parquet(tmp / "run" / "epoch_001.parquet",
                                   {"sample_id": IDS, "label": LABELS, "logits": lists(logits())},
                                   metadata={b"lossacc.class_names": deep.encode()}).parent)


def _ascii_stdout(tmp, command="analyze"):
    names = tmp / "names.txt"
    names.write_text("café\nnaïve\n猫\n", encoding="utf-8")
    return _cmd(command, run_dir(tmp), "--class-names", names, env={"PYTHONIOENCODING": "ascii"})


def _ascii_error(tmp):
    z = logits()
    z[0, 0] = np.nan
    folder = npz(tmp / "rün" / "epoch_é_1.npz", logits=z, labels=LABELS, sample_ids=IDS).parent
    return _cmd("analyze", folder, env={"PYTHONIOENCODING": "ascii"})


def _interrupt(delay: float):
    def make(tmp):
        folder = tmp / "run"
        for e in range(1, 6):
            valid_npz(folder / f"epoch_{e:03d}.npz", seed=e)
        return _cmd("analyze", folder, interrupt_after=delay)

    return make


def _interrupt_workers(tmp):
    folder = tmp / "run"
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 50, 20_000)
    for e in range(1, 9):
        npz(folder / f"epoch_{e:03d}.npz", logits=rng.normal(size=(20_000, 50)).astype(np.float32),
            labels=labels, sample_ids=np.arange(20_000))
    return _cmd("analyze", folder, "--jobs", "2", interrupt_after=2.5)


_INTERRUPT_IMPORT = """
import os, signal, sys, runpy
class CtrlC:  # Ctrl-C exactly while pyarrow is being imported (the slow part of start-up)
    def find_spec(self, name, path=None, target=None):
        if name == {module!r}:
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)
        return None
sys.meta_path.insert(0, CtrlC())
sys.argv = ["lossacc"] + sys.argv[1:]
runpy.run_module("lossacc_cli", run_name="__main__")
"""


def _interrupt_import(module: str):
    def make(tmp):
        folder = run_dir(tmp)
        if module == "pyarrow":  # an NPZ run never imports Arrow: a Parquet run does
            folder = tmp / "parquet_run"
            for e in (1, 2):
                valid_parquet(folder / f"epoch_{e:03d}.parquet", seed=e)
        return Setup(["-c", _INTERRUPT_IMPORT.format(module=module), "analyze", folder], launcher=True)

    return make


def _interrupted(out: Outcome) -> None:
    text = out.stdout + out.stderr
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text[-2000:]
    assert out.code in (0, 130, -signal.SIGINT), (out.code, out.stderr[-1000:])


def _no_pickle_hint(*parts):
    def check(out: Outcome) -> None:
        error(*parts)(out)
        assert "allow_pickle" not in out.stderr and "pickle.load" not in out.stderr, out.stderr

    return check


# --- 8. long --------------------------------------------------------------------------------------


def _long_many_epochs(tmp, epochs=3000):
    e = np.repeat(np.arange(1, epochs + 1), 3)
    folder = parquet(tmp / "long.parquet", {"epoch": e, "sample_id": np.tile(np.arange(3), epochs),
                                            "label": np.tile([0, 1, 2], epochs),
                                            "logits": lists(logits(n=3 * epochs, seed=1))})
    return _cmd("calibration", folder, "--epoch", str(epochs), "--format", "json")


# --- 12. reading a run safely ---------------------------------------------------------------------


def _shuffled_without_ids(tmp):
    folder = tmp / "run"
    labels = np.arange(40) % 4
    for e in (1, 2):
        order = np.random.default_rng(e).permutation(40)
        npz(folder / f"epoch_{e}.npz", logits=logits(n=40, k=4, seed=e)[order], labels=labels[order])
    return _cmd("analyze", folder)


def _label_changes_for_an_id(tmp):
    folder = tmp / "run"
    valid_npz(folder / "epoch_001.npz", seed=1)
    labels = np.arange(N) % K
    labels[[2, 4]] = [0, 0]
    npz(folder / "epoch_002.npz", logits=logits(seed=2), labels=labels, sample_ids=IDS)
    return _cmd("compare", folder)


def _ids_reordered(tmp):
    folder = tmp / "run"
    valid_npz(folder / "epoch_001.npz", seed=1)
    order = np.array([5, 3, 1, 0, 2, 4])
    npz(folder / "epoch_002.npz", logits=logits(seed=2)[order], labels=(np.arange(N) % K)[order],
        sample_ids=IDS[order])
    return _cmd("analyze", folder, "--format", "json")


def _lightning_names(tmp):
    folder = tmp / "run"
    for e, step in ((1, 500), (2, 1000), (3, 1500)):
        valid_npz(folder / f"epoch={e}-step={step}.npz", seed=e)
    return _cmd("analyze", folder, "--format", "json")


def _epochs_are(*epochs):
    def check(out: Outcome) -> None:
        assert [e["epoch"] for e in json.loads(out.stdout)["epochs"]] == list(epochs)

    return check


def _unfinished_newest(tmp, name: str, data_of: Callable[[bytes], bytes], *extra):
    folder = run_dir(tmp)
    full = _valid_npz_bytes(3) if name.endswith(".npz") else _valid_parquet_bytes(3)
    _write(folder / name, data_of(full))
    return _cmd("analyze", folder, "--format", "json", *extra)


def _unfinished_middle(tmp):
    folder = run_dir(tmp, epochs=(1, 3))
    _write(folder / "epoch_002.npz", _valid_npz_bytes(2)[:300])
    return _cmd("analyze", folder)


def _two_unfinished(tmp):
    folder = run_dir(tmp)
    _write(folder / "epoch_003.npz", _valid_npz_bytes(3)[:300])
    _write(folder / "epoch_004.parquet", _valid_parquet_bytes(4)[:200])
    return _cmd("analyze", folder)


_REWRITE = """
import os, sys
import lossacc_cli.readers.npz as npz
target, read = sys.argv[1], npz._pread_into
state = {"blocks": 0}
def truncating(fd, view, offset, label):
    state["blocks"] += label.endswith("epoch_2.npz")
    if state["blocks"] == 2:  # a writer rewrites the file in place after its first block
        with open(target, "r+b") as handle:
            handle.truncate(4096)
    return read(fd, view, offset, label)
npz._pread_into = truncating
sys.argv = ["lossacc", "analyze", os.path.dirname(target), "--format", "json", "--jobs", "1"]
import runpy
runpy.run_module("lossacc_cli", run_name="__main__")
"""


def _rewritten_while_read(tmp):
    folder = tmp / "run"
    for e in (1, 2):
        npz(folder / f"epoch_{e}.npz", logits=logits(n=60_000, k=20, seed=e), labels=np.arange(60_000) % 20,
            sample_ids=np.arange(60_000))
    return Setup(["-c", _REWRITE, folder / "epoch_2.npz"], launcher=True)


_CHANGED = """
import os, sys
import lossacc_cli.readers.npz as npz
target = sys.argv[1]
load = npz.Archive.load
def appending(self, name):
    value = load(self, name)
    if name == "labels" and self.label.endswith("epoch_002.npz"):
        with open(target, "ab") as handle:  # the file grows while it is open
            handle.write(b"more")
    return value
npz.Archive.load = appending
npz.stream_npz = lambda *a, **k: None  # the whole-file reader
sys.argv = ["lossacc", "analyze", os.path.dirname(target), "--jobs", "1"]
import runpy
runpy.run_module("lossacc_cli", run_name="__main__")
"""


def _changed_while_read(tmp):
    folder = run_dir(tmp)
    return Setup(["-c", _CHANGED, folder / "epoch_002.npz"], launcher=True)


# --- the corpus -----------------------------------------------------------------------------------


HOSTILE: list[Hostile] = [
    # 1. claims: refused before allocating, the claim quoted
    Hostile("Parquet footer claims 10**12 rows", "claims", _footer_rows,
            error("epoch_003.parquet", "claims 1,000,000,000,000 rows")),
    Hostile("long-format footer claims 10**12 rows", "claims", _footer_rows_long,
            error("long.parquet", "1,000,000,000,000 rows")),
    Hostile("row groups alone claim 10**11 rows", "claims", _footer_group_rows_only,
            error("epoch_003.parquet", "100,000,000,000 rows")),
    Hostile("a column claims 5*10**12 values", "claims", _footer_values_only, error("epoch_003.parquet")),
    Hostile("a column chunk claims more bytes than the file", "claims", _footer_chunk_bigger_than_file,
            error("epoch_003.parquet", "1,099,511,627,776 bytes", "holds only")),
    Hostile("footer statistics no longer fit the schema", "claims",
            lambda t: _footer_histogram_mismatch(t, "schema"), error("epoch_003.parquet", "damaged footer"),
            process=True),
    Hostile("footer level histogram one entry too long", "claims",
            lambda t: _footer_histogram_mismatch(t, "histogram"), error("epoch_003.parquet", "damaged footer"),
            process=True),
    Hostile("wide columns logit_0, logit_1, logit_99999999", "claims", lambda t: _wide_claim(t, 99_999_999),
            error("epoch_001.parquet", "logit_k", "99,999,997 of 100,000,000")),
    Hostile("wide columns up to logit_4000000000", "claims", lambda t: _wide_claim(t, 4_000_000_000),
            error("epoch_001.parquet", "logit_k", "of 4,000,000,001")),
    Hostile("--class-names /dev/zero", "claims", _class_names_dev_zero,
            error("--class-names /dev/zero", "character device"), process=True),
    Hostile("--class-names of 200 MB", "claims", _class_names_huge,
            error("--class-names", "209,715,200 bytes")),
    Hostile(".npy header claims (10**6, 10**6) logits", "claims", lambda t: _npy_shape(t, "logits", (10**6, 10**6)),
            error("epoch_003.npz", "logits", "(1000000, 1000000)", "3.64 TiB", "holds only 72 bytes")),
    Hostile(".npy header claims 10**12 labels", "claims", lambda t: _npy_shape(t, "labels", (10**12,)),
            error("epoch_003.npz", "labels", "(1000000000000,)")),
    Hostile("deflated .npy header claims 10**9 rows", "claims",
            lambda t: _npy_shape(t, "logits", (10**9, 3), compressed=True),
            error("epoch_003.npz", "logits", "(1000000000, 3)")),
    Hostile(".npy header claims a 2 GB dtype", "claims", _npy_dtype_claim,
            error("epoch_003.npz", "claims shape (6,) of |V2000000000")),
    Hostile(".npy header claims a negative shape", "claims", lambda t: _npy_shape(t, "logits", (-1, 3)),
            error("epoch_003.npz")),
    Hostile("zip directory claims a 4 GB member", "claims", _zip_size_claim,
            error("epoch_003.npz", "4,294,967,040", "holds only")),
    Hostile("an epoch beyond LOSSACC_MEMORY_BUDGET", "claims", _over_budget,
            error("epoch_1.npz", "LOSSACC_MEMORY_BUDGET")),
    # 2. kinds: never opened, named for what they are
    Hostile("FIFO as PATH (.npz)", "kinds", _fifo_as_path, error("epoch_001.npz", "FIFO"), process=True),
    Hostile("FIFO as PATH (.parquet)", "kinds", lambda t: _fifo_as_path(t, "epoch_001.parquet"),
            error("epoch_001.parquet", "FIFO"), process=True),
    Hostile("FIFO inside a run", "kinds", _fifo_in_run, error("epoch_003.npz", "FIFO"), process=True),
    Hostile("FIFO inside an epoch=N folder", "kinds", _fifo_in_epoch_folder, error("part-1.npz", "FIFO"),
            process=True),
    Hostile("FIFO as --class-names", "kinds", _fifo_class_names, error("--class-names", "FIFO"), process=True),
    Hostile("FIFO as --config", "kinds", _fifo_config, error("lossacc.toml", "FIFO"), process=True),
    Hostile("FIFO named pyproject.toml in the working folder", "kinds", _fifo_pyproject, _exit(0),
            process=True),
    Hostile("socket inside a run", "kinds", _socket_in_run, error("epoch_3.npz", "socket")),
    Hostile("socket as PATH", "kinds", _socket_as_path, error("e_1.npz", "socket")),
    Hostile("link to /dev/zero inside a run", "kinds", lambda t: _link_to(t, "/dev/zero"),
            error("epoch_003.npz", "link to a character device (/dev/zero)"), process=True),
    Hostile("link to /dev/zero as PATH", "kinds", lambda t: _link_to(t, "/dev/zero", in_run=False),
            error("epoch_001.npz", "character device"), process=True),
    Hostile("/dev/null as PATH", "kinds", _device_as_path, error("/dev/null", "character device")),
    Hostile("broken link inside a run", "kinds", lambda t: _link_to(t, "gone.npz"),
            error("epoch_003.npz", "broken link (to gone.npz)")),
    Hostile("link loop as PATH", "kinds", _link_loop_path, error("loop.npz", "link loop")),
    Hostile("directory named like an epoch file", "kinds", _directory_named_like_epoch,
            ok(warnings=("epoch_003.npz/",))),
    Hostile("directory as --class-names", "kinds", _class_names_directory, error("--class-names", "directory")),
    Hostile("/dev/zero as --config", "kinds", _config_dev_zero, error("/dev/zero", "character device"),
            process=True),
    # 3. outputs: never an input, never over a device, never a future epoch file
    Hostile("--output is an input file", "outputs", _output_is_input,
            both(error("--output", "one of the inputs"), _unchanged("run/epoch_001.npz"))),
    Hostile("--output is a hard link to an input", "outputs", _output_hard_link_to_input,
            both(error("one of the inputs"), _unchanged("run/epoch_002.npz"))),
    Hostile("--output is a symbolic link to an input", "outputs", _output_symlink_to_input,
            both(error("one of the inputs"), _unchanged("run/epoch_001.npz"))),
    Hostile("--output is the long-format file read", "outputs", _output_is_long_file,
            both(error("one of the inputs"), _unchanged("long.parquet"))),
    Hostile("--output named like an epoch file in the run", "outputs", _output_epoch_name_in_run,
            both(error("epoch_099.npz", "read as an epoch file"),
                 holds(lambda out: not (out.tmp / "run" / "epoch_099.npz").exists(), "report written"))),
    Hostile("--output inside an epoch=N folder", "outputs", _output_in_epoch_folder,
            error("part-1.parquet", "read as an epoch file")),
    Hostile("--output report.json inside the run", "outputs", _output_json_in_run,
            ok(then=_json_in_run_then_rerun)),
    Hostile("--output is the --class-names file", "outputs", _output_is_class_names,
            both(error("one of the inputs"), _unchanged("names.txt"))),
    Hostile("--output is the --config file", "outputs", _output_is_config,
            both(error("one of the inputs"), _unchanged("lossacc.toml"))),
    Hostile("--output is a link to /dev/null", "outputs", _output_link_to_dev_null, ok(then=_still_link_to_dev_null)),
    Hostile("--output is a FIFO with a reader", "outputs", _output_fifo_with_reader, ok(then=_fifo_received),
            process=True),
    Hostile("--output is a FIFO nobody reads", "outputs", _output_fifo_without_reader,
            both(error("out.fifo", "no process is reading it"),
                 holds(lambda out: stat.S_ISFIFO(os.lstat(out.tmp / "out.fifo").st_mode), "FIFO replaced")),
            process=True),
    Hostile("--output is a device node", "outputs", _output_device_node, ok(then=_still_device),
            skip=lambda: as_root() or private_device()),
    Hostile("-o - is stdout", "outputs", _output_dash, ok('"command": "analyze"')),
    Hostile("--output keeps an existing file's mode 0644", "outputs", lambda t: _output_keeps_mode(t, 0o644),
            ok(then=_mode_is(0o644))),
    Hostile("--output keeps an existing file's mode 0640", "outputs", lambda t: _output_keeps_mode(t, 0o640),
            ok(then=_mode_is(0o640))),
    Hostile("--output creates a new file with the umask's mode", "outputs", _output_new_file_umask,
            ok(then=_umask_mode)),
    Hostile("three writers of one --output", "outputs", _concurrent_writers, ok(then=_one_complete_file),
            process=True),
    # 4. streams: one line and exit 2 when the output cannot be written; a closed pipe is no error
    Hostile("--output is a folder", "streams", _output_directory, error("--output", "folder")),
    Hostile("--output a full device", "streams", _output_dev_full,
            both(error("full", "no space left"),
                 holds(lambda out: not (out.tmp / "full").exists() or stat.S_ISCHR(os.lstat(out.tmp / "full").st_mode),
                       "the device node was replaced")), skip=private_device),
    Hostile("--output where no file can be created", "streams", _output_unwritable_place, error("--output")),
    Hostile("--output in a read-only folder", "streams", _output_read_only_folder,
            error("--output", "permission denied"), skip=not_root),
    Hostile("--output below a file", "streams", _output_parent_is_file, error("--output")),
    Hostile("--output ending in a slash", "streams", _output_trailing_slash, error("--output", "folder")),
    Hostile("stdout is /dev/full (json)", "streams", _stdout("full", "--format", "json"),
            error("stdout", "no space left"), process=True),
    Hostile("stdout is /dev/full (table)", "streams", _stdout("full"), error("stdout", "no space left"),
            process=True),
    Hostile("stdout closed", "streams", _stdout("closed", "--format", "json"), error("stdout is closed"),
            process=True),
    Hostile("stdout closed, check", "streams", _stdout("closed", command="check"), error("stdout is closed"),
            process=True),
    Hostile("--version, stdout closed", "streams", lambda t: _cmd("--version", stdout="closed"),
            error("stdout is closed"), process=True),
    Hostile("json into a closed pipe", "streams", _stdout("broken", "--format", "json"), _exit(0), process=True),
    Hostile("table into a closed pipe", "streams", _stdout("broken"), _exit(0), process=True),
    Hostile("check that passes, into a closed pipe", "streams",
            _check_gate(("--max-loss", "50", "--format", "json"), "broken"), _exit(0), process=True),
    Hostile("check that fails, into a closed pipe", "streams",
            _check_gate(("--max-loss", "0.0001"), "broken"), _exit(1), process=True),
    Hostile("check junit into a closed pipe", "streams",
            _check_gate(("--max-loss", "50", "--format", "junit"), "broken"), _exit(0), process=True),
    # 5. terminal: data shown, never acted on
    Hostile("escape sequences in Parquet sample ids", "terminal",
            lambda t: _evil_ids(t, [f"s{i}{EVIL}" for i in range(N)]), inert("\\x1b]8;;http:x\\x07")),
    Hostile("C1 control (one-byte CSI) in NPZ ids", "terminal", _evil_ids_npz, inert("\\x9b31m")),
    Hostile("escape sequences in class-name metadata", "terminal",
            lambda t: _evil_class_names_metadata(t, [f"cat{EVIL}", "dog", "bird"]), inert("cat\\x1b]8")),
    Hostile("escape sequences in class names, compare", "terminal",
            lambda t: _evil_class_names_metadata(t, [f"cat{EVIL}", "dog", "bird"], "compare"), inert("\\x1b")),
    Hostile("escape sequences and a bidi override in --class-names", "terminal", _evil_class_names_file,
            inert("\\x1b", "\\u202e")),
    Hostile("escape sequences in the run's path", "terminal", _evil_run_path, inert("run\\x1b]8")),
    Hostile("escape sequences in the run's path, calibration", "terminal",
            lambda t: _evil_run_path(t, "calibration"), inert("\\x1b")),
    Hostile("escape sequences in a file name in an error", "terminal", _evil_error_path,
            both(inert("epoch_\\x1b]8", code=2), error("logits"))),
    Hostile("escape sequences in ids, on a terminal with colour", "terminal", _evil_on_terminal,
            inert(terminal=True)),
    Hostile("rich markup in ids stays literal", "terminal",
            lambda t: _evil_ids(t, [f"[bold red]s{i}[/bold red]" for i in range(N)]),
            ok("[bold red]s")),
    Hostile("lone surrogates in NPZ ids", "terminal", _surrogate_ids,
            both(inert("id\\xff0", code=2), error("epoch_1.npz", "not valid Unicode"))),
    Hostile("escape sequences in the path, check --format github", "terminal", _evil_check_github,
            inert(code=1)),
    Hostile("escape sequences in ids, report written to a file", "terminal", _evil_output_file,
            ok(then=_file_is_inert)),
    Hostile("newlines and tabs in class names", "terminal",
            lambda t: _evil_class_names_metadata(t, ["a\nb", "c\td", "e\rf"]), ok("a\\x0ab", "e\\x0df")),
    # 6. config and options
    Hostile("pyproject.toml whose tool is a string (mentions lossacc)", "config",
            lambda t: _project(t, 'tool = "lossacc"\n', "pyproject.toml", "--max-loss", "50"),
            error("pyproject.toml", "'tool' must be a table")),
    Hostile("pyproject.toml whose tool.lossacc is a number", "config",
            lambda t: _project(t, "[tool]\nlossacc = 3\n", "pyproject.toml", "--max-loss", "50"),
            error("pyproject.toml", "'tool.lossacc' must be a table")),
    Hostile("unrelated pyproject.toml whose tool is a string, rules on the command line", "config",
            lambda t: _project(t, 'tool = "x"\n', "pyproject.toml", "--max-loss", "50"), _exit(0)),
    Hostile("unrelated binary pyproject.toml, rules on the command line", "config",
            lambda t: _project(t, bytes(range(256)) * 8, "pyproject.toml", "--max-loss", "50"), _exit(0)),
    Hostile("unrelated broken pyproject.toml, rules on the command line", "config",
            lambda t: _project(t, "[project\nname = 'x'\n", "pyproject.toml", "--max-loss", "50"), _exit(0)),
    Hostile("Latin-1 lossacc.toml", "config",
            lambda t: _project(t, "[check]\n# caf\xe9\nmax_loss = 5\n".encode("latin-1"), "lossacc.toml"),
            error("lossacc.toml", "not UTF-8")),
    Hostile("Latin-1 pyproject.toml with lossacc rules", "config",
            lambda t: _project(t, "[tool.lossacc.check]\n# caf\xe9\nmax_loss = 5\n".encode("latin-1")),
            error("pyproject.toml", "not UTF-8")),
    Hostile("lossacc.toml nested 20,000 deep", "config",
            lambda t: _project(t, "[check]\nmax_loss = " + "[" * 20_000 + "]" * 20_000 + "\n", "lossacc.toml"),
            error("lossacc.toml", "nested too deeply")),
    Hostile("fail_on of the wrong type in the configuration", "config",
            lambda t: _project(t, "[check]\nfail_on = 5\n", "lossacc.toml"), error("fail_on")),
    Hostile("a rule that is a list in the configuration", "config",
            lambda t: _project(t, "[check]\nmax_loss = [1]\n", "lossacc.toml"), error("max_loss", "list")),
    Hostile("deleted working folder, check with rules", "config", _deleted_cwd, _exit(0), process=True),
    Hostile("deleted working folder, analyze", "config", lambda t: _deleted_cwd(t, "analyze"), _exit(0),
            process=True),
    Hostile("--max-loss-rise -5%", "config", lambda t: _cmd("check", run_dir(t), "--max-loss-rise", "-5%"),
            error("--max-loss-rise", "'-5%'", "0 or more")),
    Hostile("--max-loss -1", "config", lambda t: _cmd("check", run_dir(t), "--max-loss", "-1"),
            error("--max-loss", "0 or more")),
    Hostile("--max-ece -0.01", "config", lambda t: _cmd("check", run_dir(t), "--max-ece", "-0.01"),
            error("--max-ece", "0 or more")),
    Hostile("max_loss_rise = '-5%' in the configuration", "config",
            lambda t: _project(t, "[check]\nmax_loss_rise = '-5%'\n", "lossacc.toml"),
            error("max_loss_rise", "0 or more")),
    Hostile("--max-above-baseline -0.1 is a rule that can pass", "config",
            lambda t: _cmd("check", run_dir(t), "--max-above-baseline", "-0.1", "--format", "json"),
            ok("\"rule\": \"max-above-baseline\"", code=1)),
    Hostile("--top -1", "config", lambda t: _cmd("analyze", run_dir(t), "--top", "-1"),
            both(error("--top", "-1"), holds(lambda out: "Usage" not in out.stderr, "a usage block"))),
    Hostile("--top 0", "config", lambda t: _cmd("outliers", run_dir(t), "--top", "0"), error("--top")),
    Hostile("report --top -1", "config", lambda t: _cmd("report", run_dir(t), "--top", "-1", "-o", str(t / "r.html")),
            both(error("--top", "-1"), holds(lambda out: "Usage" not in out.stderr, "a usage block"))),
    Hostile("--jobs -1", "config", lambda t: _cmd("analyze", run_dir(t), "--jobs", "-1"),
            both(error("--jobs", "-1"), holds(lambda out: "Usage" not in out.stderr, "a usage block"))),
    Hostile("--jobs 1000", "config", lambda t: _cmd("analyze", run_dir(t), "--jobs", "1000", "--format", "json"),
            ok('"command": "analyze"')),
    Hostile("class names holding U+0085 and U+2028", "config",
            lambda t: _class_names_text(t, "a\u0085b\nc\u2028d\ne\n"), ok(then=_names_are("a\x85b", "c\u2028d", "e"))),
    Hostile("class names with a blank line between", "config", lambda t: _class_names_text(t, "a\n\nb\nc\n"),
            error("--class-names", "blank line 2")),
    Hostile("class names with blank lines at the end, CRLF and a BOM", "config",
            lambda t: _class_names_text(t, "\ufeffa\r\nb\r\nc\r\n\r\n\n"), ok(then=_names_are("a", "b", "c"))),
    Hostile("class names not UTF-8", "config", lambda t: _class_names_text(t, b"caf\xe9\nb\nc\n"),
            error("--class-names", "not UTF-8")),
    # 7. numbers, encodings, signals, unsafe hints
    Hostile("epoch column of uint64 2**64-1", "numbers", _uint64_epoch_parquet,
            error("epoch_001.parquet", "18446744073709551615", "int64")),
    Hostile("long format with a uint64 2**64-1 epoch", "numbers", _uint64_epoch_long,
            error("long.parquet", "int64")),
    Hostile("NPZ epoch array of uint64 2**64-1", "numbers", _uint64_epoch_npz,
            error("epoch_001.npz", "int64")),
    Hostile("an epoch number beyond int64 in a file name", "numbers", _huge_epoch_name,
            error("int64")),
    Hostile("class-name JSON nested 20,000 deep", "numbers", _nested_class_names,
            error("lossacc.class_names", "nested too deeply")),
    Hostile("PYTHONIOENCODING=ascii and non-ASCII class names", "numbers", _ascii_stdout,
            ok("caf\\xe9"), process=True),
    Hostile("PYTHONIOENCODING=ascii and non-ASCII class names, compare", "numbers",
            lambda t: _ascii_stdout(t, "compare"), _exit(0), process=True),
    Hostile("PYTHONIOENCODING=ascii and a non-ASCII path in an error", "numbers", _ascii_error,
            error("r\\xfcn"), process=True),
    Hostile("Ctrl-C while numpy is imported", "numbers", _interrupt_import("numpy"),
            both(_interrupted, holds(lambda out: out.code in (130, -signal.SIGINT), "not interrupted")),
            process=True),
    Hostile("Ctrl-C while pyarrow is imported", "numbers", _interrupt_import("pyarrow"),
            both(_interrupted, holds(lambda out: out.code in (130, -signal.SIGINT), "not interrupted")),
            process=True),
    Hostile("Ctrl-C while rich is imported", "numbers", _interrupt_import("rich"),
            both(_interrupted, holds(lambda out: out.code in (130, -signal.SIGINT), "not interrupted")),
            process=True),
    Hostile("Ctrl-C at 0.3 s", "numbers", _interrupt(0.3), _interrupted, process=True),
    Hostile("Ctrl-C at 0.7 s", "numbers", _interrupt(0.7), _interrupted, process=True),
    Hostile("Ctrl-C at 1.2 s", "numbers", _interrupt(1.2), _interrupted, process=True),
    Hostile("Ctrl-C while worker processes read", "numbers", _interrupt_workers, _interrupted, process=True),
    Hostile("Parquet file named .npz", "numbers",
            lambda t: _cmd("analyze", _write(t / "run" / "epoch_001.npz", _valid_parquet_bytes())),
            _no_pickle_hint("epoch_001.npz", "Parquet")),
    Hostile("junk before a zip archive", "numbers",
            lambda t: _cmd("analyze", _write(t / "run" / "epoch_001.npz", b"junk" * 64 + _valid_npz_bytes())),
            _no_pickle_hint("epoch_001.npz", "zip header")),
    Hostile("a pickle named .npz", "numbers",
            lambda t: _cmd("analyze", _write(t / "run" / "epoch_001.npz", b"\x80\x04\x95" + bytes(40))),
            _no_pickle_hint("epoch_001.npz", "never loads")),
    Hostile("random bytes named .npz", "numbers",
            lambda t: _cmd("analyze", _write(t / "run" / "epoch_001.npz", bytes(range(256)))),
            _no_pickle_hint("epoch_001.npz")),
    # 8. long format at scale
    Hostile("long format, 3,000 epochs of 3 samples", "long", _long_many_epochs, ok('"epoch": 3000')),
    # 12. reading a run safely
    Hostile("rows shuffled between epochs, no ids", "reading", _shuffled_without_ids,
            error("epoch_2.npz", "row positions", "save a sample id")),
    Hostile("an id whose label changes between epochs", "reading", _label_changes_for_an_id,
            error("epoch_002.npz", "label differs from", "2 rows, first ids: 102, 104")),
    Hostile("ids in another order, labels kept", "reading", _ids_reordered, ok('"n_epochs": 2')),
    Hostile("Lightning names epoch=1-step=500.npz", "reading", _lightning_names, ok(then=_epochs_are(1, 2, 3))),
    Hostile("newest NPZ truncated (a run in progress)", "reading",
            lambda t: _unfinished_newest(t, "epoch_003.npz", lambda d: d[: len(d) // 2]),
            ok('"n_epochs": 2', warnings=("skipped", "epoch_003.npz", "--strict"))),
    Hostile("newest Parquet without its footer", "reading",
            lambda t: _unfinished_newest(t, "epoch_003.parquet", lambda d: d[: len(d) - 40]),
            ok('"n_epochs": 2', warnings=("epoch_003.parquet", "no Parquet footer"))),
    Hostile("newest epoch file empty", "reading",
            lambda t: _unfinished_newest(t, "epoch_003.npz", lambda d: b""), ok(warnings=("unfinished (empty)",))),
    Hostile("newest NPZ truncated, --strict", "reading",
            lambda t: _unfinished_newest(t, "epoch_003.npz", lambda d: d[: len(d) // 2], "--strict"),
            error("epoch_003.npz", "unfinished")),
    Hostile("a truncated NPZ that is not the newest", "reading", _unfinished_middle, error("epoch_002.npz")),
    Hostile("two unfinished epoch files", "reading", _two_unfinished, error("epoch_003.npz")),
    Hostile("NPZ truncated in place while its scores are read", "reading", _rewritten_while_read,
            both(_clean, holds(lambda out: out.code in (0, 2), "exit 0 or 2")), process=True),
    Hostile("NPZ growing while it is read", "reading", _changed_while_read,
            error("epoch_002.npz", "changed while it was being read"), process=True),
]


assert len({case.name for case in HOSTILE}) == len(HOSTILE), "case names must be unique"
