"""Benchmark results: figures (ours, baseline, ratio), the machine, versions; Markdown and JSON.

A ratio is always ``ours / baseline`` of the same unit. Whether a ratio below 1 is good
depends on the figure (a time: lower is better; a throughput or a recall: higher is better),
so every figure says which way is better and the writer states who wins.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

Better = Literal["lower", "higher"]

PACKAGES = (
    "solar-rag", "openai", "opensearch-py", "fastapi", "mangum", "pydantic", "pydantic-settings",
    "aws-lambda-powertools", "boto3", "numpy", "chromadb", "langchain-core", "langchain-upstage",
    "langchain-openai", "langchain-community", "langchain-text-splitters",
)
TIE_BAND = 0.05
"""Ratios within 5 % of 1 are reported as a tie: these machines are noisy."""


@dataclass(slots=True)
class Figure:
    name: str
    unit: str
    ours: float | None
    baseline: float | None
    better: Better = "lower"
    baseline_name: str = ""
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return ratio(self.ours, self.baseline)

    @property
    def verdict(self) -> str:
        return verdict(self.ours, self.baseline, self.better)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ratio"] = self.ratio
        data["verdict"] = self.verdict
        return data


@dataclass(slots=True)
class Section:
    """One benchmark: its figures, plus free-form tables and notes."""

    key: str
    title: str
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key, "title": self.title, "seconds": round(self.seconds, 2),
            "error": self.error, "notes": list(self.notes),
            "figures": [f.to_json() for f in self.figures], "tables": self.tables,
        }


def ratio(ours: float | None, baseline: float | None) -> float | None:
    """``ours / baseline``; ``None`` when either is missing or the baseline is zero."""
    if ours is None or baseline is None or baseline == 0:
        return None
    return ours / baseline


def verdict(ours: float | None, baseline: float | None, better: Better) -> str:
    if ours is not None and ours == baseline:
        return "tie"
    value = ratio(ours, baseline)
    if value is None:
        if ours is not None and baseline == 0:
            return "ours" if (better == "lower") == (ours <= 0) else "baseline"
        return "n/a"
    if abs(value - 1.0) <= TIE_BAND:
        return "tie"
    ours_better = value < 1.0 if better == "lower" else value > 1.0
    return "ours" if ours_better else "baseline"


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (``q`` in 0..100) of a non-empty sequence."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError("q must be within 0..100")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


# -- the machine ------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    return {
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "ram_gib": _ram_gib(),
        "os": _os_name(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
    }


def versions(packages: Iterable[str] = PACKAGES) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in packages:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text(encoding="utf-8").splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.platform()


# -- writing ----------------------------------------------------------------------------------


def report(sections: Sequence[Section], *, scale: str, seconds: float,
           started: datetime | None = None,
           load: tuple[float, float] | None = None) -> dict[str, Any]:
    return {
        "generated_at": (started or datetime.now(UTC)).isoformat(timespec="seconds"),
        "scale": scale,
        "seconds": round(seconds, 1),
        "load_average": None if load is None else [round(value, 2) for value in load],
        "machine": machine(),
        "versions": versions(),
        "ratio": "ours / baseline (same unit); see 'better' for the direction",
        "benchmarks": [s.to_json() for s in sections],
    }


def write(data: dict[str, Any], directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / "results.json"
    md_path = directory / "results.md"
    json_path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    md_path.write_text(markdown(data), encoding="utf-8")
    return md_path, json_path


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        text = f"{value:.3g}"
    elif abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".strip() if unit else text


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _load(data: dict[str, Any]) -> str:
    load = data.get("load_average")
    if not load:
        return ""
    return (f"; 1-minute load average {load[0]:.1f} at the start and {load[1]:.1f} at the end, "
            "on the 2 shared cores")


def markdown(data: dict[str, Any]) -> str:
    m = data["machine"]
    lines = [
        "# Benchmark results",
        "",
        f"Generated {data['generated_at']} by `python -m bench.run_all` (scale `{data['scale']}`, "
        f"{data['seconds']:.0f} s{_load(data)}). Everything runs on this machine against local "
        "fakes (fake Upstage server, in-memory OpenSearch stub); no network.",
        "",
        "**Ratio = ours ÷ baseline** in the figure's unit. For times lower is better, for "
        "throughputs and recall higher is better; the *winner* column says who wins "
        f"(within ±{TIE_BAND:.0%} is a tie). Absolute numbers drift between runs on shared "
        "machines; the ratios, measured side by side in one run, are the figures to compare.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        f"| CPU | {_cell(m['cpu'])} |",
        f"| cores | {m['logical_cores']} logical, {m['usable_cores']} usable |",
        f"| RAM | {m['ram_gib']} GiB |",
        f"| OS | {_cell(m['os'])} (kernel {_cell(m['kernel'])}) |",
        f"| Python | {m['python']} ({m['python_implementation']}) |",
        "",
        "## Versions",
        "",
        "| package | version |",
        "|---|---|",
    ]
    lines += [f"| {name} | {version or 'not installed'} |" for name, version in data["versions"].items()]
    for bench in data["benchmarks"]:
        lines += ["", f"## {bench['title']}", ""]
        if bench.get("error"):
            lines += [f"**Did not complete:** {_cell(bench['error'])}", ""]
        if bench["figures"]:
            lines += [
                "| figure | ours | baseline | ratio | better | winner | baseline is | note |",
                "|---|---:|---:|---:|:---:|:---:|---|---|",
            ]
            for f in bench["figures"]:
                ratio_text = "n/a" if f["ratio"] is None else f"{f['ratio']:.2f}×"
                lines.append(
                    f"| {_cell(f['name'])} | {fmt(f['ours'], f['unit'])} | "
                    f"{fmt(f['baseline'], f['unit'])} | {ratio_text} | {f['better']} | "
                    f"{f['verdict']} | {_cell(f['baseline_name'])} | {_cell(f['note'])} |")
        for title, rows in bench.get("tables", {}).items():
            if not rows:
                continue
            columns = list(rows[0].keys())
            lines += ["", f"*{title}*", "", "| " + " | ".join(columns) + " |",
                      "|" + "---|" * len(columns)]
            for row in rows:
                lines.append("| " + " | ".join(_cell(_table_value(row.get(c))) for c in columns) + " |")
        if bench["notes"]:
            lines.append("")
            lines += [f"- {_cell(note)}" for note in bench["notes"]]
        lines.append("")
        lines.append(f"<sub>{bench['key']}: {bench['seconds']:.0f} s</sub>")
    return "\n".join(lines).rstrip() + "\n"


def _table_value(value: object) -> str:
    if isinstance(value, float):
        return fmt(value)
    return "" if value is None else str(value)
