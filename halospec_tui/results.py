"""CSV rows and summaries: writing, reading back, and the original's summary table.

The summary is always computed from rows (`StepSample`s), whether they come from a
live run or from a CSV read later: one code path.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TextIO

from halospec_tui.errors import HalospecError
from halospec_tui.events import KnobVerdict, StepRecord
from halospec_tui.formats import summary_cells
from halospec_tui.knob import check_knob
from halospec_tui.stats import (
    ModeSummary,
    PhaseRegret,
    StepSample,
    adaptive_regret,
    summarize,
    winner,
)

ORIGINAL_COLUMNS = (
    "global_step",
    "step",
    "mode",
    "phase",
    "draft_length",
    "success",
    "latency_ms",
    "tokens",
)
EXTRA_COLUMNS = tuple(f.name for f in fields(StepRecord) if f.name not in ORIGINAL_COLUMNS)
COLUMNS = ORIGINAL_COLUMNS + EXTRA_COLUMNS
DEFAULT_CSV = "results_phase0.csv"


class ResultsError(HalospecError, ValueError):
    """A file that is not (or not compatible with) a halospec results CSV."""


def one_line(text: str) -> str:
    """A text cell on one line: CR and LF become spaces (a bare CR would break the CSV)."""
    return text.replace("\r\n", " ").replace("\r", " ").replace("\n", " ")


def _cell(v: Any) -> str:
    if isinstance(v, str):
        return one_line(v)
    if v is None:
        return ""
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        return f"{v:.3f}".rstrip("0").rstrip(".") if v == v else ""
    return str(v)


def record_cells(r: StepRecord) -> list[str]:
    return [_cell(getattr(r, c)) for c in COLUMNS]


class CsvWriter:
    """Appends rows, writing the header only for a new file; flushes every row."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fh: TextIO | None = None

    def open(self) -> None:
        exists = self.path.exists() and self.path.stat().st_size > 0
        if exists:
            with self.path.open(newline="") as fh:
                header = fh.readline().strip()
            if header != ",".join(COLUMNS):
                if header == ",".join(ORIGINAL_COLUMNS):
                    hint = "it was written by the original harness (8 columns)"
                else:
                    hint = "its header differs"
                raise ResultsError(
                    f"refusing to append to {self.path}: {hint}; choose another --csv path"
                )
        if self.path.parent and not self.path.parent.exists():
            raise ResultsError(
                f"cannot write {self.path}: folder {self.path.parent} does not exist"
            )
        try:
            self._fh = self.path.open("a", newline="")
        except OSError as e:
            raise ResultsError(f"cannot write {self.path}: {e.strerror}") from e
        self._csv = csv.writer(self._fh, lineterminator="\n")
        if not exists:
            self._csv.writerow(COLUMNS)
            self._fh.flush()

    def write(self, r: StepRecord) -> None:
        assert self._fh is not None, "open() first"
        self._csv.writerow(record_cells(r))
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


# -- reading back -------------------------------------------------------------
def _opt_int(s: str) -> int | None:
    return int(float(s)) if s not in ("", None) else None


def _opt_float(s: str) -> float | None:
    return float(s) if s not in ("", None) else None


def sample_from_row(row: dict[str, str]) -> StepSample:
    return StepSample(
        mode=row["mode"],
        draft_length=int(row["draft_length"]),
        success=row["success"].strip() == "1",
        latency_ms=int(row["latency_ms"]),
        tokens=int(row["tokens"]),
        drafted=_opt_int(row.get("drafted", "")),
        accepted=_opt_int(row.get("accepted", "")),
        predicted_n=_opt_int(row.get("predicted_n", "")),
        predicted_ms=_opt_float(row.get("predicted_ms", "")),
        reload_ms=_opt_int(row.get("reload_ms", "")),
        phase=row.get("phase", "steady"),
    )


def sample_from_record(r: StepRecord) -> StepSample:
    return sample_from_row(dict(zip(COLUMNS, record_cells(r), strict=False)))


@dataclass(frozen=True)
class Run:
    index: int  # 1-based position in the file
    run_id: str
    rows: tuple[dict[str, str], ...]

    @property
    def samples(self) -> list[StepSample]:
        return [sample_from_row(r) for r in self.rows]


