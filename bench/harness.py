"""What every benchmark in ``bench/`` measures the same way: CPU and wall time, the machine and
its load average, and ratios from interleaved rounds of one run.

Why: the benchmarks run on machines shared with other jobs. Wall time then depends on the share of
the cores a process gets; CPU time (user + system) is far less disturbed, so both are printed, with
the load average that says how busy the machine was. Comparisons (fairalloc against a peer or a
limit) are taken in rounds, each round running every candidate once in a rotated order, so that a
burst of load falls on all candidates alike; a ratio is the median of the per-round ratios of CPU
time, with its range, never a quotient of figures taken at different times.

Use::

    from bench import harness

    harness.banner()                                   # machine, Python, load average
    runs = harness.interleave({"ours": f, "peer": g}, rounds=5)
    print(harness.report(runs, baseline="ours", count=100_000, unit="evals"))
    harness.closing()                                  # load average at the end
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Timing:
    """One measured run: wall seconds (``perf_counter``) and CPU seconds (user + system)."""

    wall: float
    cpu: float


def timed(action: Callable[[], T]) -> tuple[T, Timing]:
    """Run ``action`` once in this process; its result and its wall and CPU time."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = action()
    return result, Timing(time.perf_counter() - wall, time.process_time() - cpu)


def timed_process(argv: Sequence[str], **options: Any) -> Timing:
    """Run one child process to completion (``check=True``); its wall time and its CPU time.

    The CPU time is the child's user + system time (the difference of ``RUSAGE_CHILDREN``), so
    it counts the child and any children it waited for, not this process. ``options`` go to
    :func:`subprocess.run` (for example ``stdout=subprocess.DEVNULL``).
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(list(argv), check=True, **options)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return Timing(wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)


def python(*args: str) -> list[str]:
    """The command line of a fresh interpreter like this one (``python(-m, fairalloc, ...)``)."""
    return [sys.executable, *args]


def median(timings: Sequence[Timing]) -> Timing:
    """The median wall time and the median CPU time (each taken on its own)."""
    return Timing(statistics.median(t.wall for t in timings), statistics.median(t.cpu for t in timings))


def repeat(action: Callable[[], object], times: int) -> list[Timing]:
    """``times`` runs of ``action``, one after the other."""
    return [timed(action)[1] for _ in range(times)]


@dataclass
class Rounds:
    """The runs of :func:`interleave`: per candidate, one timing and one result per round."""

    timings: dict[str, list[Timing]] = field(default_factory=dict)
    results: dict[str, list[object]] = field(default_factory=dict)

    def ratio(self, name: str, baseline: str) -> tuple[float, float, float]:
        """CPU time of ``name`` over that of ``baseline`` in the same round: median, min, max."""
        each = [a.cpu / max(b.cpu, 1e-9) for a, b in zip(self.timings[name], self.timings[baseline])]
        return statistics.median(each), min(each), max(each)


def interleave(candidates: Mapping[str, Callable[[], object]], rounds: int, warm: bool = True) -> Rounds:
    """Run every candidate once per round for ``rounds`` rounds, the order rotated each round.

    With ``warm``, each candidate is run once untimed first (imports, caches, the first pass over
    its data), so that no round pays for what only the first run does; a caller whose candidates
    are slow and already warmed passes ``warm=False``.
    """
    names = list(candidates)
    for name in names if warm else ():
        candidates[name]()
    runs = Rounds({name: [] for name in names}, {name: [] for name in names})
    for number in range(rounds):
        shift = number % len(names)
        for name in names[shift:] + names[:shift]:
            result, timing = timed(candidates[name])
            runs.timings[name].append(timing)
            runs.results[name].append(result)
    return runs


def report(runs: Rounds, baseline: str, count: int | None = None, unit: str = "") -> str:
    """A table of median wall and CPU time per candidate, ``count`` ``unit`` per CPU second when
    ``count`` is given, and the CPU-time ratio to ``baseline`` with its range over the rounds."""
    width = max(len(name) for name in runs.timings)
    rate = f"{unit} per CPU s" if count is not None else ""
    lines = [f"{'':<{width}}  {'wall (median)':>14}  {'CPU (median)':>13}  {rate:>18}  {'CPU ratio (range)':>22}"]
    for name, timings in runs.timings.items():
        middle = median(timings)
        per = f"{count / max(middle.cpu, 1e-9):,.0f}" if count is not None else ""
        ratio, low, high = runs.ratio(name, baseline)
        lines.append(f"{name:<{width}}  {_seconds(middle.wall):>14}  {_seconds(middle.cpu):>13}  {per:>18}  "
                     f"{f'{ratio:.3g}x ({low:.3g}-{high:.3g})':>22}")
    lines.append(f"CPU ratio: CPU time over that of {baseline!r} in the same round, median and range over "
                 f"{len(runs.timings[baseline])} interleaved rounds")
    return "\n".join(lines)


def _seconds(value: float) -> str:
    if value < 1e-3:
        return f"{value * 1e6:.1f} us"
    if value < 1:
        return f"{value * 1e3:.2f} ms"
    return f"{value:.3f} s"


def load() -> str:
    """The 1, 5 and 15-minute load averages and the number of cores."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} (1/5/15 min) on {os.cpu_count()} cores"


def machine() -> str:
    """The processor, cores, memory, operating system and Python this run measured on."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            model = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{model}, {os.cpu_count()} cores, {memory:.0f} GiB, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


def banner() -> None:
    """Print the machine and the load average at the start of a benchmark."""
    print(f"machine: {machine()}")
    print(f"at start: {load()}", flush=True)


def closing() -> None:
    """Print the load average at the end of a benchmark."""
    print(f"at end: {load()}", flush=True)
