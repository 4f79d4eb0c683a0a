"""Forensic review of allocation history: finds cherry-picking and unfair allocation patterns.

Pipeline (one module per stage): :mod:`history` (read and validate the CSV files) →
:mod:`returns` (first-day returns) → :mod:`tests_stats` (within-order re-allocation Monte Carlo,
exact tails from SciPy, Benjamini–Hochberg) used by :mod:`review` for the return tests →
:mod:`intent` → :mod:`timing` → :mod:`rotation` → :mod:`overrides`; then :mod:`findings` (stable
JSON schema and verdict), :mod:`summary` (terminal), :mod:`report_html` with :mod:`charts`
(self-contained HTML, matplotlib SVG). :mod:`simulate` writes synthetic firm-years and
:mod:`power` runs the calibration and power studies.

Facade: :func:`run` (review a history), :func:`simulate` (write a firm-year) and :func:`demo`.
"""

from __future__ import annotations

import pathlib

from rich.console import Console

from fairalloc.forensics.review import Review, ReviewConfig, run
from fairalloc.forensics.simulate import (
    PERFORMANCE_FAVOURED,
    CherryPicker,
    FirmSpec,
    SimulatedFirm,
    simulate,
)
from fairalloc.forensics.summary import print_summary
from fairalloc.forensics.write import write_outputs

__all__ = [
    "CherryPicker",
    "FirmSpec",
    "Review",
    "ReviewConfig",
    "SimulatedFirm",
    "demo",
    "run",
    "simulate",
]


#: Monte Carlo draws of the demo review: p-values resolved down to 5 × 10⁻⁵, in seconds.
DEMO_DRAWS = 20_000


def demo(out_dir: pathlib.Path) -> pathlib.Path:
    """Simulate a demo firm-year with a cherry-picker, review it, print the summary.

    Writes the history CSVs under ``out_dir / "history"`` and ``findings.json`` and
    ``report.html`` into ``out_dir``; returns the HTML report's path.
    """
    firm = simulate(
        FirmSpec(seed=7, accounts=12, orders=250, cherry=CherryPicker(rate=0.8)),
        out_dir / "history",
    )
    result = run(
        ReviewConfig(
            allocations=firm.allocations,
            prices=firm.prices,
            overrides=firm.overrides,
            favoured=PERFORMANCE_FAVOURED,
            seed=1,
            draws=DEMO_DRAWS,
        )
    )
    _, html_path = write_outputs(result, out_dir)
    console = Console()
    print_summary(result, console)
    console.print(f"report: {html_path}")
    return html_path
