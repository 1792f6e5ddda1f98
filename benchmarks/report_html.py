"""Size and open time of the HTML report (`lossacc report`), on the sample data and on a large run.

Usage (needs the report and browser extras and Debian's chromium: `make test-browser` sets up
.venv-browser with all of them)::

    .venv-browser/bin/python benchmarks/report_html.py            # sample data + 100 x 50,000 x 100
    .venv-browser/bin/python benchmarks/report_html.py --quick    # sample data + 20 x 50,000 x 100
    .venv-browser/bin/python benchmarks/report_html.py --keep DIR # keep the generated run in DIR

For each run it times ``lossacc report RUN -o FILE`` as a user runs it (a fresh process, wall
time), prints the page's size, and opens the page ``--repeat`` times in headless Chromium (a fresh
tab each time, the file already in the page cache): the time to the load event (the HTML and
its inline SVG parsed and laid out) and to the page's script having run (sortable tables and
hover ready), as the median and the worst of the opens.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import SEED, make_run  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

OPEN = """() => {
    const nav = performance.getEntriesByType('navigation')[0];
    const ready = performance.getEntriesByName('lossacc-ready')[0];
    return [nav.loadEventEnd, ready ? ready.startTime : NaN, document.querySelectorAll('svg.chart').length];
}"""


def report(path: Path, out: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "lossacc_cli", "report", str(path), "-o", str(out)], cwd=ROOT, check=True,
                   capture_output=True, text=True)
    return time.perf_counter() - start


def open_times(page_path: Path, repeat: int) -> list[tuple[float, float]]:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("benchmarks/report_html.py: no chromium on PATH (apt-get install chromium)")
    out = []
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as p:
        context = p.chromium.launch_persistent_context(profile, executable_path=chromium, args=ARGS, headless=True,
                                                       viewport={"width": 1280, "height": 900})
        for _ in range(repeat + 1):  # the first open warms the browser itself up; not counted
            page = context.new_page()
            page.goto(page_path.resolve().as_uri(), wait_until="load")
            load, ready, charts = page.evaluate(OPEN)
            assert charts == 5, charts
            out.append((load / 1000, ready / 1000))
            page.close()
        context.close()
    return out[1:]


def measure(name: str, path: Path, folder: Path, repeat: int) -> None:
    out = folder / (name.replace("/", "-").replace(" ", "_") + ".html")
    wall = report(path, out)
    times = open_times(out, repeat)
    loads, readies = [t[0] for t in times], [t[1] for t in times]
    print(f"{name:<34} {out.stat().st_size / 1024:>8,.0f} KB  report {wall:6.1f} s  "
          f"load event {statistics.median(loads):.3f} s (worst {max(loads):.3f})  "
          f"script done {statistics.median(readies):.3f} s (worst {max(readies):.3f})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 epochs instead of 100 for the large run")
    parser.add_argument("--repeat", type=int, default=5, help="opens per page (median and worst reported)")
    parser.add_argument("--keep", type=Path, help="write the large run here and keep it (reused when present)")
    args = parser.parse_args()
    epochs = 20 if args.quick else 100
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print(f"{'run':<34} {'size':>11}  {'lossacc report':>15}  open in headless Chromium "
              f"(median of {args.repeat})", flush=True)
        for sample in ("balanced", "imbalanced"):
            measure(f"sample_data/{sample}", ROOT / "sample_data" / sample, tmp, args.repeat)
        big = args.keep or tmp / "large"
        if not (big.is_dir() and len(list(big.glob("*.npz"))) == epochs):
            started = time.perf_counter()
            make_run(big, n=50_000, k=100, epochs=epochs, layout="npz", seed=SEED)
            print(f"(wrote {epochs} epochs of 50,000 x 100 float32 logits in {time.perf_counter() - started:.0f} s)",
                  flush=True)
        measure(f"{epochs} epochs x 50,000 x 100 classes", big, tmp, args.repeat)


if __name__ == "__main__":
    main()
