"""The benchmark results writer and its arithmetic (the benchmarks themselves are not tests)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.coldstart_compare import parse_importtime
from bench.results import Figure, Section, fmt, markdown, percentile, ratio, report, verdict, write
from bench.scale import FULL, QUICK, from_env


def test_ratio_is_ours_over_baseline() -> None:
    assert ratio(30.0, 120.0) == pytest.approx(0.25)
    assert ratio(None, 1.0) is None
    assert ratio(1.0, None) is None
    assert ratio(1.0, 0.0) is None


@pytest.mark.parametrize(
    ("ours", "baseline", "better", "expected"),
    [
        (50.0, 100.0, "lower", "ours"),      # a time: half is better
        (200.0, 100.0, "lower", "baseline"),
        (200.0, 100.0, "higher", "ours"),    # a throughput: double is better
        (50.0, 100.0, "higher", "baseline"),
        (103.0, 100.0, "lower", "tie"),      # within 5 %
        (1.0, None, "lower", "n/a"),
        (0.0, 0.0, "lower", "tie"),          # zero failures against zero failures
        (0.0, 4.0, "lower", "ours"),
        (3.0, 0.0, "lower", "baseline"),     # some failures against none
    ],
)
def test_verdict_follows_the_direction(ours: float, baseline: float | None, better: str,
                                       expected: str) -> None:
    assert verdict(ours, baseline, better) == expected  # type: ignore[arg-type]


def test_percentile_interpolates() -> None:
    values = [10.0, 20.0, 30.0, 40.0, 50.0]
    assert percentile(values, 50) == 30.0
    assert percentile(values, 95) == pytest.approx(48.0)
    assert percentile([7.0], 95) == 7.0
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
    with pytest.raises(ValueError, match="within"):
        percentile(values, 101)


def test_fmt_keeps_units_and_marks_missing() -> None:
    assert fmt(None, "ms") == "n/a"
    assert fmt(1234.4, "ms") == "1,234 ms"
    assert fmt(0.25) == "0.25"
    assert fmt(2.5e6, "chunks/s") == "2.5e+06 chunks/s"


def _sample() -> Section:
    section = Section("demo", "Demo benchmark")
    section.add(Figure("cold start", "ms", 300.0, 900.0, baseline_name="eager | all"))
    section.add(Figure("throughput", "MB/s", 2.0, None, better="higher", note="n/a: not installed"))
    section.tables["breakdown"] = [{"variant": "ours", "ms": 300.0}]
    section.notes.append("a note")
    return section


def test_writer_produces_matching_markdown_and_json(tmp_path: Path) -> None:
    data = report([_sample()], scale="quick", seconds=12.3)
    md_path, json_path = write(data, tmp_path)
    loaded = json.loads(json_path.read_text(encoding="utf-8"))
    figure = loaded["benchmarks"][0]["figures"][0]
    assert figure["ratio"] == pytest.approx(1 / 3)
    assert figure["verdict"] == "ours"
    assert loaded["benchmarks"][0]["figures"][1]["ratio"] is None
    assert {"cpu", "logical_cores", "ram_gib", "os", "python"} <= loaded["machine"].keys()
    assert "solar-rag" in loaded["versions"]
    text = md_path.read_text(encoding="utf-8")
    assert "| cold start | 300 ms | 900 ms | 0.33× | lower | ours | eager \\| all |" in text
    assert "| throughput | 2 MB/s | n/a | n/a | higher | n/a |" in text
    assert "*breakdown*" in text and "- a note" in text
    assert text == markdown(loaded)


def test_errors_are_reported_not_raised() -> None:
    section = Section("broken", "Broken")
    section.error = "RuntimeError: boom"
    text = markdown(report([section], scale="full", seconds=1.0))
    assert "**Did not complete:** RuntimeError: boom" in text


def test_scale_knob(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BENCH_SCALE", raising=False)
    assert from_env() is FULL
    assert from_env(quick=True) is QUICK
    monkeypatch.setenv("BENCH_SCALE", "quick")
    assert from_env() is QUICK
    assert FULL.ingestion_documents >= 2000 and FULL.cold_start_runs >= 7  # a median of 7 per variant (13 variants)
    assert FULL.store_sizes == (10_000, 100_000)


def test_importtime_is_summed_per_top_level_package() -> None:
    stderr = "\n".join([
        "import time: self [us] | cumulative | imported package",
        "import time:       100 |        100 |     openai._types",
        "import time:       400 |        500 |   openai",
        "import time:      1500 |       1500 | pydantic",
        "not an import line",
    ])
    assert parse_importtime(stderr) == [("pydantic", 1.5), ("openai", 0.5)]
