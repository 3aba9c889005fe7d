"""``python -m labkit``: the ``labkit`` command (see :mod:`labkit.cli`)."""
import sys

from labkit.cli import main

sys.exit(main())
