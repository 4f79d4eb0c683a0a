"""``python -m engine`` runs the ``fairalloc`` command."""

import sys

from engine.cli import main

sys.exit(main())
