"""The ``hpobench`` command line, run as a user runs it: ``python -m hpobench_stn`` in a subprocess."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CliRunner

from hpobench_stn.harness.records import FINAL_NAME, LOG_NAME, load_final, load_log
from hpobench_stn.reporting.load import COLUMNS

BUILTIN_METHODS = ["grid", "optuna_gp", "optuna_tpe", "random", "skopt_gp", "stn"]
RUN = [
    "run",
    "--task",
    "digits_mlp",
    "--method",
    "random",
    "--preset",
    "smoke",
    "--seed",
    "0",
    "--device",
    "cpu",
]

PLUGIN = '''\
"""An out-of-tree method: always the space's default config."""
from hpobench_stn import AskTellMethod, register_method


@register_method("default_plugin_test")
class DefaultPlugin(AskTellMethod):
    def setup(self, space, seed):
        self.space = space

    def ask(self):
        return self.space.default()

    def tell(self, config, loss):
        pass
'''


def _run_dir(out: Path, method: str = "random", seed: int = 0) -> Path:
    return out / "digits_mlp" / "smoke" / method / f"seed{seed}"


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.fixture(scope="module")
def finished_run(run_cli: CliRunner, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real 3-second run through the CLI; returns its results folder."""
    out = tmp_path_factory.mktemp("cli-run") / "results"
    proc = run_cli(*RUN, "--budget", "3", "--out", str(out), cwd=out.parent)
    assert proc.returncode == 0, proc.stderr
    assert "digits_mlp/smoke/random/seed0:" in proc.stdout
    (out.parent / "header.txt").write_text(proc.stdout.splitlines()[0])
    return out


def test_list_shows_methods_tasks_presets_and_suites(run_cli: CliRunner, tmp_path: Path) -> None:
    proc = run_cli("list", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("methods: ")
    methods = lines[0].removeprefix("methods: ").split(", ")
    assert methods == sorted(methods)
    assert set(BUILTIN_METHODS) <= set(methods)
    assert "  digits_mlp: presets smoke, cpu; 5 hyperparameters" in lines
    assert lines[-1].startswith("suites: ")
    assert {"smoke", "digits_cpu"} <= set(lines[-1].removeprefix("suites: ").split(", "))


def test_run_writes_a_complete_run(finished_run: Path) -> None:
    run_dir = _run_dir(finished_run)
    final = load_final(run_dir)
    meta, trials, _ = load_log(run_dir)
    assert final.meta == meta
    assert (meta.task, meta.method, meta.preset, meta.seed, meta.budget_s) == (
        "digits_mlp",
        "random",
        "smoke",
        0,
        3.0,
    )
    assert meta.command[1:4] == ["run", "--task", "digits_mlp"]
    assert final.n_trials == len(trials) >= 1
    assert final.incumbent_val_loss is not None
    assert final.incumbent_test_loss is not None


def test_report_writes_the_csv_columns(run_cli: CliRunner, finished_run: Path, tmp_path: Path) -> None:
    csv_path = tmp_path / "x.csv"
    proc = run_cli("report", str(finished_run), "--csv", str(csv_path), "--csv-only", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {csv_path}" in proc.stdout
    assert not (finished_run / "summary.md").exists()  # --csv-only: nothing else
    with csv_path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
    assert reader.fieldnames == [
        "task",
        "preset",
        "arm",
        "method",
        "seed",
        "budget_s",
        "n_trials",
        "n_complete",
        "n_early_stopped",
        "n_pruned",
        "best_val",
        "test_at_best",
        "elapsed_s",
        "wall_s",
        "status",
        "warnings",
        "method_tuned",
    ]
    assert reader.fieldnames == COLUMNS
    final = load_final(_run_dir(finished_run))
    assert len(rows) == 1
    row = rows[0]
    assert (row["task"], row["preset"], row["method"], row["seed"], row["status"]) == (
        "digits_mlp",
        "smoke",
        "random",
        "0",
        "complete",
    )
    assert int(row["n_trials"]) == final.n_trials
    assert float(row["best_val"]) == final.incumbent_val_loss
    assert float(row["test_at_best"]) == final.incumbent_test_loss
    assert row["method_tuned"] == ""  # random moves the whole open space


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["--task", "mnist"],
            "unknown task 'mnist'; known: cifar_alexnet, digits_mlp, dropout_regression, ptb_lstm, ridge",
            id="unknown-task",
        ),
        pytest.param(
            ["--preset", "huge"],
            "unknown preset 'huge' for task 'digits_mlp'; known: smoke, cpu",
            id="unknown-preset",
        ),
        pytest.param(["--budget", "0"], "budget must be a positive, finite number of seconds, got '0'", id="budget-0"),
        pytest.param(
            ["--budget", "-1"],
            "budget must be a positive, finite number of seconds, got '-1'",
            id="budget-negative",
        ),
        pytest.param(["--budget", "abc"], "budget must be a number of seconds, got 'abc'", id="budget-abc"),
        pytest.param(["--budget", "inf"], "budget must be a positive, finite number of seconds", id="budget-inf"),
        pytest.param(["--seed", "-1"], "seed must be an integer in [0, 2**63), got '-1'", id="seed-negative"),
        pytest.param(["--seed", "1.5"], "seed must be an integer in [0, 2**63), got '1.5'", id="seed-float"),
        pytest.param(["--option", "pts=3"], "got unknown option(s) ['pts']; allowed: none", id="unknown-option"),
    ],
)
def test_bad_run_arguments_exit_2_with_a_message_and_nothing_run(
    run_cli: CliRunner, tmp_path: Path, args: list[str], message: str
) -> None:
    base = dict(zip(RUN[1::2], RUN[2::2], strict=True))  # --task digits_mlp, --method random, ...
    base |= {"--budget": "3", "--out": str(tmp_path / "out")}
    base |= dict(zip(args[0::2], args[1::2], strict=True))
    argv = ["run"] + [item for pair in base.items() for item in pair]
    proc = run_cli(*argv, cwd=tmp_path)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not [p for p in _files(tmp_path / "out") if p.name in (LOG_NAME, FINAL_NAME)]


def test_unknown_method_lists_every_known_method(run_cli: CliRunner, tmp_path: Path) -> None:
    argv = [*RUN, "--budget", "3", "--out", str(tmp_path / "out")]
    argv[argv.index("random")] = "rnd"
    proc = run_cli(*argv, cwd=tmp_path)
    assert proc.returncode == 2
    known = proc.stderr.strip().split("; known: ")[1].split(", ")
    assert set(BUILTIN_METHODS) <= set(known)


def test_unwritable_output_dir_is_refused_before_training(run_cli: CliRunner, tmp_path: Path) -> None:
    """Tests run as root, so a read-only folder would not stop a write: use a path below a regular file."""
    blocker = tmp_path / "blocker"
    blocker.write_text("a regular file")
    out = blocker / "results"
    proc = run_cli(*RUN, "--budget", "3", "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("hpobench: error: output directory")
    assert "is not writable" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]


def test_malformed_suite_file_exits_2_naming_the_file(run_cli: CliRunner, tmp_path: Path) -> None:
    suite = tmp_path / "broken.toml"
    suite.write_text('[suite]\nname = "broken"\ntasks = digits_mlp\nseeds = [0]\n')
    proc = run_cli("suite", str(suite), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 2
    assert f"hpobench: error: {suite}: not valid TOML" in proc.stderr
    assert "line 3" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_report_writes_tables_and_figures(run_cli: CliRunner, finished_run: Path, tmp_path: Path) -> None:
    plots = tmp_path / "figs"
    args = ("report", str(finished_run), "--plots", str(plots), "--time-scale", "log", "--test", "t")
    proc = run_cli(*args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"\| digits_mlp \(smoke\) \| random\s+\|\s+1 \|", proc.stdout), proc.stdout
    assert "one-sided paired t-test (option --test t" in proc.stdout  # the legend names the option's test
    assert {p.name for p in finished_run.glob("summary.*")} == {"summary.md", "summary.csv", "summary.tex"}
    with (finished_run / "summary.csv").open(newline="") as fh:
        assert {row["test_name"] for row in csv.DictReader(fh)} == {"t"}
    assert (plots / "best_val_vs_log_time.pdf").exists()
    assert not (plots / "best_val_vs_time.pdf").exists()
    assert (plots / "budget.png").exists()


def test_report_test_option_offers_the_reporting_tests(capsys: pytest.CaptureFixture[str]) -> None:
    """``--test`` spells out its choices (importing the reporting module would load scipy): every test
    of ``reporting.significance.TESTS`` parses, the first is the default, another name exits 2."""
    from hpobench_stn.orchestration.cli import build_parser
    from hpobench_stn.reporting.significance import TESTS

    parser = build_parser()
    assert parser.parse_args(["report", "d"]).test == TESTS[0] == "wilcoxon"
    assert [parser.parse_args(["report", "d", "--test", name]).test for name in TESTS] == list(TESTS)
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["report", "d", "--test", "z"])
    assert exc.value.code == 2
    assert "argument --test: invalid choice: 'z'" in capsys.readouterr().err


def test_report_of_an_empty_folder_exits_2(run_cli: CliRunner, tmp_path: Path) -> None:
    proc = run_cli("report", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 2
    assert f"no runs under '{tmp_path}'" in proc.stderr


@pytest.mark.slow
def test_suite_skips_complete_runs_on_the_second_invocation(run_cli: CliRunner, tmp_path: Path) -> None:
    """The built-in smoke suite (8 s per run) restricted to one run; the rerun trains nothing."""
    out = tmp_path / "results"
    args = ("suite", "smoke", "--out", str(out), "--methods", "random", "--seeds", "0", "--device", "cpu")
    first = run_cli(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "suite smoke: 1 runs" in first.stdout
    final_path = _run_dir(out) / FINAL_NAME
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in _files(out)}
    assert final_path in before

    second = run_cli(*args, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "already complete" in second.stdout
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in _files(out)} == before


def test_suite_dry_run_lists_runs_without_running(run_cli: CliRunner, tmp_path: Path) -> None:
    proc = run_cli("suite", "smoke", "--out", str(tmp_path / "out"), "--dry-run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "digits_mlp/smoke/grid/seed0 budget=8s options={'points': 3}" in proc.stdout
    assert not (tmp_path / "out").exists()


def test_plugin_method_is_listed_and_runs(run_cli: CliRunner, tmp_path: Path) -> None:
    plugin = tmp_path / "my_plugin.py"
    plugin.write_text(PLUGIN)
    listed = run_cli("--plugin", str(plugin), "list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "default_plugin_test" in listed.stdout.splitlines()[0]

    out = tmp_path / "results"
    argv = [*RUN, "--budget", "2", "--out", str(out)]
    argv[argv.index("random")] = "default_plugin_test"
    proc = run_cli("--plugin", str(plugin), *argv, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run_dir = _run_dir(out, method="default_plugin_test")
    final = load_final(run_dir)
    assert final.meta.method == "default_plugin_test"
    assert final.incumbent_config == {
        "dropout_in": 0.0,
        "dropout_h1": 0.0,
        "dropout_h2": 0.0,
        "weight_decay": 1e-6,
        "shift": 0,
    }


def test_unknown_plugin_file_exits_2(run_cli: CliRunner, tmp_path: Path) -> None:
    proc = run_cli("--plugin", str(tmp_path / "nope.txt"), "list", cwd=tmp_path)
    assert proc.returncode == 2
    assert "is not a .py file" in proc.stderr


def test_unknown_method_creates_no_output_folder(run_cli: CliRunner, tmp_path: Path) -> None:
    """Names are resolved before the output folder is created: a typo leaves nothing behind."""
    argv = [*RUN, "--budget", "3", "--out", str(tmp_path / "out")]
    argv[argv.index("random")] = "rnd"
    proc = run_cli(*argv, cwd=tmp_path)
    assert proc.returncode == 2
    assert not (tmp_path / "out").exists()


def test_suite_with_an_unknown_method_fails_before_any_run(run_cli: CliRunner, tmp_path: Path) -> None:
    """A typo in the last method of a suite is reported before the first run trains anything."""
    suite = tmp_path / "typo.toml"
    suite.write_text(
        '[suite]\ntasks = ["digits_mlp"]\nmethods = ["random", "rnd"]\nseeds = [0]\npreset = "smoke"\nbudget_s = 2\n'
    )
    proc = run_cli("suite", str(suite), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 2
    assert "unknown method 'rnd'" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_suite_with_an_unknown_preset_fails_before_any_run(run_cli: CliRunner, tmp_path: Path) -> None:
    suite = tmp_path / "typo.toml"
    suite.write_text(
        '[suite]\ntasks = ["digits_mlp"]\nmethods = ["random"]\nseeds = [0]\npreset = "papr"\nbudget_s = 2\n'
    )
    proc = run_cli("suite", str(suite), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 2
    assert "unknown preset 'papr' for task 'digits_mlp'; known: smoke, cpu" in proc.stderr


def test_run_without_preset_or_seed_uses_the_cpu_preset_and_seed_0_and_says_so(
    run_cli: CliRunner, tmp_path: Path
) -> None:
    out = tmp_path / "results"
    argv = ["run", "--task", "digits_mlp", "--method", "random", "--budget", "1", "--device", "cpu"]
    proc = run_cli(*argv, "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    header = proc.stdout.splitlines()[0]
    assert header == (
        "run: task digits_mlp, method random, preset cpu (the task's default: cpu, else smoke), "
        "seed 0 (default), budget 1s"
    )
    meta = load_final(out / "digits_mlp" / "cpu" / "random" / "seed0").meta
    assert (meta.preset, meta.seed) == ("cpu", 0)


def test_run_header_names_given_values_without_calling_them_defaults(finished_run: Path) -> None:
    # The fixture's run named --preset smoke and --seed 0; its first line of output:
    header = (finished_run.parent / "header.txt").read_text()
    assert header == "run: task digits_mlp, method random, preset smoke, seed 0, budget 3s"


def test_run_help_lists_every_method_and_task_including_plugins(run_cli: CliRunner, tmp_path: Path) -> None:
    plugin = tmp_path / "my_plugin.py"
    plugin.write_text(PLUGIN)
    proc = run_cli("--plugin", str(plugin), "run", "--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    methods_line = next(line for line in proc.stdout.splitlines() if line.startswith("methods: "))
    assert set(methods_line.removeprefix("methods: ").split(", ")) >= {
        *BUILTIN_METHODS,
        "schedule_replay",
        "default_plugin_test",
    }
    assert "cifar_alexnet (smoke/cpu/paper), digits_mlp (smoke/cpu), dropout_regression (smoke), " in proc.stdout
    assert "ptb_lstm (smoke/cpu/paper), ridge (smoke)" in proc.stdout


def test_a_method_from_another_installed_distribution_is_found_by_its_entry_point(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    """What ``pip install other-project`` leaves in site-packages: its module and a ``.dist-info`` whose
    ``entry_points.txt`` declares the method in the ``hpobench_stn.methods`` group."""
    site = tmp_path / "site"
    (site / "ext_hpo").mkdir(parents=True)
    (site / "ext_hpo" / "__init__.py").write_text(PLUGIN.replace("default_plugin_test", "ext_default"))
    info = site / "ext_hpo-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ext-hpo\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[hpobench_stn.methods]\next_default = ext_hpo\n")
    env = {**cli_env, "PYTHONPATH": str(site)}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hpobench_stn", *args], cwd=tmp_path, env=env, capture_output=True, text=True
        )

    listed = cli("list")
    assert listed.returncode == 0, listed.stderr
    assert "ext_default" in listed.stdout.splitlines()[0].removeprefix("methods: ").split(", ")
    assert "ext_default" in cli("run", "--help").stdout
    argv = [*RUN, "--budget", "1", "--out", str(tmp_path / "results")]
    argv[argv.index("random")] = "ext_default"
    ran = cli(*argv)
    assert ran.returncode == 0, ran.stderr
    assert load_final(_run_dir(tmp_path / "results", method="ext_default")).meta.method == "ext_default"
