"""The ``hpobench`` command line (also ``python -m hpobench_stn``).

Sub-commands: ``list``, ``run``, ``suite``, ``report``. Bad input ends with ``hpobench: error: ...``
on stderr and exit status 2; set ``HPOBENCH_DEBUG=1`` for the traceback instead.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..datasets import DATA_ENV
from ..foundation.clock import Budget
from ..foundation.seeding import check_seed
from ..harness.records import TrialRecord
from ..harness.registry import get_task, load_plugin, method_names, task_names
from ..harness.runner import RunOutcome, RunSpec, check_specs, execute
from ..reporting.load import write_csv
from .suite import builtin_suites, load_suite

__all__ = ["main"]


def _budget(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"budget must be a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"budget must be a positive, finite number of seconds, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _seed(text: str) -> int:
    try:
        return check_seed(int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"seed must be an integer in [0, 2**63), got {text!r}") from None


def _option(text: str) -> tuple[str, Any]:
    """``key=value`` with a TOML value (``points=5``, ``acq_func="EI"``; bare words are strings)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"method options look like key=value, got {text!r}")
    try:
        return key, tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return key, raw


def _data_dir(arg: str | None) -> Path | None:
    # Without --data-dir a task reads $HPOBENCH_STN_DATA itself (datasets.resolve_data_root): one place.
    return Path(arg) if arg else None


class _Progress:
    """A tqdm bar over the run's charged seconds, with the best validation loss so far."""

    def __init__(self, label: str, budget_s: float) -> None:
        self.bar = tqdm(total=round(budget_s, 1), desc=label, unit="s", leave=False, disable=None)

    def __call__(self, record: TrialRecord) -> None:
        self.bar.n = min(round(record.elapsed_s, 1), self.bar.total)
        best = "-" if record.best_so_far is None else f"{record.best_so_far:.4f}"
        self.bar.set_postfix_str(f"trials={record.index + 1} best={best}", refresh=True)

    def close(self) -> None:
        self.bar.close()


def _summary(outcome: RunOutcome) -> str:
    f = outcome.final
    best = "none" if f.incumbent_val_loss is None else f"{f.incumbent_val_loss:.4f}"
    test = "none" if f.incumbent_test_loss is None else f"{f.incumbent_test_loss:.4f}"
    verb = "already complete" if outcome.skipped else f"{f.elapsed_s:.1f}s charged"
    return f"{f.n_trials} trials, best val {best}, test at best {test} ({verb}) -> {outcome.run_dir}"


def _execute(spec: RunSpec, args: argparse.Namespace, label: str, *, rerun_stale: bool = False) -> RunOutcome:
    progress = _Progress(label, spec.budget.seconds)
    try:
        return execute(
            spec,
            Path(args.out),
            data_dir=_data_dir(args.data_dir),
            device=args.device,
            on_trial=progress,
            rerun_stale=rerun_stale,
        )
    finally:
        progress.close()


def cmd_list(args: argparse.Namespace) -> int:
    print("methods: " + ", ".join(method_names()))
    print("tasks:")
    for name in task_names():
        task = get_task(name)
        print(f"  {name}: presets {', '.join(task.presets)}; {len(task.space)} hyperparameters")
    print("suites: " + ", ".join(sorted(builtin_suites())))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    preset = args.preset if args.preset is not None else get_task(args.task).default_preset()
    seed = args.seed if args.seed is not None else 0
    spec = RunSpec(args.task, args.method, preset, seed, Budget(args.budget), dict(args.option))
    print(_run_header(spec, preset_given=args.preset is not None, seed_given=args.seed is not None), flush=True)
    outcome = _execute(spec, args, spec.label())
    print(f"{spec.label()}: {_summary(outcome)}")
    return 0


def _run_header(spec: RunSpec, *, preset_given: bool, seed_given: bool) -> str:
    """The line ``hpobench run`` prints first: what runs, and which values were defaults."""
    preset = spec.preset if preset_given else f"{spec.preset} (the task's default: cpu, else smoke)"
    seed = str(spec.seed) if seed_given else f"{spec.seed} (default)"
    return f"run: task {spec.task}, method {spec.method}, preset {preset}, seed {seed}, budget {spec.budget.seconds:g}s"


