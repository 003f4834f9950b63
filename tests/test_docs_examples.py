"""The docs show exactly the example files, and both example plug-ins run through the real CLI."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hpobench_stn import (
    AskTellMethod,
    Config,
    EpochReport,
    Float,
    Int,
    SearchSpace,
    get_method,
    get_task,
    load_plugin,
    method_names,
    task_names,
)
from hpobench_stn.harness import registry
from hpobench_stn.harness.records import load_final, load_log

ROOT = Path(__file__).resolve().parent.parent
METHOD_EXAMPLE = ROOT / "examples" / "my_method.py"
TASK_EXAMPLE = ROOT / "examples" / "my_task.py"
STOPPING_EXAMPLE = ROOT / "examples" / "median_stopping.py"

# A doc embeds a file as an HTML comment naming it, immediately followed by a python block.
EMBED = re.compile(r"^<!-- embed: (?P<path>\S+) -->\n```python\n(?P<body>.*?)^```$", re.DOTALL | re.MULTILINE)


@pytest.fixture
def isolated_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Plug-ins a test loads are unregistered afterwards, so other tests see only the installed ones
    (an error message listing the known names must not depend on test order)."""
    # Import the entry points first: the restored tables must still hold the built-ins.
    method_names()
    task_names()
    monkeypatch.setattr(registry, "_METHODS", dict(registry._METHODS))
    monkeypatch.setattr(registry, "_TASKS", dict(registry._TASKS))
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith("hpobench_plugin_"):  # load_plugin's module names: the next load re-registers
            del sys.modules[name]


@pytest.mark.parametrize(
    ("doc", "example"),
    [
        ("docs/adding-a-method.md", "examples/my_method.py"),
        ("docs/adding-a-method.md", "examples/median_stopping.py"),
        ("docs/adding-a-task.md", "examples/my_task.py"),
    ],
)
def test_doc_embeds_its_example_byte_for_byte(doc: str, example: str) -> None:
    """Copying the doc's code block gives exactly the file that the CLI tests below run."""
    text = (ROOT / doc).read_bytes().decode("utf-8")  # bytes: no newline translation
    blocks = {m["path"]: m["body"] for m in EMBED.finditer(text)}
    assert example in blocks, f"{doc} has no '<!-- embed: {example} -->' python block"
    assert blocks[example].encode("utf-8") == (ROOT / example).read_bytes()


def _run_cli(tmp_path: Path, plugin: Path, task: str, method: str) -> Path:
    """``python -m hpobench_stn --plugin FILE run ...`` on the smoke preset for 3 s; the run directory."""
    command = [
        sys.executable, "-m", "hpobench_stn", "--plugin", str(plugin), "run",
        "--task", task, "--method", method, "--preset", "smoke", "--budget", "3", "--seed", "0",
        "--out", str(tmp_path), "--device", "cpu",
    ]  # fmt: skip
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return tmp_path / task / "smoke" / method / "seed0"


def _assert_in_space(space: SearchSpace, config: Config) -> None:
    """``config`` validates unchanged, and Int hyperparameters hold Python ints (the integer rule)."""
    assert space.validate(config) == config
    for name, dist in space.items():
        if isinstance(dist, Int):
            assert type(config[name]) is int, f"{name}={config[name]!r} is not an int"


def _assert_complete_run_in_space(run_dir: Path, space: SearchSpace, task: str, method: str) -> None:
    final = load_final(run_dir)  # raises when final.json is missing or malformed
    meta, trials, _ = load_log(run_dir)
    assert (final.meta.task, final.meta.method) == (meta.task, meta.method) == (task, method)
    assert final.n_trials == len(trials) >= 1
    for trial in trials:
        _assert_in_space(space, trial.config)
    assert final.incumbent_config is not None, "no trial validated within 3 s"
    _assert_in_space(space, final.incumbent_config)


def test_method_example_runs_through_the_cli(tmp_path: Path) -> None:
    """The method doc's command works: my_local_search finishes a run whose configs lie in the space."""
    run_dir = _run_cli(tmp_path, METHOD_EXAMPLE, "digits_mlp", "my_local_search")
    _assert_complete_run_in_space(run_dir, get_task("digits_mlp").space, "digits_mlp", "my_local_search")


