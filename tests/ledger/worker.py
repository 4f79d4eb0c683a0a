"""A separate engine process for the concurrency tests: waits for a start signal, then allocates.

Usage: ``python -m tests.ledger.worker LEDGER_URL GO_FILE ORDER_ID...``. It acts for the trader
``tom`` as a token subject vouched for by its own identity (see helpers.who), on a test database.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from fairalloc.ledger import workflow
from fairalloc.ledger.identity import Actor
from fairalloc.ledger.store import Ledger


def main(argv: list[str]) -> int:
    url, go, *orders = argv
    with Ledger(url, test_database=True) as ledger:
        deadline = time.monotonic() + 60
        while not Path(go).exists():
            if time.monotonic() > deadline:
                return 3
            time.sleep(0.005)
        tom = Actor.of("tom", "token", service=ledger.identity().name)
        for order_id in orders:
            workflow.allocate_order(ledger, tom, order_id)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
