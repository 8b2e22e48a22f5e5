"""Each benchmark's ``--quick`` path runs and yields complete tables and a chart.

Only structure is asserted (table shapes, row counts, files written): the numbers
depend on the machine and are never checked. The asyncio parts are awaited in the test's
event loop (``asyncio.run`` would leave none for the Home Assistant test plugin). The
parts start real peers (fake camera, stunnel, the restreamer in a child process, Home
Assistant), so they take longer than unit tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from bench import directives, fanout, first_frame, report, run
from bench.report import Bar, BenchResult, Panel, Spread, Table, render_chart


def _assert_shape(result: BenchResult) -> None:
    """Every row of every table has a cell per column; the panel has bars."""
    assert result.tables
    for table in result.tables:
        assert table.rows
        assert all(len(row) == len(table.columns) for row in table.rows)
        assert table.title in result.text()
        assert f"### {table.title}" in result.markdown()
    assert result.panel.bars


@pytest.mark.timeout(600)
async def test_fanout_quick() -> None:
    """One row per viewer count in the cost and health tables; three stall rows."""
    result = fanout.build_result(fanout.QUICK, await fanout.measure(fanout.QUICK))
    _assert_shape(result)
    cost, health, stall = result.tables
    counts = [str(n) for n in fanout.QUICK.viewer_counts]
    assert [row[0] for row in cost.rows] == counts
    assert [row[0] for row in health.rows] == counts
    assert len(stall.rows) == 3
    assert len(result.panel.bars) == 2 * len(counts)


@pytest.mark.timeout(600)
async def test_directives_quick() -> None:
    """Discover per camera count, then InitializeCameraStreams and ReportState."""
    result = directives.build_result(directives.QUICK, await directives.measure(directives.QUICK))
    _assert_shape(result)
    (table,) = result.tables
    names = [(row[0], row[1]) for row in table.rows]
    assert names == [
        *(("Discover", str(n)) for n in directives.QUICK.camera_counts),
        ("InitializeCameraStreams", "1"),
        ("ReportState", "1"),
    ]
    assert [row[2] for row in table.rows][-2:] == [str(directives.QUICK.stream_calls)] * 2


@pytest.mark.timeout(600)
async def test_first_frame_quick() -> None:
    """bench.first_frame's samples become warm / cold / stunnel and ffmpeg rows."""
    result = run.first_frame_result(3, *await first_frame.collect(3))
    _assert_shape(result)
    (table,) = result.tables
    assert [row[1] for row in table.rows] == [
        run.FIRST_FRAME_LABELS["a"],
        run.FIRST_FRAME_LABELS["b"],
        run.FIRST_FRAME_LABELS["c"],
        run.FIRST_FRAME_LABELS["a"],
        run.FIRST_FRAME_LABELS["c"],
    ]


@pytest.mark.timeout(300)
def test_run_writes_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """script/bench's runner prints the machine and the table, writes .md and .png."""
    assert run.main(["--quick", "--only", "lambda", "--output", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Load average" in out
    assert "Lambda overhead per call" in out
    (markdown,) = tmp_path.glob("*.md")
    (chart,) = tmp_path.glob("*.png")
    text = markdown.read_text()
    assert "| CPU |" in text
    assert "| cold | 5 |" in text
    assert chart.name in text
    with Image.open(chart) as image:
        assert image.format == "PNG"


def test_run_rejects_unknown_part() -> None:
    with pytest.raises(SystemExit):
        run.main(["--only", "nonsense"])


def test_first_frame_table_from_samples() -> None:
    """Failed runs (None) are counted, not averaged; the ratio is against stunnel (c)."""
    echo: dict[str, list[float | None]] = {"a": [0.01, 0.02], "b": [0.5, None], "c": [2.0, 4.0]}
    ffmpeg: dict[str, list[float | None]] = {"a": [None, None], "c": [2.0, 2.0]}
    (table,) = run.first_frame_result(2, echo, ffmpeg).tables
    cold = table.rows[1]
    assert cold[2] == report.fmt(0.5)
    assert cold[-1] == "1"
    assert table.rows[2][5] == report.fmt_ratio(1.0)
    assert table.rows[3][-1] == "2"


def test_spread_and_table() -> None:
    spread = Spread.of([3.0, 1.0, None, 2.0, 4.0])
    assert (spread.median, spread.count, spread.failures) == (2.5, 4, 1)
    assert Spread.of([None]).count == 0
    table = Table("T", ["a", "b"], [["x", "1.0"]], ["note"])
    assert table.text().splitlines() == ["T", "a    b", "-  ---", "x  1.0", "  note"]
    assert "|---|---:|" in table.markdown()


def test_render_chart(tmp_path: Path) -> None:
    """A grid of panels, bars without data included."""
    panels = [
        Panel("one", "s", [Bar("ours", 1.0, 0.5, 1.5), Bar("base", 2.0, 1.0, 3.0, True)]),
        Panel("two", "ms", [Bar("missing", float("nan"), float("nan"), float("nan"))]),
        Panel("three", "ms", [Bar("zero", 0.0, 0.0, 0.0)]),
    ]
    path = tmp_path / "chart.png"
    render_chart(panels, path, "title")
    with Image.open(path) as image:
        assert image.size[0] > image.size[1] > 0
