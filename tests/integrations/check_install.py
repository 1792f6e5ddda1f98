"""Fail unless the integration venv holds exactly the pinned frameworks, CPU builds only.

Usage: python check_install.py constraints.txt
"""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
import os
import sys

FRAMEWORKS = ("torch", "lightning", "keras", "transformers")


def pins(path: str) -> dict[str, str]:
    found = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.split("#", 1)[0].strip()
            if line:
                name, version = line.split("==")
                found[name.strip().lower()] = version.strip()
    return found


def main(path: str) -> int:
    problems = []
    for name, version in pins(path).items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            problems.append(f"{name} is not installed (pinned {version})")
            continue
        if installed != version:
            problems.append(f"{name} {installed} is installed, {version} is pinned")
    gpu = sorted(
        d.metadata["Name"] for d in metadata.distributions()
        if (d.metadata["Name"] or "").lower().startswith(("nvidia-", "triton", "cuda-"))
    )
    if gpu:
        problems.append(f"GPU packages came in (a CUDA torch build?): {', '.join(gpu)}")
    os.environ["KERAS_BACKEND"] = "torch"
    versions = []
    for name in FRAMEWORKS:
        try:
            module = importlib.import_module(name)
        except Exception as exc:  # any failure to import is the finding
            problems.append(f"import {name} failed: {type(exc).__name__}: {exc}")
            continue
        versions.append(f"{name} {module.__version__}")
    if "torch" in sys.modules and sys.modules["torch"].version.cuda is not None:
        problems.append(f"torch is a CUDA build ({sys.modules['torch'].version.cuda})")
    for problem in problems:
        print(f"integration venv: {problem}", file=sys.stderr)
    if not problems:
        print("integration venv: " + ", ".join(versions) + " (CPU)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
