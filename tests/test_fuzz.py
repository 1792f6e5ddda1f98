"""Mutation fuzzing through the CLI (see tests/fuzz_inputs.py).

The normal suite runs a few hundred seeded cases; ``LOSSACC_FUZZ_CASES=5000`` (``make fuzz``)
runs more, and ``LOSSACC_FUZZ_SEED`` picks another stream. The cases run under a memory cap
(the address space may grow by 2 GB at most). A case passes when the CLI exits 0, or exits 2 with
one clean ``error: `` line; a traceback, an escaping exception, another exit code, an ``internal
error`` line, a hang or running out of memory is a finding, reported with the index that
reproduces it: ``python -m tests.fuzz_inputs --only INDEX --seed SEED --keep DIR``.
"""

from __future__ import annotations

import os

import pytest

from tests.fuzz_inputs import DEFAULT_SEED, Outcome, fuzz

CASES = int(os.environ.get("LOSSACC_FUZZ_CASES", "200"))
SEED = int(os.environ.get("LOSSACC_FUZZ_SEED", str(DEFAULT_SEED)))
CHUNK = 100

# Open bugs in files owned elsewhere, each pinned by a strict xfail test in test_hardening.py.
# A finding that matches one is reported but does not fail this test; delete the entry when
# its xfail test starts passing.
KNOWN_OPEN_BUGS: dict = {
}


def _known(outcome: Outcome) -> str | None:
    if outcome.problem != "internal error":
        return None
    return next((bug for bug, match in KNOWN_OPEN_BUGS.items() if match(outcome)), None)


@pytest.mark.parametrize("start", range(0, CASES, CHUNK), ids=lambda s: f"cases {s}-")
def test_mutated_files_exit_0_or_2_without_traceback(tmp_path, start):
    outcomes = fuzz(min(CHUNK, CASES - start), SEED, tmp_path, start=start)

    assert all(o.problem != "traceback" for o in outcomes), [str(o) for o in outcomes]
    assert all(o.exit_code in (0, 2) for o in outcomes), [str(o) for o in outcomes]
    new = [str(o) for o in outcomes if o.problem and not _known(o)]
    assert not new, "\n".join(new)
    known = sorted({_known(o) for o in outcomes if o.problem})
    if known:
        pytest.xfail("only known open bugs: " + " | ".join(known))


def test_the_fuzzer_damages_files():
    """Most cases must be refused: proof that the mutations reach the readers."""
    outcomes = fuzz(40, SEED)
    refused = sum(o.exit_code == 2 for o in outcomes)
    assert refused >= 20
    assert len({o.seed_file for o in outcomes}) >= 5


def test_the_fuzzer_rewrites_claims_and_file_kinds():
    """Claims (footer integers, .npy shapes, zip sizes) and file kinds are among the mutations."""
    from tests.fuzz_inputs import build_case

    cases = [build_case(i, SEED) for i in range(300)]
    mutations = " | ".join(c.mutation for c in cases)
    for what in ("claim footer int", "claim npy header", "claim zip sizes", "replaced by: fifo",
                 "replaced by: link to /dev/zero"):
        assert what in mutations, what
    assert sum(bool(c.kinds) for c in cases) >= 10
