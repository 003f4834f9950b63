"""Foundation: the values every other layer may use, and that import nothing else of the project.

* :mod:`.space`: search spaces (``Float``, ``Int``, ``SearchSpace``, ``HParamKind``), declared once by a task.
* :mod:`.clock`: the budget, the GPU-synchronised wall clock, the fake clock of the tests, the phase timer.
* :mod:`.seeding`: one master seed per run, split by purpose (``RunSeeds``).
* :mod:`.provenance`: git state, library versions, device, data checksums, and paths and commands
  without the machine's folders (a record names nothing machine-specific beyond device and versions).

May import: the standard library and third-party packages only. Every other subpackage may import it.
"""
