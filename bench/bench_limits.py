"""fairalloc beside the practical limits of its work, measured side by side in one run.

Each comparison runs fairalloc and its limit in interleaved rounds (one of each per round, in
turn), timing CPU (this process's, or a child's from ``getrusage``) and wall time; the ratio is
the median of the rounds' CPU ratios, so that other jobs on a shared machine, which change from
one moment to the next, weigh on both sides alike. The limits:

- **numpy**: largest remainder over int64 arrays with a partition for the remainders
  (``np.argpartition``), no tie-break, no rules: the least any exact pro-rata split costs;
- **json + numpy + json**: the same between reading the trade file with ``json`` and writing a
  document of the same four fields per account with ``json``;
- **pure Python**: ``json``, an integer largest remainder in plain Python, ``json``, for blocks of
  20 accounts;
- **bare interpreter**: ``python -c "import json, decimal"``, against a whole ``fairalloc allocate``
  process on the worked example of the OMS contract: the ``fairalloc`` command of this
  environment as a user runs it (its console script, else ``python -m fairalloc``), on the
  package as it is installed here; the line says how (an editable install of a checkout is a
  path entry, without an import hook, and costs what a regular install does).

Last, the peak resident memory of a ``fairalloc allocate`` process over 1,000,000 accounts.
``FAIRALLOC_BENCH_ROUNDS=N`` sets the rounds (default 7).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench import harness
from bench.bench_allocate import BIG_POLICY, trade_document
from fairalloc import allocate, load_trade, policy_from_text
from fairalloc.cli._io import dump_allocation

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "tests" / "contract" / "examples" / "seed-worked-example.trade.json"
ROUNDS = int(os.environ.get("FAIRALLOC_BENCH_ROUNDS", "7"))


def largest_remainder_numpy(intended: np.ndarray[Any, Any], filled: int, lot: int) -> np.ndarray[Any, Any]:
    """The limit: lots by largest remainder on int64, the remainders cut by a partition."""
    lots = filled // lot
    quota = intended * lots
    total = int(intended.sum())
    base = quota // total
    remainder = quota - base * total
    left = lots - int(base.sum())
    if left:
        base[np.argpartition(-remainder, left)[:left]] += 1
    result: np.ndarray[Any, Any] = base * lot
    return result


def largest_remainder_python(intended: list[int], filled: int, lot: int) -> list[int]:
    """The small-block limit: the same in plain Python integers."""
    lots = filled // lot
    total = sum(intended)
    base = [q * lots // total for q in intended]
    order = sorted(range(len(intended)), key=lambda i: -(intended[i] * lots % total))
    for i in order[: lots - sum(base)]:
        base[i] += 1
    return [b * lot for b in base]


def filled_of(document: dict[str, Any]) -> int:
    return sum(fill["quantity"] for fill in document["fills"])


def baseline_document(document: dict[str, Any], allocated: list[int]) -> str:
    """A document of the same four fields per account as fairalloc's, written by ``json``'s C
    encoder (no indent: an indent makes ``json`` use its pure-Python encoder)."""
    accounts = document["statement"]["accounts"]
    return json.dumps({"order_id": document["order"]["id"], "allocations": [
        {"account": a["account"], "quantity": q, "average_price": "100.0125" if q else None, "intended": a["intended"]}
        for a, q in zip(accounts, allocated)]}, ensure_ascii=False)


def baseline_texts(paths: list[Path]) -> list[str]:
    """The pure-Python limit for small blocks: each file read by ``json``, allocated by
    :func:`largest_remainder_python` in lots of 100, written by :func:`baseline_document`."""
    out = []
    for path in paths:
        doc = json.loads(path.read_text())
        weights = [a["intended"] for a in doc["statement"]["accounts"]]
        out.append(baseline_document(doc, largest_remainder_python(weights, filled_of(doc), 100)))
    return out


def compare(name: str, ours: Callable[[], object], limit: Callable[[], object], bar: float) -> None:
    """Interleaved rounds of ``ours`` and ``limit`` in this process, and the bar on their CPU ratio."""
    runs = harness.interleave({"fairalloc": ours, "limit": limit}, rounds=ROUNDS)
    verdict(name, runs, bar)


def compare_processes(name: str, ours: list[str], limit: list[str], bar: float) -> None:
    """The same for two whole processes, their CPU time taken from ``getrusage`` of children.

    Each runs once first with bytecode writing allowed, so that both start from cached bytecode,
    as an installed package does (pip compiles it at install)."""
    writing = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    for command in (ours, limit):
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=writing)
    runs = harness.Rounds({"fairalloc": [], "limit": []}, {"fairalloc": [], "limit": []})
    for number in range(ROUNDS):
        order = [("fairalloc", ours), ("limit", limit)]
        for label, command in order[number % 2:] + order[:number % 2]:
            runs.timings[label].append(harness.timed_process(command, stdout=subprocess.DEVNULL))
    verdict(name, runs, bar)


def verdict(name: str, runs: harness.Rounds, bar: float) -> None:
    ratio, _, _ = runs.ratio("fairalloc", "limit")
    print(f"\n{name}\n{harness.report(runs, baseline='limit')}\n"
          f"bar: fairalloc <= {bar:g}x the limit: {'met' if ratio <= bar else 'NOT met'} ({ratio:.3g}x)", flush=True)


def main() -> None:
    harness.banner()
    policy = policy_from_text(BIG_POLICY)
    document = trade_document(100_000)
    intended = np.asarray([a["intended"] for a in document["statement"]["accounts"]], dtype=np.int64)
    filled = filled_of(document)
    allocate(policy, load_trade(document))  # imports and the rules' columnar forms, once per process
    # a freshly loaded trade for every run (the warm-up run included): nothing is reused between runs
    trades = iter([load_trade(document) for _ in range(ROUNDS + 1)])
    compare("100,000-account block, trade loaded: allocate() vs numpy largest remainder",
            lambda: allocate(policy, next(trades)), lambda: largest_remainder_numpy(intended, filled, 100), 10)

    with tempfile.TemporaryDirectory() as folder:
        big = Path(folder) / "big.json"
        big.write_text(json.dumps(document))

        def ours_big() -> object:
            return dump_allocation(allocate(policy, load_trade(big)))

        def limit_big() -> object:
            doc = json.loads(big.read_text())
            weights = np.asarray([a["intended"] for a in doc["statement"]["accounts"]], dtype=np.int64)
            return baseline_document(doc, largest_remainder_numpy(weights, filled_of(doc), 100).tolist())

        compare("the same from the JSON file to the document's text vs json + numpy + json", ours_big, limit_big, 3)

        small = []
        for seed in range(2_000):
            path = Path(folder) / f"small-{seed}.json"
            path.write_text(json.dumps(trade_document(20, seed)))
            small.append(path)

        def ours_small() -> object:
            return [dump_allocation(allocate(policy, load_trade(path))) for path in small]

        def limit_small() -> object:
            return baseline_texts(small)

        compare("2,000 blocks of 20 accounts, files to document text vs json + pure-Python largest remainder + json",
                ours_small, limit_small, 3)

        cli = [*fairalloc_command(), "allocate", "--policy", str(ROOT / "policies" / "us-equity-pro-rata.yaml"),
               "--trade", str(EXAMPLE)]
        compare_processes(f"`fairalloc allocate` on the worked example, whole process ({installed_as()}), "
                          "vs python -c 'import json, decimal'", cli, harness.python("-c", "import json, decimal"), 4)
        peak_memory(Path(folder))
    harness.closing()


def fairalloc_command() -> list[str]:
    """The ``fairalloc`` console script of this interpreter's environment, else ``python -m fairalloc``."""
    script = Path(sys.executable).with_name("fairalloc")
    return [str(script)] if script.is_file() else harness.python("-m", "fairalloc")


