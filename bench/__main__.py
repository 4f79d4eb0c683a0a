"""Run every benchmark module in this package (``bench_*.py``) that defines ``main()``."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import bench


def main() -> int:
    names = sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_"))
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        run = getattr(module, "main", None)
        if callable(run):
            print(f"== {name}", flush=True)
            run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
