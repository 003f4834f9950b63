"""Stage 3 of a report: the figures of a suite, as PDF and PNG, styled for a paper as they are.

* ``best_val_vs_time`` (and ``best_val_vs_log_time``): best validation loss so far against charged
  wall-clock, one panel per task, mean ± standard error across seeds (:func:`hpobench_stn.reporting.aggregate.bands`).
* ``final_best``: each seed's final best validation per arm (seeds joined across arms, since they are
  paired), with the mean ± sd; for the ``sensitivity`` suite this is the sensitivity figure.
* ``budget``: where the budget went per arm: training, validation, the method's own work, the
  harness, and the unused rest (idle), mean over seeds (:func:`hpobench_stn.reporting.aggregate.budget_table`).
* ``epochs_per_trial``: where each black-box arm spent its budget: a histogram per arm of the epochs its
  trials trained (all seeds), stacked by how they ended (epoch cap, patience, pruned, failed, deadline),
  the preset's epoch cap dashed. Gray-box arms (whose records are periodic validations of one run) are
  left out.
* ``schedule_<task>``: the hyperparameter schedules of the gray-box runs, one panel per hyperparameter.

Arms appear in the order fixed when the runs were loaded (:attr:`hpobench_stn.reporting.load.Runs.arms`).
Every arm keeps one colour, line style and marker in every figure (:func:`arm_styles`), drawn from
seaborn's colour-blind-safe palette; lines also differ in style, so the figures survive greyscale.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import matplotlib

matplotlib.use("Agg")  # files only; never a window (CI, clusters)

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.ticker import LogLocator, MaxNLocator, NullFormatter, ScalarFormatter

from ..foundation.space import Int
from ..harness.registry import RegistryError, get_task
from .aggregate import CATEGORIES, bands, budget_table, curves
from .load import KNOWN_ARMS, Runs

__all__ = ["ArmStyle", "arm_styles", "plot_epochs_per_trial", "write_figures"]

FULL_WIDTH_IN = 6.75  # a two-column paper's text width
_LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)))
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")


# Palette indices of seaborn's "colorblind": every shipped method keeps its colour in every figure.
_FIXED_COLOURS = {
    "stn": 0,
    "random": 1,
    "skopt_gp": 2,
    "optuna_sh": 3,
    "optuna_tpe": 4,
    "optuna_gp": 5,
    "optuna_hyperband": 6,
    "grid": 7,
    "pbt": 8,
    "schedule_replay": 9,
}
# Shipped methods past the palette's ten colours: indices into its dark variant (Delta-STN in STN's dark blue).
_DARK_COLOURS = {"delta_stn": 0, "ift": 1}
# Line styles of the shipped methods (STN solid, the one a reader looks for); other arms cycle.
_FIXED_LINESTYLES: dict[str, str | tuple[int, tuple[int, ...]]] = {
    "stn": "-",
    "random": "--",
    "skopt_gp": "-.",
    "optuna_tpe": ":",
    "optuna_gp": (0, (5, 1)),
    "grid": (0, (3, 1, 1, 1, 1, 1)),
    "schedule_replay": (0, (1, 1)),
    "optuna_sh": (0, (6, 2, 1, 2)),
    "optuna_hyperband": (0, (2, 2)),
    "pbt": (0, (8, 2)),
    "delta_stn": (0, (4, 1, 1, 1)),
    "ift": (0, (1, 2, 4, 2)),
}
# The budget figure's categories: cividis (colour-blind safe) for the work, near-black and light grey for
# the harness's sliver and the unused rest, so no category reads as a method's colour.
_CIVIDIS = matplotlib.colormaps["cividis"]
_CATEGORY_COLOURS = {
    "training": _CIVIDIS(0.1),
    "validation": _CIVIDIS(0.55),
    "method": _CIVIDIS(0.95),
    "harness": (0.15, 0.15, 0.15, 1.0),
    "idle": (0.88, 0.88, 0.88, 1.0),
}
assert set(_FIXED_COLOURS) | set(_DARK_COLOURS) == set(KNOWN_ARMS), "every shipped method needs a fixed colour"


@dataclass(frozen=True)
class ArmStyle:
    color: tuple[float, float, float]
    linestyle: str | tuple[int, tuple[int, ...]]
    marker: str


def arm_styles(arms: Iterable[str]) -> dict[str, ArmStyle]:
    """One style per arm, given in reporting order (``Runs.arms``): the shipped methods always get the
    same colour and line style; other arms the unused colours, and markers and line styles by position."""
    palette = sns.color_palette("colorblind", 10)
    dark = sns.color_palette("dark", 10)
    spare = [dark[3], dark[4], dark[2], dark[1], dark[5]]  # every colorblind colour (and dark[0]) is a shipped arm's
    styles: dict[str, ArmStyle] = {}
    others = 0
    for arm in dict.fromkeys(arms):
        if arm in _FIXED_COLOURS:
            color = palette[_FIXED_COLOURS[arm]]
        elif arm in _DARK_COLOURS:
            color = dark[_DARK_COLOURS[arm]]
        else:  # the palette's unused colours, then its dark variants, then around again
            color = spare[others % len(spare)]
            others += 1
        n = len(styles)
        linestyle = _FIXED_LINESTYLES.get(arm, _LINESTYLES[n % len(_LINESTYLES)])
        styles[arm] = ArmStyle(color, linestyle, _MARKERS[n % len(_MARKERS)])
    return styles


def _theme() -> None:
    sns.set_theme(context="paper", style="whitegrid", font_scale=1.05)
    plt.rcParams.update(
        {
            "pdf.fonttype": 42,  # embed TrueType: text stays text in the PDF
            "ps.fonttype": 42,
            "axes.titlesize": 9,
            "axes.labelsize": 9,
            "xtick.labelsize": 8,
            "ytick.labelsize": 8,
            "legend.fontsize": 8,
            "lines.linewidth": 1.4,
        }
    )


def _save(fig: Figure, out: Path, stem: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{stem}.pdf", out / f"{stem}.png"]
    # A fixed creation date keeps regenerated PDFs byte-identical when nothing changed.
    fig.savefig(paths[0], bbox_inches="tight", metadata={"CreationDate": None})
    fig.savefig(paths[1], bbox_inches="tight", dpi=200, metadata={"Software": None})
    plt.close(fig)
    return paths


def _task_title(runs: pd.DataFrame, task: str) -> str:
    presets = ", ".join(sorted(set(runs.loc[runs["task"] == task, "preset"])))
    return f"{task} ({presets})"


def _legend_below(fig: Figure, styles: dict[str, ArmStyle], arms: Sequence[str]) -> None:
    handles = [
        Line2D([], [], color=styles[a].color, linestyle=cast(Any, styles[a].linestyle), label=a)  # a style it accepts
        for a in arms
    ]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), frameon=False, bbox_to_anchor=(0.5, 0))


def plot_best_vs_time(runs: Runs, *, log: bool = False) -> Figure:
    """Best validation so far vs charged seconds; a panel per task, mean ± s.e.m. over seeds."""
    table = bands(curves(runs, log=log))
    tasks = sorted(runs.runs["task"].unique())
    arms = runs.arms
    styles = arm_styles(arms)
    fig, axes = plt.subplots(1, len(tasks), figsize=(FULL_WIDTH_IN, 2.5), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        for arm in arms:
            b = table[(table["task"] == task) & (table["arm"] == arm)]
            if b.empty:
                continue
            st = styles[arm]
            # steps-post: a best-so-far holds from the end of its trial until the next improvement.
            ax.plot(b["time_s"], b["mean"], color=st.color, linestyle=st.linestyle, label=arm, drawstyle="steps-post")
            ax.fill_between(
                b["time_s"], b["mean"] - b["sem"], b["mean"] + b["sem"], color=st.color, alpha=0.2, lw=0, step="post"
            )
        ax.set_title(_task_title(runs.runs, task))
        ax.set_xlabel("charged wall-clock (s, log scale)" if log else "charged wall-clock (s)")
        if log:
            ax.set_xscale("log")
            # Plain numbers at 1-3-10 steps and no labels between them: minor labels collide on a short axis.
            ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 3.0)))  # 1, 3, 10, 30, ...
            ax.xaxis.set_major_formatter(ScalarFormatter())
            ax.xaxis.set_minor_formatter(NullFormatter())
        else:
            ax.set_xlim(0, float(runs.runs.loc[runs.runs["task"] == task, "budget_s"].max()))
        _clip_y(ax, table[table["task"] == task])
    axes[0][0].set_ylabel("best validation loss")
    present = [a for a in arms if a in set(table["arm"])]
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    _legend_below(fig, styles, present)
    return fig


def _clip_y(ax: Axes, band: pd.DataFrame) -> None:
    """Show the part of the curves where methods differ: from the lowest lower band edge to the highest
    value any arm holds at a quarter of the time axis (earlier values are off the top)."""
    if band.empty:
        return
    low = float((band["mean"] - band["sem"].fillna(0)).min())
    times = band["time_s"].to_numpy()
    quarter = times.min() + 0.25 * (times.max() - times.min())
    late = band[band["time_s"] >= quarter]
    high = float(late.groupby("arm")["mean"].max().max()) if not late.empty else float(band["mean"].max())
    if math.isfinite(low) and math.isfinite(high) and high > low:
        pad = 0.06 * (high - low)
        ax.set_ylim(low - pad, high + pad)


def plot_final_best(runs: Runs) -> Figure:
    """Each seed's final best validation per arm, seeds joined across arms, the mean ± sd as a bar."""
    tasks = sorted(runs.runs["task"].unique())
    arms = runs.arms
    styles = arm_styles(arms)
    width = max(FULL_WIDTH_IN, 0.45 * len(arms) * len(tasks) + 1)
    fig, axes = plt.subplots(1, len(tasks), figsize=(width, 2.8), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        t = runs.runs[runs.runs["task"] == task]
        present = [a for a in arms if a in set(t["arm"])]
        x = {a: i for i, a in enumerate(present)}
        for _, seed_runs in t.groupby("seed"):
            seed_runs = seed_runs.assign(x=seed_runs["arm"].map(x)).sort_values("x")
            ax.plot(seed_runs["x"], seed_runs["best_val"], color="0.75", lw=0.7, zorder=1)
        for a in present:
            vals = t.loc[t["arm"] == a, "best_val"].dropna()
            st = styles[a]
            ax.scatter(np.full(len(vals), x[a]), vals, color=st.color, marker=st.marker, s=18, zorder=3)
            if len(vals):
                sd = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
                ax.errorbar(x[a] + 0.18, vals.mean(), yerr=sd, fmt="_", color="black", ms=8, capsize=2, zorder=4)
        ax.set_xticks(
            range(len(present)),
            present,
            rotation=30 if len(present) > 4 else 0,
            ha="right" if len(present) > 4 else "center",
        )
        ax.set_xlim(-0.5, len(present) - 0.5)
        ax.set_title(_task_title(runs.runs, task))
    axes[0][0].set_ylabel("final best validation loss")
    fig.tight_layout()
    return fig


def plot_budget(runs: Runs) -> Figure:
    """A stacked bar per arm and task: the share of the budget each kind of work was charged."""
    table = budget_table(runs)
    tasks = sorted(table["task"].unique())
    arms = runs.ordered(table["arm"])
    colors = _CATEGORY_COLOURS
    height = 0.9 + 0.28 * len(arms)
    fig, axes = plt.subplots(1, len(tasks), figsize=(FULL_WIDTH_IN, height), squeeze=False, sharey=True)
    for ax, task in zip(axes[0], tasks, strict=True):
        t = table[table["task"] == task].set_index("arm")
        present = [a for a in arms if a in t.index][::-1]  # first arm on top
        budget = float(runs.runs.loc[runs.runs["task"] == task, "budget_s"].max())
        left = np.zeros(len(present))
        for cat in CATEGORIES:
            share = 100 * t.loc[present, cat].to_numpy() / budget
            ax.barh(range(len(present)), share, left=left, color=colors[cat], label=cat, height=0.7)
            left += share
        ax.set_yticks(range(len(present)), present)
        ax.set_xlim(0, max(100.0, float(left.max())))
        ax.set_xlabel("share of the budget (%)")
        ax.set_title(_task_title(runs.runs, task))
        ax.grid(axis="y", visible=False)
    handles = [Rectangle((0, 0), 1, 1, color=colors[c]) for c in CATEGORIES]
    fig.tight_layout(rect=(0, 0.12 if len(arms) > 3 else 0.2, 1, 1))
    fig.legend(handles, CATEGORIES, loc="lower center", ncol=len(CATEGORIES), frameon=False, bbox_to_anchor=(0.5, 0))
    return fig


# How a trial ended (TrialStatus values), in the order of the legend, with colours unlike a method's.
_ENDINGS = {
    "complete": ("epoch cap", (0.15, 0.15, 0.15, 1.0)),
    "early_stopped": ("patience", _CIVIDIS(0.55)),
    "pruned": ("pruned", (0.80, 0.40, 0.00, 1.0)),
    "failed": ("failed", (0.80, 0.10, 0.10, 1.0)),
    "out_of_budget": ("deadline", (0.65, 0.65, 0.65, 1.0)),
}


def _epoch_cap(task: str, preset: str) -> int | None:
    """The preset's epoch cap when the task is registered here, else None."""
    try:
        presets = get_task(task).presets
    except RegistryError:
        return None
    return presets[preset].epochs if preset in presets else None


def plot_epochs_per_trial(runs: Runs, validation_arms: Collection[str] = ()) -> Figure | None:
    """Where each black-box arm spent its budget: a histogram per arm (a row) of the epochs its trials
    trained, over all seeds, as the share of the arm's trials (the tallest possible bar, 100 %, fills
    the row; the label counts the trials), stacked by how the trials ended; the epoch cap dashed; a
    panel per task. None when no arm has trials (only ``validation_arms``)."""
    trials = runs.trials[~runs.trials["arm"].isin(set(validation_arms))]
    if trials.empty:
        return None
    tasks = sorted(trials["task"].unique())
    arms = runs.ordered(trials["arm"])
    height = 1.1 + 0.45 * len(arms)
    fig, axes = plt.subplots(1, len(tasks), figsize=(FULL_WIDTH_IN, height), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        t = trials[trials["task"] == task]
        present = [a for a in arms if a in set(t["arm"])]
        width = max(0.8, float(t["epochs"].max()) / 120)  # a bar stays visible on a 300-epoch axis
        for row, arm in enumerate(present):
            base = len(present) - 1 - row  # first arm on top
            a = t[t["arm"] == arm]
            share = a.groupby(["epochs", "status"]).size() / len(a)
            bottom = pd.Series(0.0, index=sorted(a["epochs"].unique()))
            for status, (_, colour) in _ENDINGS.items():
                if status not in share.index.get_level_values("status"):
                    continue
                part = share.xs(status, level="status").reindex(bottom.index, fill_value=0.0)
                ax.bar(part.index, 0.85 * part, width=width, bottom=base + 0.85 * bottom, color=colour, lw=0)
                bottom += part
            ax.axhline(base, color="0.8", lw=0.6, zorder=0)
        for preset in sorted(set(runs.runs.loc[runs.runs["task"] == task, "preset"])):
            cap = _epoch_cap(task, preset)
            if cap is not None:
                ax.axvline(cap, color="0.4", lw=0.8, linestyle="--", zorder=0)
        counts = t.groupby("arm").size()
        ax.set_yticks(
            [len(present) - 1 - i + 0.4 for i in range(len(present))], [f"{a} ({counts[a]})" for a in present]
        )
        ax.set_ylim(-0.1, len(present))
        ax.set_xlim(left=-0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epochs trained per trial")
        ax.set_title(_task_title(runs.runs, task))
        ax.grid(axis="y", visible=False)
    shown = [s for s in _ENDINGS if (trials["status"] == s).any()]
    handles = [Rectangle((0, 0), 1, 1, color=_ENDINGS[s][1]) for s in shown]
    fig.tight_layout(rect=(0, 0.1 if len(arms) > 3 else 0.16, 1, 1))
    fig.legend(
        handles,
        [_ENDINGS[s][0] for s in shown],
        loc="lower center",
        ncol=len(shown),
        frameon=False,
        bbox_to_anchor=(0.5, 0),
    )
    return fig


def plot_schedules(runs: Runs, task: str) -> Figure | None:
    """The logged hyperparameter values of ``task``'s gray-box runs against steps; None if there are none.

    One panel per hyperparameter (its σ entries are left out), with the hyperparameter's range as the
    y-axis when the task is registered. One colour per arm (one line per seed, in that arm's colour and
    a line style per seed); with several arms (the ``schedule`` suite's starting values) each arm is a
    starting point. A run that logged a lineage (PBT: its final member's schedule, ``lineage/member``)
    gets a cross at each step where the weights came from another member (an exploit on its line).
    """
    # Only the schedules themselves: not sigma/<name>, nor PBT's member<j>/... and lineage/... records.
    s = runs.schedules[(runs.schedules["task"] == task) & ~runs.schedules["name"].str.contains("/", regex=False)]
    if s.empty:
        return None
    names = list(dict.fromkeys(s["name"]))
    arms = runs.ordered(s["arm"])
    lineage = runs.schedules[(runs.schedules["task"] == task) & (runs.schedules["name"] == "lineage/member")]
    styles = arm_styles(runs.arms)
    try:
        space = get_task(task).space
    except RegistryError:
        space = None
    ncols = min(4, len(names))
    nrows = math.ceil(len(names) / ncols)
    # One hyperparameter (the schedule suite) gets a panel of its own shape, not a flat strip.
    size = (FULL_WIDTH_IN, 1.55 * nrows + 0.6) if len(names) > 1 else (FULL_WIDTH_IN * 0.6, 3.0)
    fig, axes = plt.subplots(nrows, ncols, figsize=size, squeeze=False, sharex=True)
    seed_styles = ("-", "--", ":", "-.")
    seeds = sorted(s["seed"].unique())
    for ax, name in zip(axes.flat, names, strict=False):
        for arm in arms:
            for k, seed in enumerate(seeds):
                line = s[(s["name"] == name) & (s["arm"] == arm) & (s["seed"] == seed)].sort_values("step")
                if not line.empty:
                    ls = seed_styles[k % len(seed_styles)] if len(arms) == 1 else styles[arm].linestyle
                    ax.plot(line["step"], line["value"], color=styles[arm].color, linestyle=ls, lw=1.0)
                    _mark_exploits(ax, line, lineage[(lineage["arm"] == arm) & (lineage["seed"] == seed)], styles[arm])
        ax.set_title(name)
        if space is not None and name in space:
            dist = space[name]
            low, high = float(dist.low), float(dist.high)
            if dist.log:
                ax.set_yscale("log")
                ax.set_ylim(low, high)
            else:
                pad = 0.04 * (high - low)
                ax.set_ylim(low - pad, high + 1 + pad if isinstance(dist, Int) else high + pad)  # Ints reach high+1
    for ax in axes.flat[len(names) :]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("training step")
    fig.suptitle(f"hyperparameter schedules: {_task_title(runs.runs, task)}", fontsize=10)
    if len(arms) == 1:
        handles = [
            Line2D(
                [],
                [],
                color=styles[arms[0]].color,
                linestyle=cast(Any, seed_styles[k % len(seed_styles)]),
                label=f"seed {seed}",
            )
            for k, seed in enumerate(seeds)
        ]
        fig.tight_layout(rect=(0, 0.09, 1, 1))
        fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False, title=arms[0])
    else:
        fig.tight_layout(rect=(0, 0.08 if len(names) > 1 else 0.12, 1, 1))
        _legend_below(fig, styles, arms)
    return fig


def _mark_exploits(ax: Axes, line: pd.DataFrame, lineage: pd.DataFrame, style: ArmStyle) -> None:
    """Crosses on ``line`` where the member that trained the weights changes (PBT's exploits)."""
    if lineage.empty:
        return
    members = lineage.sort_values("step")
    changed = members[members["value"].ne(members["value"].shift()) & (members.index != members.index[0])]
    at = line[line["step"].isin(changed["step"])]
    if not at.empty:
        ax.plot(at["step"], at["value"], linestyle="none", marker="x", markersize=4, color=style.color)


def write_figures(
    runs: Runs,
    out: Path,
    *,
    times: Sequence[str] = ("linear", "log"),
    validation_arms: Collection[str] = (),
) -> list[Path]:
    """Every figure of the module docstring into ``out`` (PDF and PNG); returns the paths written.

    ``validation_arms``: the arms whose records are periodic validations of one run (left out of
    ``epochs_per_trial``)."""
    _theme()
    out = Path(out)
    paths: list[Path] = []
    for scale in times:
        if scale not in ("linear", "log"):
            raise ValueError(f"time scale must be 'linear' or 'log', got {scale!r}")
        stem = "best_val_vs_log_time" if scale == "log" else "best_val_vs_time"
        paths += _save(plot_best_vs_time(runs, log=scale == "log"), out, stem)
    paths += _save(plot_final_best(runs), out, "final_best")
    paths += _save(plot_budget(runs), out, "budget")
    epochs = plot_epochs_per_trial(runs, validation_arms)
    if epochs is not None:
        paths += _save(epochs, out, "epochs_per_trial")
    for task in sorted(runs.runs["task"].unique()):
        fig = plot_schedules(runs, task)
        if fig is not None:
            paths += _save(fig, out, f"schedule_{task}")
    return paths
