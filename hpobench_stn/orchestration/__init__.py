"""Orchestration: many runs, and the command line.

* :mod:`.suite`: suites (TOML files; the built-in ones are in ``suites/``), arms, ``tune``, waves;
* :mod:`.executors`: a suite's runs on a Dask cluster (local, remote scheduler or SLURM);
* :mod:`.cli`: the ``hpobench`` command (``list``, ``run``, ``suite``, ``report``).

May import: every other subpackage of the core. Nothing in the core imports it.
"""
