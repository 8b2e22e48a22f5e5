"""Benchmark results: statistics, tables (text and Markdown) and a PNG chart (Pillow).

Every benchmark returns a :class:`BenchResult`: one or more :class:`Table` objects for
people and one :class:`Panel` (horizontal bars with a spread whisker) for the chart.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

NAN = float("nan")


# ---------------------------------------------------------------------------------------
# Statistics


@dataclass(frozen=True, slots=True)
class Spread:
    """Median and a spread (low, high) of some samples; ``failures`` did not count."""

    median: float
    low: float
    high: float
    count: int
    failures: int = 0

    @classmethod
    def of(cls, samples: Sequence[float | None], spread: str = "p10-p90") -> Spread:
        """Median with p10/p90 (``"p10-p90"``), p99 (``"p99"``) or min/max (``"range"``).

        ``None`` samples are failures. Percentiles are nearest-rank; with no successful
        sample every value is NaN.
        """
        ok = sorted(s for s in samples if s is not None)
        failures = len(samples) - len(ok)
        if not ok:
            return cls(NAN, NAN, NAN, 0, failures)
        median = statistics.median(ok)
        if spread == "range":
            return cls(median, ok[0], ok[-1], len(ok), failures)
        if spread == "p99":
            return cls(median, median, percentile(ok, 99), len(ok), failures)
        return cls(median, percentile(ok, 10), percentile(ok, 90), len(ok), failures)


def percentile(ordered: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of already sorted samples."""
    if not ordered:
        return NAN
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def ratio(value: float, baseline: float) -> float:
    """``value / baseline`` (NaN when either is missing or the baseline is zero)."""
    if math.isnan(value) or math.isnan(baseline) or baseline == 0:
        return NAN
    return value / baseline


def fmt(value: float, digits: int = 3) -> str:
    """A number for a table cell ("-" for NaN)."""
    if math.isnan(value):
        return "-"
    return f"{value:.{digits}f}"


def fmt_ratio(value: float) -> str:
    """A ratio for a table cell, e.g. ``x0.42`` (``x0.004`` below 0.1)."""
    if math.isnan(value):
        return "-"
    return f"x{value:.3f}" if value < 0.1 else f"x{value:.2f}"


# ---------------------------------------------------------------------------------------
# Tables and chart panels


@dataclass
class Table:
    """A table of already formatted cells, with notes printed under it."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def text(self) -> str:
        """Aligned plain text for the terminal."""
        widths = [
            max(len(cell) for cell in column)
            for column in zip(self.columns, *self.rows, strict=True)
        ]

        def line(cells: Sequence[str]) -> str:
            return "  ".join(
                cell.ljust(width) if i == 0 else cell.rjust(width)
                for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
            ).rstrip()

        out = [self.title, line(self.columns), line(["-" * w for w in widths])]
        out += [line(row) for row in self.rows]
        out += [f"  {note}" for note in self.notes]
        return "\n".join(out)

    def markdown(self) -> str:
        """A GitHub Markdown table with its title and notes."""
        out = [f"### {self.title}", "", "| " + " | ".join(self.columns) + " |"]
        out.append("|" + "|".join(["---"] + ["---:"] * (len(self.columns) - 1)) + "|")
        out += ["| " + " | ".join(row) + " |" for row in self.rows]
        if self.notes:
            out.append("")
            out += [f"- {note}" for note in self.notes]
        return "\n".join(out)


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar of a chart panel: a median and its spread whisker."""

    label: str
    value: float
    low: float
    high: float
    baseline: bool = False


@dataclass
class Panel:
    """One chart panel: horizontal bars on a common axis."""

    title: str
    unit: str
    bars: list[Bar] = field(default_factory=list)


@dataclass
class BenchResult:
    """What a benchmark hands to the report."""

    name: str
    tables: list[Table]
    panel: Panel

    def text(self) -> str:
        """Every table as plain text."""
        return "\n\n".join(table.text() for table in self.tables)

    def markdown(self) -> str:
        """Every table as Markdown."""
        return "\n\n".join(table.markdown() for table in self.tables)


# ---------------------------------------------------------------------------------------
# Machine description


