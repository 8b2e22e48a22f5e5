"""Exercise the Lambda overhead benchmark (numbers are printed, never asserted)."""

from __future__ import annotations

import pytest

from bench import lambda_overhead


def test_bench_quick(capsys: pytest.CaptureFixture[str]) -> None:
    results = lambda_overhead.main(["--quick"])
    assert set(results) == {"cold", "warm"}
    out = capsys.readouterr().out
    assert "cold: 5 calls" in out
    assert "warm: 20 calls" in out