def _catalogue() -> str:
    """The methods and tasks a run can name (built-ins, installed plug-ins and ``--plugin`` files)."""
    tasks = ", ".join(f"{name} ({'/'.join(get_task(name).presets)})" for name in task_names())
    return f"methods: {', '.join(method_names())}\ntasks (presets): {tasks}"


def cmd_suite(args: argparse.Namespace) -> int:
    suite = load_suite(args.suite).restricted(methods=args.methods, seeds=args.seeds, tasks=args.tasks)
    runs = suite.runs()
    check_specs(runs)
    out = Path(args.out) if args.out else Path("results") / suite.name
    args.out = str(out)
    print(
        f"suite {suite.name}: {len(runs)} runs ({len(suite.tasks)} tasks x {len(suite.methods)} methods x "
        f"{len(suite.seeds)} seeds), preset {suite.preset}, {suite.budget.seconds:g}s each -> {out}"
    )
    if args.dry_run:
        for spec in runs:
            print(f"  {spec.label()} budget={spec.budget.seconds:g}s options={dict(spec.method_options)}")
        return 0
    start = time.perf_counter()
    if args.executor == "dask":
        _run_on_dask(suite.waves(), args)
    else:
        for i, spec in enumerate(runs, start=1):
            label = f"[{i}/{len(runs)}] {spec.label()}"
            # A suite regenerates its folder: a finished run made with other settings (e.g. a method
            # default changed since) is moved aside and made again.
            outcome = _execute(spec, args, label, rerun_stale=True)
            if outcome.moved_aside:
                print(f"{label}: earlier files moved aside: {', '.join(p.name for p in outcome.moved_aside)}")
            print(f"{label}: {_summary(outcome)}", flush=True)
    print(f"suite {suite.name} done in {time.perf_counter() - start:.0f}s; report: hpobench report {out}")
    return 0


def _run_on_dask(waves: list[list[RunSpec]], args: argparse.Namespace) -> None:
    """The suite's runs on a Dask cluster, wave after wave, with a bar over runs (done / running / left)."""
    from .executors import DaskExecutor, RunJob, jobs_for

    if args.scheduler is None and args.workers is None:
        raise ValueError("--executor dask needs --workers N (a local cluster) or --scheduler ADDRESS")
    executor = DaskExecutor(workers=args.workers, scheduler=args.scheduler, threads_per_run=args.threads_per_run)
    plugins = [str(Path(p).resolve()) for p in args.plugin]
    total = sum(len(wave) for wave in waves)
    where = args.scheduler or f"a local cluster of {args.workers} workers"
    print(f"on {where}, {executor.threads_per_run} thread(s) per run", flush=True)
    bar = tqdm(total=total, desc="runs", unit="run", disable=None)
    finished = offset = later = 0

    def done(job: RunJob, outcome: RunOutcome) -> None:
        nonlocal finished
        finished += 1
        tqdm.write(f"[{finished}/{total}] {job.spec.label()}: {_summary(outcome)}")

    def progress(n_done: int, running: int, left: int) -> None:
        bar.n = offset + n_done
        bar.set_postfix_str(f"running={running} left={left + later}", refresh=True)

    try:
        for wave in waves:  # a later wave reads the runs of an earlier one (schedule replays)
            jobs = jobs_for(
                wave,
                Path(args.out).resolve(),
                data_dir=_data_dir(args.data_dir),
                device=args.device,
                plugins=plugins,
                command=sys.argv,
            )
            later = total - offset - len(wave)  # runs of the waves still to come
            executor.run(jobs, on_done=done, on_progress=progress)
            offset += len(wave)
    finally:
        bar.close()


def cmd_report(args: argparse.Namespace) -> int:
    csv_path = Path(args.csv) if args.csv else Path(args.dir) / "runs.csv"
    if args.csv_only:
        table = write_csv(Path(args.dir), csv_path)
        print(table.to_string(index=False))
        print(f"wrote {csv_path}")
        return 0
    from ..reporting.pipeline import make_report  # matplotlib and scipy load only when a report is made

    times = {"linear": ("linear",), "log": ("log",), "both": ("linear", "log")}[args.time_scale]
    plots = Path(args.plots) if args.plots else None
    report = make_report(Path(args.dir), plots, times=times, csv_path=csv_path, test=args.test)
    print(report.markdown)
    if report.incomplete:
        print(f"note: {report.incomplete} incomplete run(s) left out; re-run the suite to finish them")
    folders = sorted({str(p.parent) for p in report.paths})
    print(f"wrote {len(report.paths)} files into {', '.join(folders)}")
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help=f"data root (default: ${DATA_ENV})")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:1, ...")