def machine_description() -> list[tuple[str, str]]:
    """CPU model, cores, memory, kernel, Python and the load average right now."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "-"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return [
        ("CPU", cpu),
        ("Cores available", str(len(os.sched_getaffinity(0)))),
        ("Memory", memory),
        ("Kernel", f"{platform.system()} {platform.release()}"),
        ("Python", sys.version.split()[0]),
        ("Load average at the start (1, 5, 15 min)", load),
    ]


# ---------------------------------------------------------------------------------------
# Chart

PANEL_WIDTH, PANEL_HEIGHT = 640, 420
LABEL_WIDTH = 200
MARGIN = 16
OURS = (46, 117, 182)
BASELINE = (160, 160, 160)
INK = (30, 30, 30)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _nice_max(value: float) -> float:
    """A round axis maximum >= ``value``."""
    if value <= 0 or math.isnan(value):
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        top = step * 10**exponent
        if top >= value:
            return float(top)
    return float(10 ** (exponent + 1))


def _draw_panel(draw: ImageDraw.ImageDraw, panel: Panel, left: int, top: int) -> None:
    title_font, font = _font(16), _font(12)
    draw.text((left + MARGIN, top + MARGIN), panel.title, fill=INK, font=title_font)
    bars = panel.bars
    values = [v for bar in bars for v in (bar.value, bar.high) if not math.isnan(v)]
    axis_max = _nice_max(max(values, default=1.0))
    plot_left = left + LABEL_WIDTH
    plot_right = left + PANEL_WIDTH - MARGIN - 40
    plot_top = top + MARGIN + 30
    plot_bottom = top + PANEL_HEIGHT - MARGIN - 40
    slot = (plot_bottom - plot_top) / max(1, len(bars))
    bar_height = max(4.0, min(24.0, slot * 0.6))

    def x_of(value: float) -> float:
        return plot_left + (plot_right - plot_left) * min(value, axis_max) / axis_max

    for tick in range(5):
        value = axis_max * tick / 4
        x = x_of(value)
        draw.line([(x, plot_top), (x, plot_bottom)], fill=(225, 225, 225))
        draw.text((x, plot_bottom + 4), f"{value:g}", fill=INK, font=font, anchor="ma")
    draw.text(
        ((plot_left + plot_right) / 2, plot_bottom + 22),
        panel.unit,
        fill=INK,
        font=font,
        anchor="ma",
    )
    for index, bar in enumerate(bars):
        middle = plot_top + slot * (index + 0.5)
        draw.text((left + MARGIN, middle), bar.label, fill=INK, font=font, anchor="lm")
        if math.isnan(bar.value):
            draw.text((plot_left + 4, middle), "no data", fill=INK, font=font, anchor="lm")
            continue
        color = BASELINE if bar.baseline else OURS
        draw.rectangle(
            [(plot_left, middle - bar_height / 2), (x_of(bar.value), middle + bar_height / 2)],
            fill=color,
        )
        if not (math.isnan(bar.low) or math.isnan(bar.high)):
            low, high = x_of(bar.low), x_of(bar.high)
            draw.line([(low, middle), (high, middle)], fill=INK, width=2)
            for x in (low, high):
                draw.line([(x, middle - 5), (x, middle + 5)], fill=INK, width=2)
    draw.line([(plot_left, plot_top), (plot_left, plot_bottom)], fill=INK)


def render_chart(panels: Sequence[Panel], path: Path, title: str) -> None:
    """Write the panels as a grid of two columns to a PNG file."""
    columns = 2
    rows = max(1, math.ceil(len(panels) / columns))
    header = 40
    image = Image.new("RGB", (PANEL_WIDTH * columns, header + PANEL_HEIGHT * rows), "white")
    draw = ImageDraw.Draw(image)
    draw.text((MARGIN, 10), title, fill=INK, font=_font(18))
    legend_x = PANEL_WIDTH * columns - 400
    for offset, (color, name) in enumerate(
        ((OURS, "alexa_cam_bridge"), (BASELINE, "baseline of the ratio"))
    ):
        x = legend_x + offset * 170
        draw.rectangle([(x, 14), (x + 14, 28)], fill=color)
        draw.text((x + 20, 21), name, fill=INK, font=_font(13), anchor="lm")
    for index, panel in enumerate(panels):
        left = (index % columns) * PANEL_WIDTH
        top = header + (index // columns) * PANEL_HEIGHT
        _draw_panel(draw, panel, left, top)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")
