"""Reporting: a results folder in, tables and figures out, as a pipeline of stages.

1. :mod:`.load`: read the runs of a folder into long tables (``Runs``) and fix the order of the arms once;
2. :mod:`.aggregate`: best-so-far curves, bands, budget shares, the per-arm summary; its paired tests,
   Holm's correction and bootstrap intervals come from :mod:`.significance`;
3. :mod:`.tables` and :mod:`.figures`: write the summary (Markdown, CSV, LaTeX) and the figures;
4. :mod:`.pipeline`: ``make_report``, the three stages in one call (``hpobench report``).

Nothing is re-exported here, so that importing one stage (``load`` for the per-run CSV) does not load
matplotlib or scipy.

May import: :mod:`hpobench_stn.foundation` and :mod:`hpobench_stn.harness` (records, the registry for a
task's space and a method's kind). Never orchestration, never a plug-in.
"""