def installed_as() -> str:
    """How the measured package is installed, and where it is imported from."""
    from importlib import metadata

    import fairalloc

    where = Path(fairalloc.__file__).parent
    try:
        direct = metadata.distribution("fairalloc").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return f"not installed, imported from {where}"
    editable = direct is not None and json.loads(direct).get("dir_info", {}).get("editable", False)
    return f"{'editable' if editable else 'regular'} install, imported from {where}"


def peak_memory(folder: Path) -> None:
    """Peak resident memory of a ``fairalloc allocate`` process over 1,000,000 accounts."""
    million = folder / "million.json"
    accounts = [{"account": f"A{i:07d}", "intended": 100 * (1 + (i * 7919) % 50)} for i in range(1_000_000)]
    total = sum(a["intended"] for a in accounts)
    doc = trade_document(1)
    doc["order"]["quantity"] = total
    doc["statement"]["accounts"] = accounts
    doc["fills"] = [dict(doc["fills"][0], quantity=total * 37 // 100)]
    million.write_text(json.dumps(doc, separators=(",", ":")))
    del accounts, doc
    policy_file = folder / "big.yaml"
    policy_file.write_text(BIG_POLICY)
    command = harness.python(
        "-c", "import resource, sys; from fairalloc.cli import main; status = main(); "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); sys.exit(status)",
        "allocate", "--policy", str(policy_file), "--trade", str(million), "-o", str(folder / "million.out"))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    run = subprocess.run(command, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak = int(run.stderr.split()[-1]) / 2**20  # ru_maxrss is in KiB on Linux
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f"\n`fairalloc allocate`, 1,000,000 accounts ({million.stat().st_size / 2**20:.0f} MiB of JSON): "
          f"peak memory {peak:.2f} GiB, CPU {cpu:.2f} s, wall {wall:.2f} s; "
          f"bar: <= 1 GiB: {'met' if peak <= 1 else 'NOT met'}", flush=True)


if __name__ == "__main__":
    main()
