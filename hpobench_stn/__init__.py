"""hpobench_stn: fair wall-clock benchmarks of hyperparameter optimisation, and Self-Tuning Networks.

The core (this package) defines search spaces, the budget clock, the Task and Method contracts, run
records, the runner and the CLI. Methods and tasks are plug-ins that import the core and register
themselves by name; the core finds them through entry points and never imports one by name.
"""

from .foundation.clock import Budget, BudgetTimer, Clock, FakeClock, WallClock
from .foundation.seeding import RunSeeds
from .foundation.space import Config, Float, HParamKind, Int, SearchSpace, SpaceError
from .harness.batches import Batch, Split, sequential_batches, shuffled_batches
from .harness.method import AskTellMethod, Method, MethodError, NoOptions, ProposalError, RunContext
from .harness.records import FinalRecord, RunMetadata, ScheduleRecord, TrialRecord, TrialStatus
from .harness.registry import (
    RegistryError,
    get_method,
    get_task,
    load_plugin,
    method_names,
    register_method,
    register_task,
    task_names,
)
from .harness.task import EpochMonitor, EpochReport, EvalResult, FitResult, Preset, Task, TaskError
from .harness.training import Stopped, TrainingRun, TrainingState

__all__ = [
    "AskTellMethod",
    "Batch",
    "Budget",
    "BudgetTimer",
    "Clock",
    "Config",
    "EpochMonitor",
    "EpochReport",
    "EvalResult",
    "FakeClock",
    "FinalRecord",
    "FitResult",
    "Float",
    "HParamKind",
    "Int",
    "Method",
    "MethodError",
    "NoOptions",
    "Preset",
    "ProposalError",
    "RegistryError",
    "RunContext",
    "RunMetadata",
    "RunSeeds",
    "ScheduleRecord",
    "SearchSpace",
    "SpaceError",
    "Split",
    "Stopped",
    "Task",
    "TaskError",
    "TrainingRun",
    "TrainingState",
    "TrialRecord",
    "TrialStatus",
    "WallClock",
    "get_method",
    "get_task",
    "load_plugin",
    "method_names",
    "register_method",
    "register_task",
    "sequential_batches",
    "shuffled_batches",
    "task_names",
]
