"""Worker processes for a run's epochs: tasks handed out in order, results taken back in the same
order, and stoppable at any point (an error, Ctrl-C) with nothing left waiting.

Each worker has a pipe of its own and runs its tasks in the order they were sent; task ``i`` goes
to worker ``i mod W``, so result ``i`` is the next message on that worker's pipe. Nothing runs in
the background here: a result is read when the caller asks for it, so at most ``ahead`` tasks per
worker are in flight, and stopping is killing the workers, reaping them and closing the pipes.

(``concurrent.futures.ProcessPoolExecutor`` reads results on a thread of its own: a worker
terminated while it writes a result leaves that thread waiting for the rest of the message, and
both the pool's shutdown and the interpreter's exit wait for that thread, for ever.)
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator, Sequence

JOIN_S = 5.0
"""How long a worker that was told to stop may take to end before it is terminated."""


class WorkerDied(RuntimeError):
    """A worker process ended without sending its result (killed, out of memory, a crash)."""


def in_order(fn: Callable, tasks: Sequence[tuple], workers: int, *, ahead: int = 2,
             start: Callable[[], None] | None = None) -> Iterator:
    """``fn(*task)`` for each task, run in ``workers`` processes (forked where the platform can),
    yielded in task order; an exception raised by ``fn`` is raised here, at its task. ``start``
    runs first in each worker. Closing the iterator early terminates the workers.

    Workers ignore Ctrl-C (it reaches the whole process group): this process gets it and stops
    them. It is held back while they start (not lost: it arrives once they have), so that none
    is interrupted before it could ignore it."""
    import multiprocessing  # 16 ms: only a run that uses workers imports it

    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    processes: list = []
    pipes: list = []
    finished = False
    try:
        held = _hold_interrupts()
        try:
            for w in range(min(workers, max(1, len(tasks)))):
                ours, theirs = context.Pipe()
                # a forked worker inherits this process's ends of the earlier workers' pipes: it
                # closes them, so that each pipe ends when its own worker or this process does
                inherited = list(pipes) if method == "fork" else []
                process = context.Process(target=_serve, args=(theirs, fn, start, inherited),
                                          name=f"lossacc-worker-{w}", daemon=True)
                process.start()
                theirs.close()
                processes.append(process)
                pipes.append(ours)
        finally:
            _release_interrupts(held)
        count = len(processes)
        sent = 0
        for i in range(len(tasks)):
            while sent < min(len(tasks), i + ahead * count):
                pipes[sent % count].send(tasks[sent])
                sent += 1
            ok, value = _receive(pipes[i % count], processes[i % count])
            if not ok:
                raise value
            yield value
        finished = True
    finally:
        _stop(processes, pipes, finished)


def _hold_interrupts() -> bool:
    """Block SIGINT in this thread (a child started now inherits the mask); True if blocked."""
    if not hasattr(signal, "pthread_sigmask"):
        return False
    return signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})


def _release_interrupts(held: bool) -> None:
    if held:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # one held back arrives now


def _receive(pipe, process) -> tuple[bool, object]:
    try:
        return pipe.recv()
    except (EOFError, OSError):
        process.join(JOIN_S)
        raise WorkerDied(f"a worker process ended without its result (exit code {process.exitcode})") from None


def _stop(processes: list, pipes: list, finished: bool) -> None:
    """Finished: each worker is told to stop and ends; otherwise the workers are terminated (the
    epochs in flight are not wanted any more). Either way each is reaped and its pipe closed."""
    for process, pipe in zip(processes, pipes):
        if finished:
            try:
                pipe.send(None)
            except OSError:
                pass  # it has ended already
        else:
            process.terminate()
    for process, pipe in zip(processes, pipes):
        process.join(JOIN_S if finished else None)
        if process.is_alive():  # told to stop but still running: not waited for any longer
            process.terminate()
            process.join()
        pipe.close()


def _serve(pipe, fn: Callable, start: Callable[[], None] | None, inherited: list) -> None:
    """A worker: runs each task it receives and sends back ``(True, result)`` or
    ``(False, exception)``, until told to stop (None) or the pipe ends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # one held back is dropped
    for other in inherited:
        other.close()
    if start is not None:
        start()
    while True:
        try:
            task = pipe.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        try:
            reply = (True, fn(*task))
        except BaseException as exc:  # noqa: BLE001 - raised again in the parent, at its task
            reply = (False, exc)
        try:
            pipe.send(reply)  # pickled whole before anything is written
        except Exception as exc:  # noqa: BLE001 - a result or exception that cannot be pickled
            pipe.send((False, RuntimeError(f"a worker's result could not be sent back: {exc!r}")))