def read_runs(path: str | os.PathLike[str]) -> list[Run]:
    """Rows of a results CSV, split into runs where global_step restarts or run_id changes.

    Reads both this tool's CSVs and the original's 8-column ones.
    """
    p = Path(path)
    try:
        with p.open(newline="") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise ResultsError(f"{p}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ResultsError(f"{p}: cannot read as text ({e})") from None
    reader = csv.DictReader(io.StringIO(text))
    header = tuple(reader.fieldnames or ())
    if header[: len(ORIGINAL_COLUMNS)] != ORIGINAL_COLUMNS:
        raise ResultsError(
            f"{p} is not a results CSV: its header must start with {','.join(ORIGINAL_COLUMNS)}"
        )
    runs: list[list[dict[str, str]]] = []
    prev_step = 0
    prev_id: str | None = None
    for lineno, row in enumerate(reader, start=2):
        try:
            g = int(row["global_step"])
            for c in ("step", "draft_length", "latency_ms", "tokens"):
                int(row[c])
            if row["success"] not in ("0", "1"):
                raise ValueError("success must be 0 or 1")
        except (TypeError, ValueError) as e:
            raise ResultsError(f"{p}:{lineno}: not a results row ({e})") from None
        rid = row.get("run_id") or ""
        if not runs or g <= prev_step or (prev_id is not None and rid != prev_id):
            runs.append([])
        runs[-1].append(row)
        prev_step, prev_id = g, rid
    return [Run(i + 1, rs[0].get("run_id") or "", tuple(rs)) for i, rs in enumerate(runs)]


# -- summaries ----------------------------------------------------------------
@dataclass(frozen=True)
class Report:
    summaries: tuple[ModeSummary, ...]
    winner: str | None
    winner_score: float | None
    knob: KnobVerdict
    regret: tuple[PhaseRegret, ...] = ()


def build_report(samples: Sequence[StepSample]) -> Report:
    summaries = tuple(summarize(samples))
    best = winner(summaries)
    return Report(
        summaries=summaries,
        winner=best.mode if best else None,
        winner_score=best.score if best else None,
        knob=check_knob(samples),
        regret=tuple(adaptive_regret(samples)),
    )


def regret_lines(report: Report) -> list[str]:
    return [
        f"adaptive vs best fixed in {r.phase}: {r.adaptive_ms:.1f} ms vs {r.best_ms:.1f} ms "
        f"({r.best_fixed}), regret {_percent(r.regret)}"
        for r in report.regret
    ]


def _percent(v: float | None) -> str:
    return "n/a" if v is None else f"{v * 100:+.1f}%"


def _row(cols: Sequence[str]) -> str:
    # The original's format string: {:<10} {:>6} {:>8.1}% {:>9} {:>12} {:>12} {:>12}
    # {:>10} {:>10} {:>12} {:>14} {:>10}
    widths = (6, 8, 9, 12, 12, 12, 10, 10, 12, 14, 10)
    out = f"{cols[0]:<10}"
    for i, (c, w) in enumerate(zip(cols[1:], widths, strict=False)):
        out += f" {c:>{w}}"
        if i == 1:
            out += "%"
    return out


def classic_table(report: Report) -> str:
    """The original's summary, character for character.

    Its header prints "s%" for the success column: Rust's `{:>8.1}` truncates the
    string "success" to one character. Kept so output diffs cleanly against it.
    """
    lines = [
        "",
        "==============================",
        "HaloSpec Benchmark Summary",
        "==============================",
        "",
        _row(
            [
                "mode",
                "steps",
                "s",
                "fail",
                "avg",
                "median",
                "p95",
                "min",
                "max",
                "stddev",
                "throughput",
                "score",
            ]
        ),
    ]
    for s in report.summaries:
        c = summary_cells(s, units=True)
        lines.append(
            _row(
                [
                    c.mode, c.steps, c.success, c.failures, c.avg, c.median, c.p95, c.min,
                    c.max, c.stddev, c.throughput, c.score,
                ]  # fmt: skip
            )
        )
    for s in report.summaries:
        if s.is_adaptive:
            if s.convergence_step is not None:
                lines.append(
                    f"\n[Adaptive Behavior] draft_length changes={s.k_changes} | "
                    f"converged_at_step={s.convergence_step} (k=5)"
                )
            else:
                lines.append(
                    f"\n[Adaptive Behavior] draft_length changes={s.k_changes} | "
                    "no convergence within run (k=5)"
                )
    if report.winner is not None and report.winner_score is not None:
        lines.append(
            f"\nWinner (lowest SLO-aware score): {report.winner} at {report.winner_score:.1f}"
        )
    return "\n".join(lines)


def extras_table(report: Report) -> str:
    """What the server said about drafting, per mode, and the knob verdict."""
    lines = [
        "",
        f"{'mode':<10} {'drafted':>9} {'accepted':>9} {'accept%':>8} {'srv tok/s':>10} "
        f"{'reloads':>8} {'reload ms':>10}",
    ]
    for s in report.summaries:
        c = summary_cells(s)
        lines.append(
            f"{c.mode:<10} {c.drafted:>9} {c.accepted:>9} {c.acceptance:>8} "
            f"{c.server_tps:>10} {c.reloads:>8} {c.reload_ms:>10}"
        )
    if report.regret:
        lines.append("")
        lines += regret_lines(report)
    marker = {"effective": "OK", "no-effect": "WARNING", "unverified": "NOTE"}[report.knob.status]
    lines.append(f"\n[{marker}] {report.knob.message}")
    return "\n".join(lines)


def summary_text(report: Report) -> str:
    return classic_table(report) + "\n" + extras_table(report) + "\n"


def summary_json(report: Report, meta: dict[str, Any] | None = None) -> str:
    return json.dumps(
        {
            "meta": meta or {},
            "modes": [s.to_dict() for s in report.summaries],
            "winner": report.winner,
            "winner_score": report.winner_score,
            "knob": {"status": report.knob.status, "message": report.knob.message},
            "regret": [
                {
                    "phase": r.phase,
                    "best_fixed": r.best_fixed,
                    "best_ms": r.best_ms,
                    "adaptive_ms": r.adaptive_ms,
                    "regret": r.regret,
                }
                for r in report.regret
            ],  # fmt: skip
        },
        indent=2,
    )


def md_escape(text: str) -> str:
    """Make a CSV-sourced value inert in Markdown (and in a spreadsheet it is pasted into)."""
    t = str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("\r", " ")
    for ch in "`*_[]<>#!":
        t = t.replace(ch, "\\" + ch)
    if t[:1] in ("=", "+", "-", "@") and not _is_number(t):
        t = "'" + t
    return t


def _is_number(t: str) -> bool:
    try:
        float(t)
        return True
    except ValueError:
        return False


def summary_markdown(report: Report) -> str:
    head = [
        "mode", "steps", "success %", "fail", "avg ms", "median ms", "p95 ms", "min ms",
        "max ms", "stddev ms", "tok/s", "score", "accept %",
    ]  # fmt: skip
    lines = ["# HaloSpec benchmark summary", "", "| " + " | ".join(head) + " |"]
    lines.append("|" + "---|" * len(head))
    for s in report.summaries:
        c = summary_cells(s)
        name = md_escape(s.mode)
        if s.mode == report.winner:
            name = f"**{name}**"
        cells = [
            name, c.steps, c.success, c.failures, c.avg, c.median, c.p95, c.min, c.max,
            c.stddev, c.throughput, c.score, c.acceptance,
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    if report.winner:
        lines += ["", f"Winner (lowest SLO-aware score): **{md_escape(report.winner)}**"]
    for s in report.summaries:
        if s.is_adaptive:
            conv = s.convergence_step if s.convergence_step is not None else "none"
            lines.append(f"\nAdaptive: {s.k_changes} K changes, converged at step {conv} (k=5).")
    if report.regret:
        lines += [""] + [f"- {md_escape(line)}" for line in regret_lines(report)]
    lines += ["", f"Knob check: **{report.knob.status}**: {md_escape(report.knob.message)}", ""]
    return "\n".join(lines)


def summary_paths(csv_path: str | os.PathLike[str]) -> dict[str, Path]:
    p = Path(csv_path)
    stem = p.with_suffix("") if p.suffix == ".csv" else p
    return {
        "txt": Path(f"{stem}_summary.txt"),
        "json": Path(f"{stem}_summary.json"),
        "md": Path(f"{stem}_summary.md"),
    }


def write_summaries(
    csv_path: str | os.PathLike[str], report: Report, meta: dict[str, Any] | None = None
) -> list[Path]:
    paths = summary_paths(csv_path)
    paths["txt"].write_text(summary_text(report))
    paths["json"].write_text(summary_json(report, meta) + "\n")
    paths["md"].write_text(summary_markdown(report))
    return list(paths.values())
