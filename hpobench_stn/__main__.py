"""``python -m hpobench_stn`` is the ``hpobench`` command."""

import sys

from .orchestration.cli import main

sys.exit(main())
