"""Every model-based black-box method minimises: on a synthetic objective with a known minimum, its
proposals after the random start-up are better on average than random search's, over several seeds.

A method told ``-loss``, or a study created with ``direction="maximize"``, proposes configs worse than
random ones here and fails. Methods with no model (random, grid) are the reference, not the subject;
every other registered ask/tell method is tested, including ones added later.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from hpobench_stn import Config, Float, Int, SearchSpace, get_method, method_names
from hpobench_stn.harness.method import AskTellMethod

SPACE = SearchSpace(
    {
        "x": Float(0.0, 1.0),
        "y": Float(1e-3, 1.0, log=True),
        "k": Int(0, 8),
    }
)
OPTIMUM = {"x": 0.3, "y": 1e-2, "k": 5}
STARTUP = 5  # random proposals before the model is used (a smaller start-up than the libraries' 10)
TRIALS = 25
SEEDS = range(5)
WITHOUT_MODEL = {"random", "grid", "optuna_sh"}  # optuna_sh samples at random (and prunes)
MODEL_BASED = [m for m in method_names() if issubclass(get_method(m), AskTellMethod) and m not in WITHOUT_MODEL]
STARTUP_OPTION = {
    "skopt_gp": "n_initial_points",
    "optuna_tpe": "n_startup_trials",
    "optuna_gp": "n_startup_trials",
    "optuna_hyperband": "n_startup_trials",
}


def objective(config: Config) -> float:
    """A bowl with its minimum 0 at OPTIMUM, on each hyperparameter's own scale."""
    x, y, k = float(config["x"]), float(config["y"]), int(config["k"])
    return (x - 0.3) ** 2 + (math.log10(y) + 2.0) ** 2 / 9.0 + ((k - 5) / 8.0) ** 2


def proposals(method: str, seed: int) -> list[float]:
    """The objective at each of the method's TRIALS proposals, in order, told back as it goes."""
    options = {STARTUP_OPTION[method]: STARTUP} if method in STARTUP_OPTION else {}
    m = get_method(method)(options)
    assert isinstance(m, AskTellMethod)
    m.max_epochs = 9  # what a run sets (the preset's cap): Hyperband builds its brackets from it
    m.setup(SPACE, seed)
    losses = []
    for _ in range(TRIALS):
        config = SPACE.validate(dict(m.ask() or {}))
        loss = objective(config)
        m.tell(config, loss)
        losses.append(loss)
    return losses


def test_the_objective_has_its_minimum_where_stated() -> None:
    assert objective(OPTIMUM) == 0.0
    assert all(objective(SPACE.sample(np.random.default_rng(s))) > 0 for s in range(20))


def test_every_model_based_method_is_tested() -> None:
    assert {"skopt_gp", "optuna_tpe", "optuna_gp"} <= set(MODEL_BASED)


@pytest.mark.slow
@pytest.mark.parametrize("method", MODEL_BASED)
def test_proposals_after_the_start_up_beat_random_search(method: str) -> None:
    after = slice(STARTUP, TRIALS)
    model = float(np.mean([np.mean(proposals(method, s)[after]) for s in SEEDS]))
    random = float(np.mean([np.mean(proposals("random", s)[after]) for s in SEEDS]))
    assert model < 0.8 * random, f"{method}: mean loss after start-up {model:.4f}, random search {random:.4f}"
