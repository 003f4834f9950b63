"""The budget, the clocks, and what the timer charges to which phase."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from hpobench_stn import Budget, BudgetTimer, FakeClock, WallClock


@pytest.mark.parametrize(
    ("seconds", "match"),
    [
        (0, r"positive, finite number of seconds, got 0"),
        (-1.5, r"positive, finite number of seconds, got -1.5"),
        (math.nan, r"positive, finite number of seconds, got nan"),
        (math.inf, r"positive, finite number of seconds, got inf"),
        ("10", r"budget must be a number of seconds, got '10'"),
        (None, r"budget must be a number of seconds, got None"),
        (True, r"budget must be a number of seconds, got True"),
    ],
)
def test_budget_rejects_non_positive_non_finite_and_non_numbers(seconds: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Budget(seconds)


def test_budget_accepts_ints_and_floats() -> None:
    assert Budget(10).seconds == 10
    assert Budget(0.5).seconds == 0.5


def test_fake_clock_moves_only_by_advance_or_tick() -> None:
    clock = FakeClock(start=5.0)
    assert clock.now() == clock.now() == 5.0
    clock.advance(2.5)
    assert clock.now() == 7.5
    ticking = FakeClock(tick=0.25)
    assert [ticking.now() for _ in range(3)] == [0.25, 0.5, 0.75]
    with pytest.raises(ValueError, match=r"cannot go back in time"):
        clock.advance(-1)
    with pytest.raises(ValueError, match=r"tick must be a finite number >= 0"):
        FakeClock(tick=-0.1)
    with pytest.raises(ValueError, match=r"tick must be a finite number >= 0, got nan"):
        FakeClock(tick=float("nan"))  # a NaN tick would make every deadline check false: runs never end


def _timer(budget: float = 10.0) -> tuple[BudgetTimer, FakeClock]:
    clock = FakeClock()
    timer = BudgetTimer(Budget(budget), clock)
    timer.start()
    return timer, clock


def test_time_outside_any_phase_is_charged_to_harness() -> None:
    timer, clock = _timer()
    clock.advance(1.5)
    assert timer.totals() == {"harness": 1.5}
    assert timer.charged() == 1.5


def test_nested_phase_restores_the_outer_phase() -> None:
    timer, clock = _timer()
    with timer.phase("ask"):
        clock.advance(1)
        with timer.phase("train"):
            clock.advance(2)
        clock.advance(4)  # back in "ask"
    clock.advance(8)  # back in "harness"
    assert timer.totals() == {"harness": 8, "ask": 5, "train": 2}


def test_phase_is_restored_when_the_block_raises() -> None:
    timer, clock = _timer()

    def fail_in_training() -> None:
        with timer.phase("train"):
            clock.advance(1)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_in_training()
    clock.advance(3)
    assert timer.totals() == {"harness": 3, "train": 1}


def test_paused_time_is_not_charged() -> None:
    timer, clock = _timer()
    with timer.phase("train"):
        clock.advance(2)
        with timer.paused():
            clock.advance(100)
            with timer.phase("validate"):  # work inside a pause stays uncharged
                clock.advance(50)
        clock.advance(1)
    assert timer.charged() == 3
    totals = timer.totals()
    assert totals["train"] == 3
    assert totals["paused"] == 150
    assert "validate" not in totals


def test_charged_equals_sum_of_non_paused_phases() -> None:
    timer, clock = _timer()
    for phase, seconds in [("ask", 0.3), ("train", 1.7), ("validate", 0.4), ("tell", 0.1)]:
        with timer.phase(phase):
            clock.advance(seconds)
        with timer.paused():
            clock.advance(9.0)
    clock.advance(0.2)
    totals = timer.totals()
    charged = timer.charged()
    assert charged == pytest.approx(2.7)
    assert charged == pytest.approx(sum(v for k, v in totals.items() if k != "paused"))


def test_expired_exactly_at_the_budget() -> None:
    timer, clock = _timer(budget=5.0)
    clock.advance(4.999)
    assert not timer.expired()
    assert timer.remaining() == pytest.approx(0.001)
    clock.advance(0.001)
    assert timer.expired()
    clock.advance(1.0)
    assert timer.expired()
    assert timer.remaining() == pytest.approx(-1.0)


def test_paused_time_does_not_expire_the_budget() -> None:
    timer, clock = _timer(budget=5.0)
    with timer.paused():
        clock.advance(60)
        assert not timer.expired()
    assert not timer.expired()


def test_timer_refuses_misuse() -> None:
    timer = BudgetTimer(Budget(1), FakeClock())
    assert timer.charged() == 0.0
    assert not timer.started
    with pytest.raises(RuntimeError, match=r"before start"), timer.phase("train"):
        pass
    timer.start()
    with pytest.raises(RuntimeError, match=r"called twice"):
        timer.start()
    with pytest.raises(ValueError, match=r"paused\(\)"), timer.phase("paused"):
        pass


def test_wall_clock_synchronises_cuda_before_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a CUDA device queued kernels must finish before the time is read (no GPU needed here)."""
    calls: list[torch.device] = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append(device))
    clock = WallClock("cuda:0")
    t0 = clock.now()
    t1 = clock.now()
    assert calls == [torch.device("cuda:0"), torch.device("cuda:0")]
    assert t1 >= t0


@pytest.mark.parametrize("device", [None, "cpu", torch.device("cpu")])
def test_wall_clock_does_not_synchronise_on_cpu(monkeypatch: pytest.MonkeyPatch, device: Any) -> None:
    calls: list[object] = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append(device))
    clock = WallClock(device)
    assert clock.now() <= clock.now()
    assert calls == []
