"""``python -m bench``: run every ``bench/bench_*.py`` module's ``main()`` in name order."""

from __future__ import annotations

import importlib
import pathlib


def run_all() -> None:
    folder = pathlib.Path(__file__).parent
    for path in sorted(folder.glob("bench_*.py")):
        module = importlib.import_module(f"bench.{path.stem}")
        print(f"== {path.stem}", flush=True)
        module.main()


if __name__ == "__main__":
    run_all()