class _Parser(argparse.ArgumentParser):
    """An argument parser whose help can end with the methods and tasks a run may name.

    The list is made when help is printed, not when the parser is built: listing the plug-ins imports
    them all (torch, optuna, ...), which a plain ``hpobench report`` has no need for.
    """

    def __init__(self, *args: Any, catalogue: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.catalogue = catalogue

    def format_help(self) -> str:
        if self.catalogue:
            self.epilog = _catalogue()
        return super().format_help()


def _plugin_files(argv: Sequence[str]) -> list[str]:
    """The ``--plugin FILE`` options of ``argv``, read before the full parse so that ``--help`` lists
    the plug-ins' methods and tasks too."""
    early = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    early.add_argument("--plugin", action="append", default=[])
    return list(early.parse_known_args(argv)[0].plugin)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hpobench", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="FILE",
        help="load a method/task plug-in file (repeatable)",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("list", help="list methods, tasks with their presets, and built-in suites")

    run = sub.add_parser(
        "run",
        help="one run of a method on a task",
        catalogue=True,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--task", required=True, help="a task name (listed below)")
    run.add_argument("--method", required=True, help="a method name (listed below)")
    run.add_argument("--preset", help="the task's preset (default: cpu, else smoke)")
    run.add_argument("--budget", required=True, type=_budget, help="wall-clock seconds")
    run.add_argument("--seed", type=_seed, help="master seed of the run (default: 0)")
    run.add_argument("--out", required=True, help="results folder")
    run.add_argument("--option", action="append", default=[], type=_option, metavar="KEY=VALUE")
    _common(run)

    suite = sub.add_parser("suite", help="every task x method x seed of a suite, skipping complete runs")
    suite.add_argument("suite", help="a suite file, or a built-in suite name")
    suite.add_argument("--out", help="results folder (default: results/<suite name>)")
    suite.add_argument("--methods", nargs="+", help="run only these methods")
    suite.add_argument("--seeds", nargs="+", type=_seed, help="run only these seeds")
    suite.add_argument("--tasks", nargs="+", help="run only these tasks")
    suite.add_argument("--dry-run", action="store_true", help="list the runs and exit")
    suite.add_argument(
        "--executor", choices=["local", "dask"], default="local", help="local: in-process, one run after another"
    )
    suite.add_argument("--workers", type=_positive_int, help="dask: worker processes of a local cluster")
    suite.add_argument("--scheduler", help="dask: address of an existing scheduler (e.g. tcp://host:8786)")
    suite.add_argument("--threads-per-run", type=_positive_int, help="dask: torch threads per run")
    _common(suite)

    report = sub.add_parser("report", help="tables (Markdown, CSV, LaTeX) and figures of a results folder")
    report.add_argument("dir")
    report.add_argument("--csv", help="the per-run CSV (default: DIR/runs.csv)")
    report.add_argument("--csv-only", action="store_true", help="write only the per-run CSV")
    report.add_argument(
        "--plots", help="figures folder (default: plots/<suite> beside results/<suite>, else DIR/plots)"
    )
    report.add_argument(
        "--time-scale", choices=["linear", "log", "both"], default="both", help="time axis of the best-loss figure"
    )
    report.add_argument(
        "--test",
        choices=["wilcoxon", "t"],  # reporting.significance.TESTS, spelled out: importing it would load scipy
        default="wilcoxon",
        help="paired test of each method against the best (Holm-corrected): exact Wilcoxon signed-rank "
        "(default, from 5 paired seeds) or paired t-test (from 3)",
    )
    return parser


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "list": cmd_list,
    "run": cmd_run,
    "suite": cmd_suite,
    "report": cmd_report,
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    try:
        for plugin in _plugin_files(argv):  # before parsing: `--plugin f.py run --help` lists f.py's names
            load_plugin(plugin)
        args = parser.parse_args(argv)
        return COMMANDS[args.command](args)
    except (ValueError, OSError) as exc:
        if os.environ.get("HPOBENCH_DEBUG"):
            raise
        print(f"hpobench: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
