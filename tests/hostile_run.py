"""Run the whole hardening corpus in real processes, each under a time limit (``make hostile``).

Every case of ``tests/hostile.py`` and every (case, command) of ``tests/test_hardening.py`` runs
as ``python -m lossacc_cli ...`` in a process of its own. Run this under an address-space limit
(``ulimit -v``, as ``make hostile`` does; or ``--memory 2G`` to set it for each case): a case
passes when its process ends within ``--timeout`` seconds, is not killed by a signal, prints no
traceback, and does what the case says (one clear ``error:`` line for bad input).

    ulimit -v 2097152; python -m tests.hostile_run --timeout 60
    python -m tests.hostile_run --memory 2G --only "FIFO"          # the cases whose name holds FIFO
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.hostile import HOSTILE, Hang, Hostile, Setup, error, run_process


def _value_cases() -> list[Hostile]:
    """The bad-value corpus of test_hardening.py, one case per (case, command)."""
    from tests import test_hardening as values

    out = []
    for case in values.CASES:
        for command in values._commands(case):
            def make(tmp, case=case, command=command) -> Setup:
                path, args = values.made(case, tmp)
                rules = values.GATE_RULES if command == "check" else ()
                return Setup([command, path, *rules, *args])

            parts = [case.file, *(p for p in (case.field, case.rows) if p), *case.also]
            skip = (lambda: "root reads a chmod 000 file" if os.geteuid() == 0 else None) \
                if case.make is values._unreadable else (lambda: None)
            out.append(Hostile(f"{command}: {case.name}", "values", make, error(*parts), skip=skip))
    return out


def all_cases() -> list[Hostile]:
    return [*HOSTILE, *_value_cases()]


def _run(case: Hostile, base: Path, timeout: float, memory: int | None) -> tuple[Hostile, str | None, float]:
    reason = case.skip()
    if reason:
        return case, f"skipped: {reason}", 0.0
    tmp = Path(tempfile.mkdtemp(prefix="case-", dir=base))
    start = time.perf_counter()
    try:
        outcome = run_process(case, tmp, timeout=timeout, memory=memory)
        case.check(outcome)
        problem = None
    except Hang as exc:
        problem = f"HANG: {exc}"
    except AssertionError as exc:
        problem = f"FAILED: {str(exc)[:600]}"
    except Exception as exc:  # noqa: BLE001 - reported as a finding of the runner itself
        problem = f"ERROR: {type(exc).__name__}: {str(exc)[:600]}"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return case, problem, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=60, help="seconds each case may take")
    parser.add_argument("--memory", default="", help="address-space limit of each case (2G); "
                        "default: whatever ulimit -v gives")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="cases run at once")
    parser.add_argument("--only", default="", help="run the cases whose name holds this")
    args = parser.parse_args(argv)
    from lossacc_cli.readers.budget import parse_size

    memory = parse_size(args.memory) if args.memory else None
    cases = [c for c in all_cases() if args.only in c.name]
    limit = _address_limit(memory)
    print(f"{len(cases)} cases ({sum(c.family != 'values' for c in cases)} hostile, "
          f"{sum(c.family == 'values' for c in cases)} bad-value runs), each in its own process, "
          f"address space {limit}, {args.timeout:g} s each, {args.jobs} at a time", flush=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lossacc-hostile-") as base, ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda c: _run(c, Path(base), args.timeout, memory), cases))
    findings = [(c, p) for c, p, _ in results if p and not p.startswith("skipped")]
    skipped = [(c, p) for c, p, _ in results if p and p.startswith("skipped")]
    passed = len(results) - len(findings) - len(skipped)
    slowest = max(results, key=lambda r: r[2])
    families = Counter(c.family for c, p, _ in results if not p)
    print(f"passed {passed}, findings {len(findings)} (hangs {sum('HANG' in p for _, p in findings)}), "
          f"skipped {len(skipped)}; {time.perf_counter() - started:.0f} s in all, slowest case "
          f"{slowest[2]:.1f} s ({slowest[0].name})")
    print("passed by family: " + ", ".join(f"{name} {count}" for name, count in sorted(families.items())))
    for case, problem in skipped:
        print(f"  [{case.family}] {case.name}: {problem}")
    for case, problem in findings:
        print(f"FINDING [{case.family}] {case.name}: {problem}")
    return 1 if findings else 0


def _address_limit(memory: int | None) -> str:
    from lossacc_cli.readers.budget import human

    if memory:
        return f"limited to {human(memory)} per case"
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return "unlimited (no ulimit -v)" if soft == resource.RLIM_INFINITY else f"limited to {human(soft)} (ulimit -v)"


if __name__ == "__main__":
    sys.exit(main())
