"""``python -m xjepa_kit …`` (used by ``torchrun -m xjepa_kit``) is the ``xjepa`` command."""

import sys

from xjepa_kit.cli import main

sys.exit(main())
