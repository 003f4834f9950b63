"""Figures: every file is written, arms keep their colours everywhere, the budget adds up."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pytest
from matplotlib.patches import Rectangle
from report_fixtures import make_runs

from hpobench_stn.reporting.figures import (
    arm_styles,
    plot_best_vs_time,
    plot_epochs_per_trial,
    plot_schedules,
    write_figures,
)
from hpobench_stn.reporting.load import KNOWN_ARMS


def test_write_figures_writes_pdf_and_png_of_every_figure(tmp_path: Path) -> None:
    paths = write_figures(make_runs(), tmp_path / "plots")
    stems = ["best_val_vs_time", "best_val_vs_log_time", "final_best", "budget", "epochs_per_trial", "schedule_t"]
    assert [p.name for p in paths] == [f"{s}.{ext}" for s in stems for ext in ("pdf", "png")]
    for path in paths:
        assert path.stat().st_size > 1000
        assert path.read_bytes()[:4] in (b"%PDF", b"\x89PNG")


def test_time_scale_option(tmp_path: Path) -> None:
    names = {p.name for p in write_figures(make_runs(), tmp_path, times=("log",))}
    assert "best_val_vs_log_time.pdf" in names
    assert "best_val_vs_time.pdf" not in names
    with pytest.raises(ValueError, match="time scale must be 'linear' or 'log', got 'sqrt'"):
        write_figures(make_runs(), tmp_path, times=("sqrt",))


def test_every_arm_keeps_its_style_whatever_else_is_plotted() -> None:
    alone = arm_styles(["stn"])["stn"]
    crowded = arm_styles(["grid", "stn_1to1", "random", "stn", "zeta"])
    assert crowded["stn"].color == alone.color
    known = arm_styles(KNOWN_ARMS)
    assert len({s.color for s in known.values()}) == len(KNOWN_ARMS)  # shipped methods never share a colour
    extra = arm_styles([*KNOWN_ARMS, "x1", "x2", "x3"])
    assert len({s.color for s in extra.values()}) == len(KNOWN_ARMS) + 3


def test_curve_panels_and_legend_name_every_arm() -> None:
    fig = plot_best_vs_time(make_runs())
    assert [ax.get_title() for ax in fig.axes] == ["t (smoke)"]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["a", "b"]
    plt.close(fig)


def test_schedules_show_each_hyperparameter_without_sigma() -> None:
    runs = make_runs()
    fig = plot_schedules(runs, "t")
    assert fig is not None
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == ["dropout"]
    assert len(fig.axes[0].lines) == 3  # one line per seed
    plt.close(fig)
    assert plot_schedules(runs, "no such task") is None


def test_epochs_per_trial_stacks_each_arms_shares_and_leaves_out_validation_arms() -> None:
    """One row per black-box arm labelled with its trial count; each row's bars are the shares of its
    trials by epochs trained, stacked by ending, so the bar heights of a row add up to the row's full
    height (0.85); gray-box arms are left out, and a figure of gray-box arms only is None."""
    runs = make_runs()
    trials = runs.trials
    # Arm a, seed 1: the first trial pruned after one epoch.
    trials.loc[(trials["arm"] == "a") & (trials["seed"] == 1) & (trials["index"] == 0), ["status", "epochs"]] = [
        "pruned",
        1,
    ]
    fig = plot_epochs_per_trial(runs, validation_arms={"b"})
    assert fig is not None
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a (7)"]
    bars = [(p.get_x() + p.get_width() / 2, p.get_height()) for p in ax.patches if isinstance(p, Rectangle)]
    heights = {round(x): 0.0 for x, _ in bars}
    for x, h in bars:
        heights[round(x)] += h
    # 7 trials: 1 failed at 0 epochs, 1 pruned at 1 epoch, 5 at the cap of 4 epochs.
    assert heights == pytest.approx({0: 0.85 / 7, 1: 0.85 / 7, 4: 0.85 * 5 / 7})
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["epoch cap", "pruned", "failed"]
    plt.close(fig)
    assert plot_epochs_per_trial(runs, validation_arms={"a", "b"}) is None