def test_stopping_example_runs_through_the_cli_and_prunes(tmp_path: Path) -> None:
    """The multi-fidelity example's command works, and it stops some trials early (PRUNED)."""
    run_dir = _run_cli(tmp_path, STOPPING_EXAMPLE, "digits_mlp", "my_median_stopping")
    _assert_complete_run_in_space(run_dir, get_task("digits_mlp").space, "digits_mlp", "my_median_stopping")
    final = load_final(run_dir)
    assert final.n_pruned is not None
    assert final.n_pruned >= 1


@pytest.mark.usefixtures("isolated_registry")
def test_median_stopping_stops_a_trial_worse_than_the_median_of_earlier_trials_at_that_epoch() -> None:
    """After three told trials with best losses 1, 2, 3 at epoch 1, a trial at 2.5 is stopped there and
    one at 1.5 is not; before min_trials earlier trials reached an epoch, nothing is stopped."""
    load_plugin(STOPPING_EXAMPLE)
    space = SearchSpace({"p": Float(0.0, 1.0)})
    method = get_method("my_median_stopping")({"min_trials": 3})
    assert isinstance(method, AskTellMethod)
    method.setup(space, 0)

    def trial(losses: list[float]) -> list[bool]:
        config = method.ask()
        assert config is not None
        stops = [method.report(EpochReport(e, v, min(losses[:e]), 4)) for e, v in enumerate(losses, 1)]
        method.tell(dict(config), min(losses))
        return stops

    assert trial([3.0, 2.0, 1.0]) == [False] * 3  # fewer than three earlier trials: never stopped
    assert trial([2.0, 2.0, 2.0]) == [False] * 3
    assert trial([1.0, 0.9, 0.8]) == [False] * 3
    assert trial([2.5]) == [True]  # median of 3, 2, 1 at epoch 1 is 2
    assert trial([1.5, 1.4]) == [False, False]  # at epoch 2 only three trials: 2, 2, 0.9 → median 2


@pytest.mark.usefixtures("isolated_registry")
def test_task_example_runs_through_the_cli(tmp_path: Path) -> None:
    """The task doc's command works: random search on my_task finishes a run whose configs lie in its space."""
    run_dir = _run_cli(tmp_path, TASK_EXAMPLE, "my_task", "random")
    load_plugin(TASK_EXAMPLE)
    _assert_complete_run_in_space(run_dir, get_task("my_task").space, "my_task", "random")


def _local_search_proposals(space: SearchSpace, seed: int, n: int) -> list[Config]:
    method = get_method("my_local_search")({"min_step": 0.05})  # restarts after ~25 failures
    assert isinstance(method, AskTellMethod)
    method.setup(space, seed)
    proposals = []
    for i in range(n):
        config = method.ask()
        assert config is not None
        _assert_in_space(space, dict(config))
        proposals.append(dict(config))
        # A deterministic loss with its optimum inside the space; every 7th trial FAILED.
        loss = None if i % 7 == 3 else abs(math.log10(config["decay"]) + 3) + abs(config["holes"] - 2)
        method.tell(dict(config), loss)
    return proposals


@pytest.mark.usefixtures("isolated_registry")
def test_local_search_example_stays_in_a_mixed_space_and_follows_its_seed() -> None:
    """Log-scale floats are clipped, integers floored and clipped, through failures and restarts;
    the seed alone decides the proposals."""
    load_plugin(METHOD_EXAMPLE)
    space = SearchSpace(
        {
            "decay": Float(1e-6, 1.0, log=True),
            "width": Int(1, 512, log=True),
            "holes": Int(0, 4),
            "p": Float(0.0, 0.9),
        }
    )
    first = _local_search_proposals(space, seed=0, n=300)
    assert first == _local_search_proposals(space, seed=0, n=300)
    assert first != _local_search_proposals(space, seed=1, n=300)
    # It searched: some proposal sits at each end of the integer range (mutations reach the bounds).
    assert {0, 4} <= {c["holes"] for c in first}
