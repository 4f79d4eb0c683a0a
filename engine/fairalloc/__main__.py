"""``python -m fairalloc`` runs the ``fairalloc`` command."""

import sys

from fairalloc.cli import main

sys.exit(main())
