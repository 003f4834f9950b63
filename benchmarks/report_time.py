"""Wall-clock of a suite end to end as a user runs it: the runs, the report, then a re-run that only
regenerates the report. The issue's targets: the ``smoke`` suite (runs, tables and figures) within about
3 minutes in CI; a re-run of a finished suite in seconds.

    python benchmarks/report_time.py                      # the smoke suite into a fresh folder
    python benchmarks/report_time.py --suite cpu --out results/cpu   # re-run/report of committed runs

Each step is a fresh process (``python -m hpobench_stn``), start-up included. Figures go into the issue
note; nothing here is hard-coded.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "hpobench_stn", *args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--suite", default="smoke")
    parser.add_argument("--out", help="results folder (default: a fresh temporary results/<suite>)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out) if args.out else Path(tmp) / "results" / args.suite
        suite = timed(["suite", args.suite, "--out", str(out)])
        report = timed(["report", str(out)])
        again = timed(["suite", args.suite, "--out", str(out)]) + timed(["report", str(out)])
    print(f"suite {args.suite}: runs {suite:.1f} s, report {report:.1f} s, total {suite + report:.1f} s")
    print(f"re-run of the finished suite (skips every run) plus report: {again:.1f} s")


if __name__ == "__main__":
    main()
