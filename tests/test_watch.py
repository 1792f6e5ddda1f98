"""`lossacc analyze --watch` for real: a process follows a folder while epochs are written into it."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from lossacc_cli.analysis import run as run_module
from lossacc_cli.writers import PredictionWriter

ROOT = Path(__file__).resolve().parents[1]
N, K = 400, 3  # 1,200 scores an epoch: enough to be cached (CACHE_MIN_VALUES)


def _epochs(folder: Path):
    rng = np.random.default_rng(5)
    labels = rng.integers(0, K, N)
    writer = PredictionWriter(folder)

    def write(epoch: int) -> None:
        writer.add(np.arange(N), labels, logits=rng.normal(size=(N, K)) * epoch)
        writer.end_epoch(epoch)  # atomic: the watcher never sees half a file

    return write


def _lines(stream) -> queue.Queue:
    found: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [found.put(line) for line in stream], daemon=True).start()
    return found


def _next(found: queue.Queue, timeout: float = 60) -> str:
    return found.get(timeout=timeout)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is POSIX")
def test_watch_prints_a_record_per_new_epoch_and_exits_130_on_ctrl_c(tmp_path):
    folder = tmp_path / "preds"
    write = _epochs(folder)
    write(1)
    env = {**os.environ, "LOSSACC_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lossacc_cli", "analyze", str(folder), "--watch", "--interval", "0.1",
         "--format", "json", "--jobs", "1"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # a test run started in the background of a shell inherits SIGINT ignored: Ctrl-C as in a terminal
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        found = _lines(proc.stdout)
        first = json.loads(_next(found))
        assert first["n_epochs"] == 1 and first["command"] == "analyze"
        write(2)
        assert json.loads(_next(found))["n_epochs"] == 2
        write(3)
        third = json.loads(_next(found))
        assert third["n_epochs"] == 3 and [e["epoch"] for e in third["epochs"]] == [1, 2, 3]
        time.sleep(0.5)  # nothing new: no record
        assert found.empty()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
        err = proc.stderr.read()
        assert "Traceback" not in err, err
    finally:
        if proc.poll() is None:
            proc.kill()
    # the same JSON as a one-off analysis of the finished run
    once = subprocess.run([sys.executable, "-m", "lossacc_cli", "analyze", str(folder), "--format", "json",
                           "--no-cache"], cwd=ROOT, capture_output=True, text=True, env=env)
    assert json.loads(once.stdout) == third


def test_watch_reduces_each_epoch_once(tmp_path, monkeypatch):
    from lossacc_cli.cli.options import ColorChoice, Format, Shared
    from lossacc_cli.cli.watch import follow

    reduced: list[str] = []
    original = run_module.reduce_source
    monkeypatch.setattr(run_module, "reduce_source",
                        lambda s, o, t=1: reduced.append(os.path.basename(s.path)) or original(s, o, t))
    monkeypatch.setenv("LOSSACC_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "preds"
    write = _epochs(folder)
    write(1)
    seen: list[int] = []

    def analyse(run):
        seen.append(len(run.records))
        if len(run.records) < 4:
            write(len(run.records) + 1)  # the next epoch arrives while the watch goes on
        else:
            raise KeyboardInterrupt  # the user's Ctrl-C
        from lossacc_cli.report import analyze_run

        return analyze_run(run)

    opts = Shared(path=str(folder), output=None, split=None, label_col=None, id_col=None, scores=None,
                  renormalize=False, class_names=None, jobs=1, color=ColorChoice.never, debug=False,
                  fmt=Format.json, top=10)
    with pytest.raises(KeyboardInterrupt):
        follow(opts, analyse, interval=0.05)
    assert seen == [1, 2, 3, 4]
    assert reduced == [f"epoch_{e:03d}.parquet" for e in (1, 2, 3, 4)]  # each epoch read once


@pytest.mark.parametrize("args, message", [
    (["--interval", "0"], "--interval must be more than 0 seconds"),
    (["--output", "x.json"], "--output cannot be used with it"),
])
def test_watch_bad_options(tmp_path, args, message):
    result = subprocess.run([sys.executable, "-m", "lossacc_cli", "analyze", str(tmp_path), "--watch", *args],
                            cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 2 and message in result.stderr and result.stdout == ""


def test_watch_ends_quietly_when_the_reader_goes(tmp_path):
    folder = tmp_path / "preds"
    write = _epochs(folder)
    write(1)
    env = {**os.environ, "LOSSACC_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.Popen([sys.executable, "-m", "lossacc_cli", "analyze", str(folder), "--watch", "--interval",
                             "0.1"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().startswith("1 epoch, last 1: loss ")
        proc.stdout.close()  # like `| head -n 1`: the reader has what it wanted
        write(2)  # the next record finds the pipe closed
        assert proc.wait(timeout=60) == 0
        assert proc.stderr.read() == ""
    finally:
        if proc.poll() is None:
            proc.kill()
