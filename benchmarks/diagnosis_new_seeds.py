"""The diagnosis on runs it was not built on: the fixture families of ``tests/fixtures/runs`` again,
with other seeds, each judged against its own independently computed answer key.

Usage:
    python benchmarks/diagnosis_new_seeds.py [--seeds 101,102,103] [--only flipval,oneoutlier20]

Needs the ``peers`` extra (scikit-learn: the families train scikit-learn models and use its
bundled data sets). Each run is trained and written to a temporary folder, then read by
``lossacc analyze --format json`` in a process of its own, as a user's run would be.

A family's generator refuses a draw that does not clearly show its kind (the rise's interval too
close to zero, accuracy falling, the cause at a border): those are counted as "not its kind" and
not scored, because their right answer is itself unclear. Every other run is scored as the
fixture tests score the committed runs: the first verdict must be one the key accepts, no verdict
may be one the key forbids, and clean labels must never be called noisy. For runs with flipped
validation labels the flagged list's precision and recall are printed too.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNS = HERE.parent / "tests" / "fixtures" / "runs"


def families(seed: int) -> dict:
    """name -> build() for one seed: the committed runs' settings with another seed."""
    import fam_binary as b
    import fam_multi as m

    def named(stem):
        return f"{stem}@{seed}"

    return {
        named("cleanoverconf_a"): lambda: m.synthetic_overconf(named("cleanoverconf_a"), kind="cleanoverconf",
                                                               seed=seed, k=5, hidden=16, lr=0.1),
        named("cleanoverconf_b"): lambda: m.synthetic_overconf(named("cleanoverconf_b"), kind="cleanoverconf",
                                                               seed=seed, k=5, hidden=32, lr=0.1),
        named("fp16probs"): lambda: m.synthetic_overconf(named("fp16probs"), kind="fp16probs", seed=seed, k=5,
                                                         hidden=32, lr=0.1, fmt="probs"),
        named("trainnoise_benign"): lambda: m.trainnoise_benign(named("trainnoise_benign"), seed=seed, n_dim=200,
                                                                n_train=300, signal=6.0, lr=0.003),
        named("trainnoise_hedging"): lambda: m.trainnoise_underconfident(named("trainnoise_hedging"), seed=seed,
                                                                         hidden=256, lr=0.01, steps=2),
        named("longtail_a"): lambda: m.longtail(named("longtail_a"), seed=seed, hidden=64, lr=0.01, noise=0.8),
        named("longtail_b"): lambda: m.longtail(named("longtail_b"), seed=seed, hidden=64, lr=0.01, noise=1.2),
        named("smoothing_a"): lambda: m.smoothing_numpy(named("smoothing_a"), seed=seed, lr=0.01, eps=0.1),
        named("smoothing_b"): lambda: m.smoothing_numpy(named("smoothing_b"), seed=seed, lr=0.01, eps=0.2),
        named("flipval_digits"): lambda: m.flipval(named("flipval_digits"), dataset="digits", seed=seed, n_val=360,
                                                   fraction=0.05, model="mlp", n_epochs=25, hidden=64, lr=0.003),
        named("flipval_sgd"): lambda: m.flipval(named("flipval_sgd"), dataset="digits", seed=seed, n_val=360,
                                                fraction=0.06, model="sgd", n_epochs=25, lr=0.01),
        named("flipval_cancer"): lambda: m.flipval(named("flipval_cancer"), dataset="breast_cancer", seed=seed,
                                                   n_val=250, fraction=0.04, model="logreg", n_epochs=30,
                                                   C=100.0, iters=3),
        named("oneoutlier20"): lambda: b.oneoutlier20(named("oneoutlier20"), seed=seed, lr=0.1, batch_size=20,
                                                      near=None),
        named("rule_binary"): b._rule_binary_run(named("rule_binary"), ["overconfidence"], seed=seed, hidden=3,
                                                 lr=0.03),
        named("binary10pct"): lambda: b.binary10pct(named("binary10pct"), seed=seed, hidden=8, lr=0.03, noise=0.7),
        named("plateau_large"): lambda: b.plateau_logistic(named("plateau_large"), seed=seed, lr=0.3,
                                                           batch_size=30),
        named("plateau_dip"): lambda: b.plateau_logistic(named("plateau_dip"), seed=seed, lr=0.3, batch_size=10,
                                                         dip=True, n_val=1000, n_epochs=30),
    }


def judge(folder: Path) -> tuple[bool, str]:
    """Whether ``lossacc analyze`` on the run agrees with its key, and a one-line account."""
    expected = json.loads((folder / "truth.json").read_text())["expected"]
    out = subprocess.run([sys.executable, "-m", "lossacc_cli", "analyze", str(folder), "--format", "json",
                          "--top", "1"], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return False, f"exit {out.returncode}: {out.stderr.strip()[-200:]}"
    doc = json.loads(out.stdout)
    found = [v["verdict"] for v in doc["diagnosis"]["verdicts"]]
    ok = bool(found) and found[0] in expected["headline"] and not set(found) & set(expected["forbidden"])
    text = f"found {found}, key {expected['headline']}"
    if expected["label_errors"]:
        flagged = {s["id"] for s in doc["label_issues"]["samples"]}
        errors = set(expected["label_errors"])
        hits = len(flagged & errors)
        text += f"; flagged P {hits / max(len(flagged), 1):.2f} R {hits / len(errors):.2f}"
    elif expected["label_errors"] == [] and "suspected label noise" in found:
        ok = False
    return ok, text


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="101,102,103", help="comma-separated seeds")
    parser.add_argument("--only", default="", help="comma-separated family name prefixes")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(RUNS))
    import common

    only = [o for o in args.only.split(",") if o]
    agreed = scored = refused = 0
    with tempfile.TemporaryDirectory() as tmp:
        common.HERE = Path(tmp)  # the generators write beside HERE: a temporary folder, never the fixtures
        for seed in (int(s) for s in args.seeds.split(",")):
            for name, build in families(seed).items():
                if only and not any(name.startswith(o) for o in only):
                    continue
                try:
                    with contextlib.redirect_stdout(io.StringIO()):  # the generators' own measurements
                        build()
                except SystemExit as exc:  # the draw does not clearly show its kind
                    refused += 1
                    print(f"{name:24} not its kind ({str(exc).split(': ', 2)[-1][:90]})", flush=True)
                    continue
                ok, text = judge(Path(tmp) / name)
                scored += 1
                agreed += ok
                print(f"{name:24} {'agrees' if ok else 'WRONG '}  {text}", flush=True)
    print(f"\n{agreed} of {scored} runs diagnosed as their key says ({refused} draws not clearly of their kind)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
