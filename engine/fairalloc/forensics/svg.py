"""Small inline SVG charts: no plotting library, no scripts, no fonts to fetch.

Every function returns one ``<svg>`` element as text. Coordinates are printed with one decimal
so the same data always gives the same text.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
WIDTH, HEIGHT = 640, 300
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 28, 48
COLOURS = ("#c0392b", "#2c7fb8", "#7f8c8d", "#27ae60", "#8e44ad", "#d35400")


def _f(value: float) -> str:
    return f"{value:.1f}"


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    if not np.isfinite(low) or not np.isfinite(high) or high <= low:
        return [low]
    raw = (high - low) / count
    magnitude = 10 ** np.floor(np.log10(raw))
    step = min((m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw), default=raw)
    start = np.ceil(low / step) * step
    return [float(v) for v in np.arange(start, high + step * 1e-9, step)]


def _label(value: float) -> str:
    return f"{value:.4g}"


class _Frame:
    """Maps data coordinates into the plotting area and draws axes."""

    def __init__(self, x: tuple[float, float], y: tuple[float, float]) -> None:
        self.x0, self.x1 = x if x[1] > x[0] else (x[0] - 1, x[0] + 1)
        self.y0, self.y1 = y if y[1] > y[0] else (y[0] - 1, y[0] + 1)

    def px(self, x: float) -> float:
        return LEFT + (x - self.x0) / (self.x1 - self.x0) * (WIDTH - LEFT - RIGHT)

    def py(self, y: float) -> float:
        return HEIGHT - BOTTOM - (y - self.y0) / (self.y1 - self.y0) * (HEIGHT - TOP - BOTTOM)

    def axes(self, title: str, xlabel: str, ylabel: str, xticks: bool = True) -> list[str]:
        parts = [
            f'<text x="{LEFT}" y="18" font-size="13" font-weight="bold">{html.escape(title)}</text>',
            f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}" y2="{HEIGHT - BOTTOM}" '
            'stroke="#333"/>',
            f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}" stroke="#333"/>',
            f'<text x="{(LEFT + WIDTH - RIGHT) / 2:.1f}" y="{HEIGHT - 8}" font-size="12" '
            f'text-anchor="middle">{html.escape(xlabel)}</text>',
            f'<text x="14" y="{(TOP + HEIGHT - BOTTOM) / 2:.1f}" font-size="12" '
            f'text-anchor="middle" transform="rotate(-90 14 {(TOP + HEIGHT - BOTTOM) / 2:.1f})">'
            f"{html.escape(ylabel)}</text>",
        ]
        for tick in _ticks(self.y0, self.y1):
            y = self.py(tick)
            parts.append(f'<line x1="{LEFT - 4}" y1="{_f(y)}" x2="{LEFT}" y2="{_f(y)}" stroke="#333"/>')
            parts.append(
                f'<text x="{LEFT - 6}" y="{_f(y + 4)}" font-size="10" text-anchor="end">'
                f"{_label(tick)}</text>"
            )
        if xticks:
            for tick in _ticks(self.x0, self.x1):
                x = self.px(tick)
                parts.append(
                    f'<line x1="{_f(x)}" y1="{HEIGHT - BOTTOM}" x2="{_f(x)}" '
                    f'y2="{HEIGHT - BOTTOM + 4}" stroke="#333"/>'
                )
                parts.append(
                    f'<text x="{_f(x)}" y="{HEIGHT - BOTTOM + 16}" font-size="10" '
                    f'text-anchor="middle">{_label(tick)}</text>'
                )
        return parts


def _legend(
    labels: Sequence[str], colours: Sequence[str] = COLOURS, bottom: bool = False
) -> list[str]:
    """Legend in the top-right (or bottom-right) corner; labels end at the swatch so long ones
    grow leftwards."""
    parts = []
    x = WIDTH - RIGHT - 12
    first = HEIGHT - BOTTOM - 8 - 16 * len(labels) if bottom else TOP + 4
    for i, label in enumerate(labels):
        y = first + 16 * i
        parts.append(
            f'<rect x="{x}" y="{y}" width="10" height="10" fill="{colours[i % len(colours)]}"/>'
        )
        parts.append(
            f'<text x="{x - 4}" y="{y + 9}" font-size="11" text-anchor="end">'
            f"{html.escape(label)}</text>"
        )
    return parts


def _svg(parts: list[str]) -> str:
    body = "\n".join(parts)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif">\n{body}\n</svg>'
    )


def histogram(
    title: str, series: Sequence[tuple[str, F64]], xlabel: str, bins: int = 40
) -> str:
    """Overlaid histograms as shares of each series (so groups of different size compare)."""
    values = [v[np.isfinite(v)] for _, v in series]
    pooled = np.concatenate(values) if values else np.zeros(0)
    if pooled.size == 0:
        return _svg(_Frame((0, 1), (0, 1)).axes(title + " (no data)", xlabel, "share"))
    low, high = np.percentile(pooled, [0.5, 99.5])
    edges = np.linspace(low, high if high > low else low + 1, bins + 1)
    shares = [
        np.histogram(np.clip(v, edges[0], edges[-1]), bins=edges)[0] / max(v.size, 1)
        for v in values
    ]
    top = max(float(s.max()) for s in shares) if shares else 1.0
    frame = _Frame((float(edges[0]), float(edges[-1])), (0.0, top * 1.1))
    parts = frame.axes(title, xlabel, "share of allocations")
    for i, share in enumerate(shares):
        colour = COLOURS[i % len(COLOURS)]
        for j, s in enumerate(share):
            if s <= 0:
                continue
            x0, x1 = frame.px(float(edges[j])), frame.px(float(edges[j + 1]))
            y = frame.py(float(s))
            parts.append(
                f'<rect x="{_f(x0)}" y="{_f(y)}" width="{_f(max(x1 - x0 - 0.5, 0.5))}" '
                f'height="{_f(HEIGHT - BOTTOM - y)}" fill="{colour}" fill-opacity="0.45"/>'
            )
    parts += _legend([label for label, _ in series])
    return _svg(parts)


def lines(
    title: str, x: F64, series: Sequence[tuple[str, F64]], xlabel: str, ylabel: str,
    zero_line: bool = True, x_names: Sequence[str] | None = None, legend_bottom: bool = False,
) -> str:
    """Line chart of several series against a numeric x (optionally labelled at both ends)."""
    if x.size == 0:
        return _svg(_Frame((0, 1), (0, 1)).axes(title + " (no data)", xlabel, ylabel))
    ys = np.concatenate([s for _, s in series])
    finite = ys[np.isfinite(ys)]
    low = float(min(finite.min(), 0.0)) if finite.size else 0.0
    high = float(max(finite.max(), 0.0)) if finite.size else 1.0
    frame = _Frame((float(x.min()), float(x.max())), (low, high + (high - low) * 0.05))
    parts = frame.axes(title, xlabel, ylabel, xticks=x_names is None)
    if x_names is not None and len(x_names):
        for position, anchor, name in ((x.min(), "start", x_names[0]), (x.max(), "end", x_names[-1])):
            parts.append(
                f'<text x="{_f(frame.px(float(position)))}" y="{HEIGHT - BOTTOM + 16}" '
                f'font-size="10" text-anchor="{anchor}">{html.escape(name)}</text>'
            )
    if zero_line and low < 0 < high:
        parts.append(
            f'<line x1="{LEFT}" y1="{_f(frame.py(0))}" x2="{WIDTH - RIGHT}" y2="{_f(frame.py(0))}" '
            'stroke="#999" stroke-dasharray="4 3"/>'
        )
    for i, (_, values) in enumerate(series):
        points = " ".join(
            f"{_f(frame.px(float(a)))},{_f(frame.py(float(b)))}"
            for a, b in zip(x, values, strict=True)
            if np.isfinite(b)
        )
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{COLOURS[i % len(COLOURS)]}" '
            'stroke-width="2"/>'
        )
    if len(series) > 1 or series[0][0]:
        parts += _legend([label for label, _ in series], bottom=legend_bottom)
    return _svg(parts)


def scatter(title: str, x: F64, y: F64, highlight: npt.NDArray[np.bool_], xlabel: str,
            ylabel: str, labels: tuple[str, str]) -> str:
    """Scatter of y against x with a diagonal y = x; highlighted points drawn on top."""
    if x.size == 0:
        return _svg(_Frame((0, 1), (0, 1)).axes(title + " (no data)", xlabel, ylabel))
    top = float(max(x.max(), y.max()))
    frame = _Frame((0.0, top * 1.05), (0.0, top * 1.05))
    parts = frame.axes(title, xlabel, ylabel)
    parts.append(
        f'<line x1="{_f(frame.px(0))}" y1="{_f(frame.py(0))}" x2="{_f(frame.px(top))}" '
        f'y2="{_f(frame.py(top))}" stroke="#999" stroke-dasharray="4 3"/>'
    )
    for mask, colour in ((~highlight, COLOURS[1]), (highlight, COLOURS[0])):
        for a, b in zip(x[mask], y[mask], strict=True):
            parts.append(
                f'<circle cx="{_f(frame.px(float(a)))}" cy="{_f(frame.py(float(b)))}" r="2" '
                f'fill="{colour}" fill-opacity="0.6"/>'
            )
    parts += _legend([labels[0], labels[1]])
    return _svg(parts)


def bars(title: str, names: Sequence[str], observed: F64, expected: F64, ylabel: str) -> str:
    """Paired bars per category: observed (solid) against expected (grey)."""
    if len(names) == 0:
        return _svg(_Frame((0, 1), (0, 1)).axes(title + " (no data)", "", ylabel))
    top = float(max(observed.max(), expected.max(), 1.0))
    frame = _Frame((0.0, float(len(names))), (0.0, top * 1.1))
    parts = frame.axes(title, "account", ylabel, xticks=False)
    width = (WIDTH - LEFT - RIGHT) / len(names)
    for i, name in enumerate(names):
        x = LEFT + i * width
        for k, (value, colour) in enumerate(((observed[i], COLOURS[0]), (expected[i], COLOURS[2]))):
            y = frame.py(float(value))
            parts.append(
                f'<rect x="{_f(x + width * (0.1 + 0.4 * k))}" y="{_f(y)}" '
                f'width="{_f(width * 0.38)}" height="{_f(HEIGHT - BOTTOM - y)}" fill="{colour}"/>'
            )
        if len(names) <= 30:
            parts.append(
                f'<text x="{_f(x + width / 2)}" y="{HEIGHT - BOTTOM + 14}" font-size="9" '
                f'text-anchor="middle">{html.escape(name)}</text>'
            )
    parts += _legend(["observed leads", "expected with equal turns"], (COLOURS[0], COLOURS[2]))
    return _svg(parts)
