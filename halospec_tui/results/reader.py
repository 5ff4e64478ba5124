"""Reading a results CSV back: every row checked, the file split into runs.

Rows are read a chunk at a time and checked column by column (`check_row` is the
same check for one row, and names the first fault of a bad row). A cell no run can
write stops the read with `file:line: reason`; the bounds below say what a run can
write. `iter_runs` turns each run into numpy columns (samples.py) as soon as it ends,
so memory holds one run, never the file; `read_runs` keeps every row's cells (small
files, tests).

A file is split into runs where global_step stops growing or run_id changes: the
original's CSV (no run_id) is appended run after run, each from global_step 1. When
the rows of one run id are split that way, or one run id comes back after another,
the rows are out of order (shuffled, sorted by another column, or one file pasted
into another): `warn` is told (once per run id), and each stretch is read as a run
of its own.
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np

from halospec_tui.arms import K_LIMIT, canonical, is_adaptive, is_nospec
from halospec_tui.conditions import LOADS, MAX_CONCURRENCY
from halospec_tui.events import StepRecord
from halospec_tui.plan import MAX_ROUNDS
from halospec_tui.results.samples import ColumnsBuilder, Samples
from halospec_tui.results.schema import ORIGINAL_COLUMNS, ResultsError, record_row
from halospec_tui.stats import StepSample

WarnFn = Callable[[str], None]

# What a run can write, and no more. A cell outside these bounds is a bad row.
DAY_MS = 86_400_000  # latency, reload and server times: a request has a total deadline
MAX_TOKENS = 10_000_000  # tokens, drafted, accepted, predicted_n of one request
MAX_STEP = 1_000_000_000  # global_step, step: a run of a billion requests is no run
MAX_BLOCK_POS = 999  # an arm's place in a round: no plan lists a thousand arms
# Whole numbers every row holds: column -> (least, most).
WHOLE_COLUMNS = {
    "global_step": (0, MAX_STEP),
    "step": (0, MAX_STEP),
    "draft_length": (0, K_LIMIT),
    "latency_ms": (0, DAY_MS),
    "tokens": (0, MAX_TOKENS),
}
# Numbers a row may leave empty, all at least 0: column -> (most, whole number?).
OPTIONAL_COLUMNS = {
    "drafted": (MAX_TOKENS, True),
    "accepted": (MAX_TOKENS, True),
    "predicted_n": (MAX_TOKENS, True),
    "reload_ms": (DAY_MS, True),
    "round": (MAX_ROUNDS, True),
    "block_pos": (MAX_BLOCK_POS, True),
    "predicted_ms": (DAY_MS, False),
    "concurrency": (MAX_CONCURRENCY, True),
    "client": (MAX_CONCURRENCY, True),
    "step_ms": (DAY_MS, True),
}
CONDITIONS = frozenset(("", *LOADS))  # a row's condition: none, or a load of conditions.py
CHUNK_ROWS = 1024  # rows read and checked at a time


def _short(v: str) -> str:
    return repr(v if len(v) <= 40 else v[:40] + "...")


def _shown(n: int) -> str:
    s = str(n)
    return s if len(s) <= 40 else s[:40] + "..."


def check_row(row: dict[str, str]) -> None:
    """Raise ValueError naming the first column that no results row can hold."""
    for c, (least, most) in WHOLE_COLUMNS.items():
        v = row.get(c)
        if v is None:
            raise ValueError(f"{c} is missing")
        try:
            n = int(v)
        except ValueError:
            raise ValueError(f"{c}={_short(v)} is not an integer") from None
        if n < least:
            raise ValueError(f"{c}={n} is below {least}")
        if n > most:
            raise ValueError(f"{c}={_shown(n)} is above {most}")
    success = row.get("success") or ""
    if success not in ("0", "1"):
        raise ValueError(f"success={_short(success)} must be 0 or 1")
    mode = row.get("mode") or ""
    if int(row["draft_length"]) == 0 and not _k0_allowed(mode):
        raise ValueError(f"draft_length=0 belongs to nospec or an adaptive arm, not {_short(mode)}")
    settle = row.get("settle") or ""
    if settle not in ("", "0", "1"):
        raise ValueError(f"settle={_short(settle)} must be 0 or 1")
    condition = row.get("condition") or ""
    if condition not in CONDITIONS:
        raise ValueError(f"condition={_short(condition)} is not one of {', '.join(LOADS)}")
    for c, (most, whole) in OPTIONAL_COLUMNS.items():
        v = row.get(c) or ""
        if not v:
            continue
        try:
            f = float(v)
        except ValueError:
            raise ValueError(f"{c}={_short(v)} is not a number") from None
        if not math.isfinite(f) or f < 0:
            raise ValueError(f"{c}={_short(v)} must be a finite number >= 0")
        if f > most:
            raise ValueError(f"{c}={_short(v)} is above {most}")
        if whole and f != int(f):
            raise ValueError(f"{c}={_short(v)} is not a whole number")


def _k0_allowed(mode: str) -> bool:
    """K 0 is no speculation: the nospec arm, or an adaptive arm that chose it."""
    return is_nospec(mode) or is_adaptive(mode)


# -- one row as a sample (the live run's path, and read_runs') -------------------
def _opt_int(s: str | None) -> int | None:
    return int(float(s)) if s else None


def _opt_float(s: str | None) -> float | None:
    return float(s) if s else None


def sample_from_row(row: dict[str, str]) -> StepSample:
    """A row's sample; a column the row leaves out (the original's 8 columns) reads empty."""
    return StepSample(
        arm=sys.intern(canonical(row["mode"])),
        draft_length=int(row["draft_length"]),
        success=row["success"].strip() == "1",
        latency_ms=int(row["latency_ms"]),
        tokens=int(row["tokens"]),
        drafted=_opt_int(row.get("drafted")),
        accepted=_opt_int(row.get("accepted")),
        predicted_n=_opt_int(row.get("predicted_n")),
        predicted_ms=_opt_float(row.get("predicted_ms")),
        reload_ms=_opt_int(row.get("reload_ms")),
        phase=sys.intern(row.get("phase", "steady")),
        round=_opt_int(row.get("round")),
        settle=row.get("settle", "").strip() == "1",
        actuator=sys.intern(row.get("actuator", "")),
        timestamp=row.get("timestamp", ""),
        prompt_class=sys.intern(row.get("prompt_class", "")),
        server_kind=sys.intern(row.get("server_kind", "")),
        condition=sys.intern(row.get("condition", "")),
        concurrency=_opt_int(row.get("concurrency")),
        step_ms=_opt_int(row.get("step_ms")),
    )


def sample_from_record(r: StepRecord) -> StepSample:
    return sample_from_row(record_row(r))


# -- a chunk of rows, column by column ----------------------------------------------
class _Bad(Exception):
    """Some row of the chunk is bad: check row by row to name it."""


def _whole(cells: tuple[str, ...], least: int, most: int) -> np.ndarray:
    try:
        a = np.fromiter(map(int, cells), np.int64)
    except (ValueError, OverflowError):  # OverflowError: beyond 64 bits, above any bound
        raise _Bad from None
    if a.min() < least or a.max() > most:  # a chunk has a row at least
        raise _Bad
    return a


def _optional(cells: tuple[str, ...], most: float, whole: bool) -> np.ndarray:
    """The cells as numbers: -1 for an empty cell of whole numbers, NaN for one of others."""
    try:
        a = np.fromiter((float(v or "0") for v in cells), np.float64)
    except ValueError:
        raise _Bad from None
    if not (np.isfinite(a).all() and (a >= 0).all() and (a <= most).all()):
        raise _Bad
    if whole and (a != np.floor(a)).any():
        raise _Bad
    empty = np.fromiter((not v for v in cells), bool)
    if whole:
        return np.where(empty, -1, a)
    a[empty] = np.nan
    return a


def _flags(cells: tuple[str, ...], allowed: frozenset[str]) -> np.ndarray:
    if not allowed.issuperset(cells):
        raise _Bad
    return np.fromiter((v == "1" for v in cells), bool)


_FLAG = frozenset(("0", "1"))
_OPT_FLAG = frozenset(("", "0", "1"))


class _Codes:
    """Names (arms, phases, actuators, prompt classes) as small whole numbers."""

    def __init__(self) -> None:
        self.code_of: dict[str, int] = {}

    def of(self, names: tuple[str, ...]) -> np.ndarray:
        """The codes of `names`, new names numbered on."""
        code_of = self.code_of
        return np.fromiter((code_of.setdefault(v, len(code_of)) for v in names), np.int32)

    def names(self) -> tuple[str, ...]:
        return tuple(map(sys.intern, self.code_of))


@dataclass(frozen=True)
class _Chunk:
    rows: list[tuple[int, list[str]]]  # (line number, cells)
    columns: dict[str, np.ndarray]  # the samples' columns but the time stamps
    stamps: tuple[str, ...]
    run_id: list[str]
    starts: np.ndarray  # True where a new run starts


class _Reader:
    """A results CSV read chunk by chunk: rows checked, runs told apart."""

    def __init__(self, path: str | os.PathLike[str], warn: WarnFn | None) -> None:
        self.path = Path(path)
        self.warn = warn
        self.codes = _Codes()
        self.header: tuple[str, ...]  # the file's first line, set by _rows
        self._last: tuple[int, str] | None = None  # (global_step, run id) of the row before
        self._first_line: dict[str, int] = {}  # run id -> line it was first seen at
        self._warned: set[str] = set()

    def chunks(self) -> Iterator[_Chunk]:
        rows: list[tuple[int, list[str]]] = []
        for row in self._rows():
            rows.append(row)
            if len(rows) == CHUNK_ROWS:
                yield self._chunk(rows)
                rows = []
        if rows:
            yield self._chunk(rows)

    def _rows(self) -> Iterator[tuple[int, list[str]]]:
        """(line number, cells) of each whole row; a torn last row is skipped with a warning."""
        p = self.path
        try:
            raw = p.open("rb")
        except FileNotFoundError:
            raise ResultsError(f"{p}: no such file") from None
        except OSError as e:
            raise ResultsError(f"{p}: cannot read ({e.strerror or e})") from None
        with io.TextIOWrapper(raw, encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh)
            try:
                self.header = header = tuple(next(reader, ()))
                if header[: len(ORIGINAL_COLUMNS)] != ORIGINAL_COLUMNS:
                    raise ResultsError(
                        f"{p} is not a results CSV: its header must start with "
                        f"{','.join(ORIGINAL_COLUMNS)}"
                    )
                pending: tuple[int, list[str]] | None = None
                for cells in reader:
                    if not cells:
                        continue
                    if pending is not None:
                        yield self._counted(*pending)
                    pending = (reader.line_num, cells)
            except csv.Error as e:
                raise ResultsError(f"{p}:{reader.line_num}: not a results row ({e})") from None
            except UnicodeDecodeError as e:
                raise ResultsError(f"{p}:{reader.line_num + 1}: not text ({e.reason})") from None
            if pending is None:
                return
            raw.seek(-1, os.SEEK_END)  # the file holds a header and a row
            torn = raw.read() != b"\n"
        lineno, cells = pending
        if torn or len(cells) != len(header):
            if self.warn is not None:
                self.warn(f"{p}:{lineno}: skipped a torn last row (cut short by a crash or a full disk)")
            return
        yield self._counted(lineno, cells)

    def _counted(self, lineno: int, cells: list[str]) -> tuple[int, list[str]]:
        if len(cells) != len(self.header):
            raise ResultsError(
                f"{self.path}:{lineno}: not a results row ({len(cells)} fields, the header "
                f"has {len(self.header)})"
            )
        return lineno, cells

    def row(self, cells: list[str]) -> dict[str, str]:
        """A row's cells by column (as many as the header has: see `_counted`)."""
        return dict(zip(self.header, cells, strict=True))

    def _chunk(self, rows: list[tuple[int, list[str]]]) -> _Chunk:
        lines = [n for n, _ in rows]
        cells = [c for _, c in rows]
        try:
            columns, g = self._parse(dict(zip(self.header, zip(*cells, strict=True), strict=True)))
        except _Bad:
            for n, c in rows:  # the first bad row, named as check_row names it
                try:
                    check_row(self.row(c))
                except ValueError as e:
                    raise ResultsError(f"{self.path}:{n}: not a results row ({e})") from None
            # Unreachable: _parse refuses a chunk only for a row check_row refuses.
            raise AssertionError from None
        run_id = self._cells_of("run_id", cells)
        stamps = tuple(self._cells_of("timestamp", cells))
        return _Chunk(rows, columns, stamps, run_id, self._starts(lines, g, run_id))

    def _cells_of(self, column: str, cells: list[list[str]]) -> list[str]:
        """One column's cells of the rows; "" each when the file has no such column."""
        if column not in self.header:
            return [""] * len(cells)
        i = self.header.index(column)
        return [c[i] for c in cells]

    def _parse(self, cols: dict[str, tuple[str, ...]]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The chunk's cells as the samples' columns but the time stamps (and
        global_step), in numbers of any width (ColumnsBuilder gives each its type);
        _Bad when any row is one check_row refuses."""
        absent = ("",) * len(cols["global_step"])  # a column the file lacks: all empty
        whole = {c: _whole(cols[c], *bounds) for c, bounds in WHOLE_COLUMNS.items()}
        success = _flags(cols["success"], _FLAG)
        modes = cols["mode"]
        if (whole["draft_length"] == 0).any():
            zero = {modes[i] for i in np.flatnonzero(whole["draft_length"] == 0)}
            if not all(map(_k0_allowed, zero)):
                raise _Bad
        settle = _flags(cols.get("settle", absent), _OPT_FLAG)
        if not CONDITIONS.issuperset(cols.get("condition", absent)):
            raise _Bad
        opt = {c: _optional(cols.get(c, absent), most, w) for c, (most, w) in OPTIONAL_COLUMNS.items()}
        canon = {m: canonical(m) for m in set(modes)}
        out = {
            "arm": self.codes.of(tuple(map(canon.__getitem__, modes))),
            "draft_length": whole["draft_length"],
            "success": success,
            "latency_ms": whole["latency_ms"],
            "tokens": whole["tokens"],
            **{c: opt[c] for c in ("drafted", "accepted", "predicted_n", "predicted_ms", "reload_ms")},
            "phase": self.codes.of(cols["phase"]),
            "round": opt["round"],
            "settle": settle,
            **{
                c: self.codes.of(cols.get(c, absent))
                for c in ("actuator", "prompt_class", "server_kind", "condition")
            },
            "concurrency": opt["concurrency"],
            "step_ms": opt["step_ms"],
        }
        return out, whole["global_step"]

    def _starts(self, lines: list[int], g: np.ndarray, run_id: list[str]) -> np.ndarray:
        """Where runs start: global_step does not grow, or run_id changes."""
        changed = np.fromiter(map(str.__ne__, run_id[1:], run_id), bool)
        last = self._last
        first = last is None or g[0] <= last[0] or run_id[0] != last[1]
        starts = np.concatenate(([first], (g[1:] <= g[:-1]) | changed))
        for i in np.flatnonzero(starts).tolist():
            prev = (int(g[i - 1]), run_id[i - 1]) if i else last
            self._out_of_order(lines[i], int(g[i]), run_id[i], prev)
        self._last = (int(g[-1]), run_id[-1])
        return starts

    def _out_of_order(self, line: int, g: int, rid: str, prev: tuple[int, str] | None) -> None:
        """Warn (once per run id) when a run id's rows are split: they are out of order."""
        first = self._first_line.setdefault(rid, line)
        if not rid or rid in self._warned or first == line:
            return
        assert prev is not None  # a file's first row is its run id's first
        self._warned.add(rid)
        if self.warn is None:
            return
        if prev[1] == rid:
            why = f"global_step {g} follows {prev[0]} within run {rid}"
        else:
            why = f"run {rid} (first seen at line {first}) comes back after run {prev[1] or '?'}"
        self.warn(f"{self.path}:{line}: rows out of order: {why}; read as another run from here")


def iter_rows(
    path: str | os.PathLike[str], warn: WarnFn | None = None
) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) of a results CSV, every row checked.

    A bad row raises ResultsError `file:line: reason`. A torn last row (no final
    newline, or the wrong field count) is skipped, with `warn` told.
    """
    reader = _Reader(path, warn)
    for chunk in reader.chunks():
        for n, cells in chunk.rows:
            yield n, reader.row(cells)


@dataclass(frozen=True)
class Run:
    index: int  # 1-based position in the file
    run_id: str
    rows: tuple[dict[str, str], ...]

    @property
    def samples(self) -> list[StepSample]:
        return [sample_from_row(r) for r in self.rows]


def read_runs(path: str | os.PathLike[str], warn: WarnFn | None = None) -> list[Run]:
    """Rows of a results CSV, split into runs where global_step restarts or run_id changes.

    Reads both this tool's CSVs and the original's 8-column ones. Keeps every row:
    `iter_runs` is the bounded-memory way.
    """
    reader = _Reader(path, warn)
    runs: list[list[dict[str, str]]] = []
    for chunk in reader.chunks():
        for i, (_, cells) in enumerate(chunk.rows):
            if chunk.starts[i]:
                runs.append([])
            runs[-1].append(reader.row(cells))
    return [Run(i + 1, rs[0].get("run_id") or "", tuple(rs)) for i, rs in enumerate(runs)]


@dataclass(frozen=True)
class RunSamples:
    """One run of a file, reduced to what the summary needs (its rows are not kept)."""

    index: int
    run_id: str
    rows: int
    samples: Samples


def iter_runs(path: str | os.PathLike[str], warn: WarnFn | None = None) -> Iterator[RunSamples]:
    """Each run of a results CSV as soon as it ends, its rows reduced to numpy columns
    as they are read: memory holds one run's columns, never the file's rows."""
    reader = _Reader(path, warn)
    runs = 0
    built: tuple[str, ColumnsBuilder] | None = None  # the run being read: its id, its columns

    def run(run_id: str, built: ColumnsBuilder) -> RunSamples:
        columns = built.build(reader.codes.names())
        return RunSamples(runs, run_id, len(columns), Samples(columns))

    for chunk in reader.chunks():
        bounds = [*np.flatnonzero(chunk.starts).tolist(), len(chunk.rows)]
        if bounds[0] != 0:
            bounds.insert(0, 0)
        for lo, hi in pairwise(bounds):
            if chunk.starts[lo]:
                if built is not None:
                    yield run(*built)
                runs += 1
                built = (chunk.run_id[lo], ColumnsBuilder())
            assert built is not None  # the first row starts a run
            built[1].add({c: a[lo:hi] for c, a in chunk.columns.items()}, chunk.stamps[lo:hi])
    if built is not None:
        yield run(*built)
