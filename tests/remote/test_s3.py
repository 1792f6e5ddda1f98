"""`s3://` PATHs against a real S3-compatible server on localhost: the same answers as the same run
read from a local folder, and one clear line for what is missing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lossacc_cli.writers import PredictionWriter

ROOT = Path(__file__).resolve().parents[2]
N, K, EPOCHS = 240, 4, 6


def make_run(folder: Path, fmt: str) -> Path:
    """A run whose logits grow sharper each epoch (the loss of the wrong samples rises)."""
    rng = np.random.default_rng(7)
    labels = rng.integers(0, K, N)
    base = rng.normal(size=(N, K))
    base[np.arange(N), labels] += 1.5
    with PredictionWriter(folder, format=fmt, class_names=["a", "b", "c", "d"]) as writer:
        for epoch in range(1, EPOCHS + 1):
            logits = base * (0.5 + 0.4 * epoch) + rng.normal(scale=0.05, size=(N, K))
            writer.add(np.arange(N) + 1000, labels, logits=logits)
            writer.end_epoch(epoch)
    return folder


def lossacc(env: dict, *args: str) -> subprocess.CompletedProcess:
    full = {**os.environ, **env, "NO_COLOR": "1", "LOSSACC_CACHE_DIR": env.get("LOSSACC_CACHE_DIR", "")}
    full = {k: v for k, v in full.items() if v != ""}
    return subprocess.run([sys.executable, "-m", "lossacc_cli", *args], cwd=ROOT, env=full,
                          capture_output=True, text=True, timeout=300)


def client(env: dict):
    import boto3

    return boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_DEFAULT_REGION"],
                        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])


def upload(env: dict, folder: Path, bucket: str, prefix: str, extra: dict[str, bytes] | None = None) -> None:
    s3 = client(env)
    try:
        s3.create_bucket(Bucket=bucket)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    for path in sorted(folder.iterdir()):
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{path.name}", Body=path.read_bytes())
    for name, body in (extra or {}).items():
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{name}", Body=body)


@pytest.fixture(scope="module", params=["parquet", "npz"])
def uploaded(request, s3_server, tmp_path_factory):
    fmt = request.param
    local = make_run(tmp_path_factory.mktemp(f"run-{fmt}") / "preds", fmt)
    upload(s3_server, local, "runs", f"{fmt}/preds")
    return fmt, local, f"s3://runs/{fmt}/preds"


COMMANDS = [
    ("analyze",),
    ("outliers", "--epoch", "last"),
    ("calibration", "--epoch", "best"),
    ("check", "--max-loss-rise", "5%", "--min-accuracy", "0.5"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_remote_equals_local(s3_server, uploaded, command, tmp_path):
    fmt, local, url = uploaded
    env = {**s3_server, "LOSSACC_CACHE_DIR": str(tmp_path / "cache")}
    here = lossacc(env, command[0], str(local), *command[1:], "--format", "json")
    there = lossacc(env, command[0], url + "/", *command[1:], "--format", "json")
    assert here.returncode in (0, 1), here.stderr
    assert there.returncode == here.returncode, there.stderr
    assert there.stderr == here.stderr.replace(str(local), url)
    # the only difference allowed: the run is named by its URL
    assert json.loads(there.stdout) == json.loads(here.stdout.replace(str(local), url))


def test_missing_bucket(s3_server):
    result = lossacc(s3_server, "analyze", "s3://no-such-bucket/run/preds/")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "error: s3://no-such-bucket/run/preds: no such bucket (no-such-bucket)"]


def test_missing_prefix(s3_server, uploaded):
    result = lossacc(s3_server, "analyze", "s3://runs/not/there/")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["error: s3://runs/not/there: no such file or directory"]


def test_unreachable_server_is_one_line(s3_server, uploaded):
    # nothing listens on port 9 (discard): the client gives up after its retries
    env = {**s3_server, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    result = lossacc(env, "analyze", "s3://runs/npz/preds/")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # the client's details vary with its version
    assert lines[0].startswith("error: s3://runs/npz/preds: cannot reach the storage server (")
    assert lines[0].endswith("); AWS_ENDPOINT_URL chooses another")
    assert "Traceback" not in result.stderr


def test_non_epoch_object_ignored_and_truncated_newest_skipped(s3_server, tmp_path):
    local = make_run(tmp_path / "preds", "npz")
    newest = (local / f"epoch_{EPOCHS:03d}.npz").read_bytes()
    (local / f"epoch_{EPOCHS + 1:03d}.npz").write_bytes(newest[: len(newest) // 2])  # a run in progress
    (local / "README.txt").write_bytes(b"notes")
    upload(s3_server, local, "progress", "run/preds")
    url = "s3://progress/run/preds"
    env = {**s3_server, "LOSSACC_CACHE_DIR": str(tmp_path / "cache")}
    here = lossacc(env, "analyze", str(local), "--format", "json")
    there = lossacc(env, "analyze", url, "--format", "json")
    assert here.returncode == there.returncode == 0, there.stderr
    warnings = there.stderr.strip().splitlines()
    assert f"warning: skipped {url}/epoch_{EPOCHS + 1:03d}.npz: unfinished (no zip central directory yet), the " \
           "newest epoch of a run still being written? (--strict makes this an error)" in warnings
    assert f"warning: ignored 1 unrelated file in {url}: README.txt" in warnings
    assert json.loads(there.stdout) == json.loads(here.stdout.replace(str(local), url))
    assert json.loads(there.stdout)["n_epochs"] == EPOCHS


def test_single_object(s3_server, uploaded):
    fmt, local, url = uploaded
    result = lossacc(s3_server, "outliers", f"{url}/epoch_003.{fmt}", "--epoch", "3", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["epoch"] == 3


def test_permission_denied_is_one_line(s3_server_with_auth):
    env = {**s3_server_with_auth, "AWS_ACCESS_KEY_ID": "not-a-key", "AWS_SECRET_ACCESS_KEY": "wrong"}
    result = lossacc(env, "analyze", "s3://runs/npz/preds/")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: s3://runs/npz/preds: permission denied (check the credentials: AWS_ACCESS_KEY_ID, "
        "AWS_SECRET_ACCESS_KEY, AWS_PROFILE)"]


def test_watch_a_remote_run(s3_server, tmp_path):
    """`--watch` on an s3:// prefix: the listing tells when an epoch object arrived."""
    import queue
    import signal
    import threading

    local = make_run(tmp_path / "preds", "npz")
    s3 = client(s3_server)
    s3.create_bucket(Bucket="watched")
    first = sorted(local.iterdir())
    s3.put_object(Bucket="watched", Key=f"run/{first[0].name}", Body=first[0].read_bytes())
    env = {**os.environ, **s3_server, "LOSSACC_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.Popen([sys.executable, "-m", "lossacc_cli", "analyze", "s3://watched/run", "--watch",
                             "--interval", "0.2", "--format", "json"], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    try:
        assert json.loads(lines.get(timeout=120))["n_epochs"] == 1
        s3.put_object(Bucket="watched", Key=f"run/{first[1].name}", Body=first[1].read_bytes())
        second = json.loads(lines.get(timeout=120))
        assert second["n_epochs"] == 2 and second["path"] == "s3://watched/run"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
