"""Wall-clock of a suite on a local Dask cluster against the local (sequential, in-process) executor.

Runs ``hpobench suite SUITE`` twice into fresh folders, as a user would: once with the local executor
(torch's default thread count) and once with ``--executor dask --workers N --threads-per-run 1``, and
prints both wall times (process start to exit, cluster start-up included) and their ratio. The issue's
target for the ``smoke`` suite with 2 single-thread workers on a 2-core machine: ratio <= 0.6.

    python benchmarks/dask_speedup.py                 # smoke suite, 2 workers
    python benchmarks/dask_speedup.py --workers 4 --suite digits_cpu

Figures go into the issue note; nothing here is hard-coded.
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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default="smoke")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        common = ["suite", args.suite, "--device", args.device]
        local = timed([*common, "--out", str(Path(tmp) / "local")])
        scale_out = ["--executor", "dask", "--workers", str(args.workers), "--threads-per-run", "1"]
        dask = timed([*common, "--out", str(Path(tmp) / "dask"), *scale_out])
    print(
        f"suite {args.suite}: local executor {local:.1f} s, dask with {args.workers} single-thread workers {dask:.1f} s"
    )
    print(f"ratio dask / local = {dask / local:.2f}")


if __name__ == "__main__":
    main()
