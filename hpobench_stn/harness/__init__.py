"""The harness: the Task and Method contracts, and the machinery of one run.

* :mod:`.task`: the Task contract, presets, clean evaluation and the fixed-config training loop;
* :mod:`.method`: the Method contract, the ask/tell loop, ``RunContext``;
* :mod:`.records`: typed records, ``log.jsonl`` and the atomic ``final.json``;
* :mod:`.registry`: methods and tasks by name, entry points and ``--plugin`` files;
* :mod:`.runner`: one run end to end (clock, provenance, records, the incumbent's test evaluation);
* :mod:`.backends`: the search space in scikit-optimize's and Optuna's terms;
* :mod:`.optuna_study`: the base of the methods that drive an Optuna study (and its pruner) by ask/tell;
* :mod:`.schedule`: a recorded hyperparameter schedule as a step → config function.

The public contracts are re-exported by :mod:`hpobench_stn` itself (``from hpobench_stn import Task``).

May import: :mod:`hpobench_stn.foundation` and :mod:`hpobench_stn.nn` (``Task.build_network`` takes a
layer factory). Never reporting or orchestration, never a plug-in.
"""
