"""The worker processes of a run (lossacc_cli.analysis.workers): results in task order, errors at
their task, and stopping at any point with nothing left waiting."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import textwrap
import time

import pytest

from lossacc_cli.analysis.workers import WorkerDied, in_order


def _square_after(i: int, delay: float) -> int:
    time.sleep(delay)
    return i * i


def _fails_at(i: int, bad: int) -> int:
    if i == bad:
        raise ValueError(f"task {i}")
    return i


def _dies_at(i: int, bad: int) -> int:
    if i == bad:
        os._exit(9)
    return i


def _no_workers_left() -> bool:
    return multiprocessing.active_children() == []


def test_results_come_in_task_order_whatever_each_task_takes():
    delays = [0.05, 0.0, 0.03, 0.0, 0.01, 0.0, 0.02]
    tasks = [(i, d) for i, d in enumerate(delays)]
    assert list(in_order(_square_after, tasks, 3)) == [i * i for i in range(len(delays))]
    assert _no_workers_left()


def test_an_error_is_raised_at_its_task_after_the_results_before_it():
    got = []
    with pytest.raises(ValueError, match="task 3"):
        for value in in_order(_fails_at, [(i, 3) for i in range(8)], 2):
            got.append(value)
    assert got == [0, 1, 2] and _no_workers_left()


def test_a_worker_that_dies_is_an_error_not_a_wait():
    with pytest.raises(WorkerDied, match="exit code 9"):
        list(in_order(_dies_at, [(i, 2) for i in range(6)], 2))
    assert _no_workers_left()


def test_closing_early_stops_the_workers():
    results = in_order(_square_after, [(i, 0.2) for i in range(10)], 2)
    assert next(results) == 0
    results.close()
    assert _no_workers_left()


def test_a_worker_killed_while_it_writes_a_large_result_leaves_nothing_waiting():
    """Task 0 fails while the other worker is writing 64 MB (more than a pipe holds: it stays
    mid-write until read), and it is terminated then. (A pool that reads results on a thread of
    its own can be left waiting for the rest of a message from a worker terminated mid-write, in
    its shutdown and at exit: the suite hung so under load.) Here the process ends at once; run in
    a child process of its own, with a time limit."""
    code = textwrap.dedent("""
        import time
        from lossacc_cli.analysis.workers import in_order

        def task(i):
            if i == 0:
                time.sleep(0.5)  # the other worker is writing its result meanwhile
                raise ValueError("task 0")
            return b"x" * (64 << 20)

        try:
            list(in_order(task, [(0,), (1,)], 2))
        except ValueError as exc:
            print("raised:", exc)
    """)
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "raised: task 0"
    assert time.monotonic() - started < 30
