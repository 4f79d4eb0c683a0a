"""``python -m fairalloc`` runs the ``fairalloc`` command."""

import sys

from fairalloc.command import main

sys.exit(main())
