"""The report's charts, drawn by matplotlib's SVG backend with deterministic output.

Why matplotlib rather than Vega-Lite: the report must be one self-contained file that opens
offline and is byte-identical for the same input. Vega-Lite renders in the browser with a
JavaScript runtime (which would have to be inlined, hundreds of kilobytes, and executed) or, for a
static SVG, through vl-convert's embedded JavaScript engine — another large runtime to ship. The
SVG backend of matplotlib writes plain SVG from Python with no runtime at all, and is
deterministic once three things are fixed: ``svg.hashsalt`` (the ids of clip paths and glyphs),
``svg.fonttype = "none"`` (text stays text, no embedded glyph outlines that vary by installed
font) and the ``Date`` metadata (omitted). Each chart gets its own salt so that ids do not clash
when several charts sit in one HTML page.

Every function returns one ``<svg>`` element as text (the XML prologue and the RDF metadata
block stripped).
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from matplotlib import dates as mdates
from matplotlib import rc_context
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]
FAVOURED, OTHERS, BAND, GREY = "#c0392b", "#2c7fb8", "#bdc3c7", "#7f8c8d"
WIDTH = 7.5  # inches at 96 dpi: 720 px, the report's text width
#: Accounts shown in the rotation chart (the ones furthest above their expected leads).
ROTATION_SHOWN = 30


def _rc(name: str) -> dict[Any, Any]:
    return {
        "svg.hashsalt": f"fairalloc-{name}",
        "svg.fonttype": "none",
        "font.family": "DejaVu Sans",
        "font.size": 10,
        "axes.titlesize": 11,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.color": "#e5e5e5",
        "legend.frameon": False,
    }


def _render(figure: Figure, name: str) -> str:
    buffer = io.StringIO()
    FigureCanvasSVG(figure)
    figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None},
                   bbox_inches="tight")
    text = buffer.getvalue()
    text = text[text.index("<svg"):]
    # The RDF metadata block names only the image type; inline in a page it is noise.
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, count=1, flags=re.DOTALL)
    # Element ids (figure_1, patch_1, ...) restart in every chart: prefix them with the chart's
    # name, and the references to them, so that ids are unique within the report.
    text = re.sub(r'id="([^"]+)"', rf'id="{name}-\1"', text)
    return re.sub(r'(url\(#|href="#)([^")]+)', rf"\g<1>{name}-\2", text)


def _empty(name: str, title: str, why: str) -> str:
    with rc_context(_rc(name)):
        figure = Figure(figsize=(WIDTH, 1.2))
        axes = figure.add_subplot()
        axes.set_axis_off()
        axes.set_title(title, loc="left")
        axes.text(0.0, 0.3, why, transform=axes.transAxes, color=GREY)
        return _render(figure, name)


@dataclass(frozen=True, slots=True)
class Histogram:
    """What a histogram chart draws: shared bin edges, each series' count per bin (values
    outside the edges counted in the first or last bin) and its number of values — a few
    hundred numbers, however many rows the series have."""

    edges: F64
    counts: dict[str, I64]
    sizes: dict[str, int]

    @classmethod
    def of(cls, series: dict[str, F64], edges: F64) -> Histogram:
        counts = {name: np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)[0]
                  for name, values in series.items()}
        return cls(edges, counts, {name: int(values.size) for name, values in series.items()})

    def size(self, name: str) -> int:
        """Values in one series (zero for a series that is not there)."""
        return self.sizes.get(name, 0)

    def draw(self, axes: Any, name: str, share: bool, **style: Any) -> None:
        """One series as bars (its share of the series per bin when ``share``)."""
        counts = self.counts[name]
        weights = counts / self.sizes[name] if share else counts
        axes.hist(self.edges[:-1], bins=self.edges.tolist(), weights=weights, **style)


def returns_histogram(series: dict[str, F64]) -> Histogram:
    """First-day returns in basis points on 40 bins between the 0.5th and 99.5th percentiles of
    all series together."""
    bps = {name: values * 1e4 for name, values in series.items()}
    pooled = np.concatenate([v for v in bps.values() if v.size] or [np.zeros(1)])
    low, high = np.percentile(pooled, [0.5, 99.5]) if pooled.size > 1 else (-1.0, 1.0)
    return Histogram.of(bps, np.linspace(low, high if high > low else low + 1, 41))


def minutes_histogram(minutes: F64, favoured: Bool, deadline_minutes: float) -> Histogram:
    """Minutes from the close on 60 bins from the 0.5th percentile to the 99.5th (or just past
    the deadline plus grace, when that is later and within a day), favoured and other rows."""
    if minutes.size == 0:
        return Histogram(np.zeros(0), {}, {})
    low, top = np.percentile(minutes, [0.5, 99.5])
    high = float(max(top, min(deadline_minutes, 1440.0) + 10))
    edges = np.linspace(float(low), high if high > low else float(low) + 1, 61)
    return Histogram.of({"others": minutes[~favoured], "favoured": minutes[favoured]}, edges)


def return_histograms(histogram: Histogram, group: str) -> str:
    """First-day returns (bps) of the favoured group and the others, partly filled orders on
    their own panel; shares within each series so that groups of different size compare."""
    fills = ("partly filled", "completely filled")
    with rc_context(_rc("returns")):
        figure = Figure(figsize=(WIDTH, 3.0))
        panels = figure.subplots(1, 2, sharey=True)
        for axes, fill in zip(panels, fills, strict=True):
            for who, colour, label in (("favoured", FAVOURED, group), ("others", OTHERS,
                                                                       "other accounts")):
                size = histogram.size(f"{who}, {fill}")
                if size == 0:
                    continue
                histogram.draw(axes, f"{who}, {fill}", True, color=colour, alpha=0.5,
                               label=f"{label} ({size:,})")
            axes.set_title(f"{fill.capitalize()} orders", loc="left")
            axes.set_xlabel("first-day return (basis points)")
            axes.axvline(0.0, color=GREY, linewidth=0.8)
        panels[0].set_ylabel("share of the group's allocations")
        handles: list[Any] = []
        labels: list[str] = []
        for axes in panels:
            for h, lab in zip(*axes.get_legend_handles_labels(), strict=True):
                if lab.split(" (")[0] not in [x.split(" (")[0] for x in labels]:
                    handles.append(h)
                    labels.append(lab.split(" (")[0])
        figure.legend(handles, labels, loc="lower center", ncols=2, bbox_to_anchor=(0.5, 1.0))
        return _render(figure, "returns")


def cumulative_advantage(days: Sequence[dt.date], observed: F64, low: F64, high: F64,
                         draws: int, group: str) -> str:
    """The group's cumulative first-day gain beyond its pro-rata share on partly filled orders,
    against the band that 99 % of within-order re-allocations stay inside."""
    title = "Cumulative first-day gain beyond the pro-rata share, partly filled orders"
    if len(days) == 0:
        return _empty("advantage", title, "no orders to draw")
    with rc_context(_rc("advantage")):
        figure = Figure(figsize=(WIDTH, 3.2))
        axes = figure.add_subplot()
        x = np.array(days, dtype="datetime64[D]")
        if low.size:
            axes.fill_between(x, low, high, color=BAND, alpha=0.6, linewidth=0,
                              label=f"99 % of {draws:,} random within-order re-allocations")
        axes.plot(x, observed, color=FAVOURED, linewidth=1.8, label=group)
        axes.axhline(0.0, color=GREY, linewidth=0.8)
        axes.set_title(title, loc="left")
        axes.set_ylabel("≈ money at the close")
        locator = mdates.AutoDateLocator()  # type: ignore[no-untyped-call]
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
        axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncols=2)
        return _render(figure, "advantage")


def intent_scatter(fair: F64, allocated: F64, favoured: Bool, partial: Bool, group: str) -> str:
    """Allocated against fair (pro-rata) quantity; points off the diagonal departed from it."""
    title = "Allocated against the pro-rata share of the pre-trade statement"
    if fair.size == 0:
        return _empty("intent", title, "the history has no pre-trade intent")
    with rc_context(_rc("intent")):
        figure = Figure(figsize=(WIDTH, 4.0))
        axes = figure.add_subplot()
        top = float(max(fair.max(), allocated.max(), 1.0)) * 1.05
        axes.plot([0, top], [0, top], color=GREY, linestyle="--", linewidth=0.8,
                  label="allocated = pro-rata share")
        for mask, colour, label in ((~favoured, OTHERS, "other accounts"),
                                    (favoured, FAVOURED, group)):
            for fill, marker in ((partial, "o"), (~partial, "x")):
                rows = mask & fill
                if rows.any():
                    kind = "partly filled" if marker == "o" else "completely filled"
                    axes.scatter(fair[rows], allocated[rows], s=9, marker=marker, color=colour,
                                 alpha=0.6, linewidths=0.8, label=f"{label}, {kind}")
        axes.set_xlim(0, top)
        axes.set_ylim(0, top)
        axes.set_title(title, loc="left")
        axes.set_xlabel("pro-rata share (shares)")
        axes.set_ylabel("allocated (shares)")
        axes.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0))
        return _render(figure, "intent")


def timing_histogram(histogram: Histogram, deadline_minutes: float, group: str) -> str:
    """When allocations were recorded, in minutes from the close, with deadline plus grace."""
    title = "When allocations were recorded, minutes from the close"
    if histogram.edges.size == 0:
        return _empty("timing", title, "no allocation records")
    edges = histogram.edges
    with rc_context(_rc("timing")):
        figure = Figure(figsize=(WIDTH, 3.0))
        axes = figure.add_subplot()
        for name, colour, label in (("others", OTHERS, "other accounts"),
                                    ("favoured", FAVOURED, group)):
            size = histogram.size(name)
            if size:
                histogram.draw(axes, name, False, color=colour, alpha=0.55,
                               label=f"{label} ({size:,})")
        axes.axvline(0.0, color=GREY, linewidth=1.0, label="the close")
        if deadline_minutes <= edges[-1]:
            axes.axvline(deadline_minutes, color="#000000", linestyle="--", linewidth=1.0,
                         label="deadline + grace")
        axes.set_yscale("symlog", linthresh=1.0)
        axes.set_title(title, loc="left")
        axes.set_xlabel("minutes after the close (negative: before)")
        axes.set_ylabel("allocation records")
        axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncols=2)
        return _render(figure, "timing")


def rotation_bars(rows: list[dict[str, object]]) -> tuple[str, int]:
    """Leads against equal-turn expectation for the accounts furthest above it; returns the
    chart and how many accounts it shows."""
    title = "Leads in partly filled orders against equal turns"
    if not rows:
        return _empty("rotation", title, "no led orders"), 0
    ranked = sorted(rows, key=lambda r: (-(float(str(r["leads"])) - float(str(r["expected_leads"]))),
                                         str(r["account"])))[:ROTATION_SHOWN]
    names = [str(r["account"]) for r in ranked][::-1]
    leads = np.array([float(str(r["leads"])) for r in ranked])[::-1]
    expected = np.array([float(str(r["expected_leads"])) for r in ranked])[::-1]
    with rc_context(_rc("rotation")):
        figure = Figure(figsize=(WIDTH, 1.0 + 0.28 * len(names)))
        axes = figure.add_subplot()
        y = np.arange(len(names))
        axes.barh(y + 0.2, leads, height=0.4, color=FAVOURED, label="leads")
        axes.barh(y - 0.2, expected, height=0.4, color=GREY, label="expected with equal turns")
        axes.set_yticks(y, names)
        axes.set_title(title, loc="left")
        axes.set_xlabel("partly filled orders led")
        axes.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0))
        return _render(figure, "rotation"), len(names)


def power_curve(rates: Sequence[float], lines: dict[str, Sequence[float]], alpha: float) -> str:
    """Detection rate against the steering rate, one line per number of partly filled orders."""
    with rc_context(_rc("power")):
        figure = Figure(figsize=(WIDTH, 3.6))
        axes = figure.add_subplot()
        for label, values in lines.items():
            axes.plot(rates, values, marker="o", linewidth=1.6, label=label)
        axes.set_ylim(-0.02, 1.02)
        axes.set_title(f"Share of simulated firm-years flagged at p < {alpha:g} "
                       "(within-order test, partly filled orders)", loc="left")
        axes.set_xlabel("share of partly filled orders the PM steers")
        axes.set_ylabel("detection rate")
        axes.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0))
        return _render(figure, "power")
