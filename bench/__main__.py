"""Run the benchmark modules of this package: ``python -m bench [NAME ...]``.

Every ``bench/bench_<name>.py`` module exposes ``main()``. With no arguments all of them run, in
name order; with arguments only ``bench_<NAME>`` for each NAME given.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Sequence
from pathlib import Path


def available() -> list[str]:
    """The benchmark names (``expressions`` for ``bench_expressions.py``), sorted."""
    modules = pkgutil.iter_modules([str(Path(__file__).parent)])
    return sorted(info.name.removeprefix("bench_") for info in modules if info.name.startswith("bench_"))


def main(argv: Sequence[str] | None = None) -> int:
    names = list(sys.argv[1:] if argv is None else argv) or available()
    unknown = sorted(set(names) - set(available()))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available())}", file=sys.stderr)
        return 2
    for name in names:
        print(f"== bench_{name}", flush=True)
        importlib.import_module(f"bench.bench_{name}").main()
        print(flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
