"""CSV rows and summaries: writing, reading back, and the original's summary table.

The summary is always computed from rows (`StepSample`s), whether they come from a
live run or from a CSV read later: one code path.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import sys
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeAlias

from halospec_tui.arms import NOSPEC, canonical, is_adaptive
from halospec_tui.errors import HalospecError
from halospec_tui.events import KnobVerdict, StepRecord
from halospec_tui.formats import summary_cells
from halospec_tui.knob import check_knob
from halospec_tui.stats import (
    ArmSummary,
    PhaseRegret,
    StepSample,
    adaptive_regret,
    summarize_arm,
    winner,
)
from halospec_tui.verdict import (
    DEFAULT_TOLERANCE,
    Decision,
    Verdict,
    by_arm,
    decide,
    decision_of,
    main_actuator,
    verdict_dict,
    verdict_lines,
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
# The CSV keeps the original's word for an arm: column `mode` holds StepRecord.arm.
FIELD_OF_COLUMN = {"mode": "arm"}
EXTRA_COLUMNS = tuple(
    f.name for f in fields(StepRecord) if f.name not in (*ORIGINAL_COLUMNS, *FIELD_OF_COLUMN.values())
)
COLUMNS = ORIGINAL_COLUMNS + EXTRA_COLUMNS
_FIELDS = tuple(FIELD_OF_COLUMN.get(c, c) for c in COLUMNS)  # StepRecord's field per column
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
    return [_cell(getattr(r, f)) for f in _FIELDS]


def torn_path(csv_path: str | os.PathLike[str]) -> Path:
    """Where a torn last row is moved aside: next to the CSV, `.torn` appended."""
    return Path(f"{csv_path}.torn")


def _tail_start(fh: Any, end: int) -> int:
    """Offset just past the last b"\n" before `end` (0 when there is none)."""
    block = 65536
    for stop in range(end, 0, -block):
        start = max(0, stop - block)
        fh.seek(start)
        i: int = fh.read(stop - start).rfind(b"\n")
        if i >= 0:
            return start + i + 1
    return 0


def repair_torn_tail(path: str | os.PathLike[str], columns: int = len(COLUMNS)) -> str | None:
    """Move a torn last row (no final newline, or the wrong field count) aside.

    Called once the header line is known to be right. The fragment is appended to
    `<path>.torn` and the CSV is cut back to its last whole row, so the next row
    does not glue onto it. Returns what was done, for people, or None when the file
    was whole.
    """
    p = Path(path)
    with p.open("r+b") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size == 0:
            return None
        fh.seek(size - 1)
        whole = fh.read(1) == b"\n"
        end = size - 1 if whole else size
        start = _tail_start(fh, end)
        if start == 0:  # the header is the only line (already checked by the caller)
            if not whole:
                fh.seek(size)
                fh.write(b"\n")  # so the first row does not glue onto it
            return None
        fh.seek(start)
        last = fh.read()
        if whole:
            try:
                cells = next(csv.reader([last.decode()]))
            except (UnicodeDecodeError, csv.Error):
                cells = []
            if len(cells) == columns:
                return None
        torn = torn_path(p)
        with torn.open("ab") as out:
            out.write(last if whole else last + b"\n")
            out.flush()
            os.fsync(out.fileno())
        fh.truncate(start)
        fh.flush()
        os.fsync(fh.fileno())
    return (
        f"{p}: its last row was torn (cut short by a crash or a full disk); "
        f"moved its {len(last)} bytes to {torn} and appending after the last whole row"
    )


class CsvWriter:
    """Appends rows, writing the header only for a new file; flushes every row.

    A torn last row left by a crash is moved aside first (see `repair_torn_tail`);
    `repaired` then says so.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fh: TextIO | None = None
        self.repaired: str | None = None

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
            try:
                self.repaired = repair_torn_tail(self.path)
            except OSError as e:
                raise ResultsError(f"cannot repair {self.path}: {e.strerror or e}") from e
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
        """Append one row whole, or not at all: when the write fails (a full disk, a
        size limit), the file is cut back to where the row began and the error raised."""
        assert self._fh is not None, "open() first"
        line = io.StringIO()
        csv.writer(line, lineterminator="\n").writerow(record_cells(r))
        fd = self._fh.fileno()
        self._fh.flush()
        start = os.lseek(fd, 0, os.SEEK_END)
        try:
            self._fh.write(line.getvalue())
            self._fh.flush()
            os.fsync(fd)
        except OSError:
            self._drop_partial(start)
            raise

    def _drop_partial(self, start: int) -> None:
        """Forget what is buffered and cut the file back to `start` (best effort)."""
        assert self._fh is not None
        with contextlib.suppress(OSError):  # may fail again flushing the torn row
            self._fh.close()
        self._fh = None
        with contextlib.suppress(OSError), open(self.path, "r+b") as raw:
            raw.truncate(start)

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
        arm=sys.intern(canonical(row["mode"])),
        draft_length=int(row["draft_length"]),
        success=row["success"].strip() == "1",
        latency_ms=int(row["latency_ms"]),
        tokens=int(row["tokens"]),
        drafted=_opt_int(row.get("drafted", "")),
        accepted=_opt_int(row.get("accepted", "")),
        predicted_n=_opt_int(row.get("predicted_n", "")),
        predicted_ms=_opt_float(row.get("predicted_ms", "")),
        reload_ms=_opt_int(row.get("reload_ms", "")),
        phase=sys.intern(row.get("phase", "steady")),
        round=_opt_int(row.get("round", "") or ""),
        settle=(row.get("settle") or "").strip() == "1",
        actuator=sys.intern(row.get("actuator") or ""),
        timestamp=row.get("timestamp") or "",
        prompt_class=sys.intern(row.get("prompt_class") or ""),
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


_CHUNK = 4096  # samples built at a time when a SampleColumns is iterated
KEEP_BUILT = 40_000  # built samples a SampleColumns keeps for its views, at most
_WIDER = {"b": "h", "h": "i", "i": "q"}  # array type codes, each the next size up
if TYPE_CHECKING:
    Ints: TypeAlias = "array[int] | list[int | None]"


def _append_index(col: array[int], v: int) -> array[int]:
    """Append `v` (0 or more, below 2**63: a code or an offset), widening the array as needed."""
    while True:
        try:
            col.append(v)
            return col
        except OverflowError:
            col = array(_WIDER[col.typecode], col)


def _append_int(col: Ints, v: int | None) -> Ints:
    """Append `v` to a column of whole numbers >= 0 or None (stored as -1), in as few
    bytes each as its values need. A value no array holds (negative, or 2**63 and above)
    turns the column into a list of the values as they are. Returns the column."""
    while isinstance(col, array):
        if v is not None and v < 0:
            break
        try:
            col.append(-1 if v is None else v)
            return col
        except OverflowError:
            if col.typecode not in _WIDER:
                break
            col = array(_WIDER[col.typecode], col)
    if isinstance(col, array):
        col = [None if x < 0 else x for x in col]
    col.append(v)
    return col


def _pick(col: Sequence[Any], at: Sequence[int]) -> Sequence[Any]:
    """col[i] for each i of `at`: a slice for a range of positions, else one C-level map."""
    if isinstance(at, range):
        return col[at.start : at.stop : at.step]
    return list(map(col.__getitem__, at))


def _next(at: Sequence[int]) -> Sequence[int]:
    """The positions one further on."""
    if isinstance(at, range):
        return range(at.start + 1, at.stop + 1, at.step)
    return [i + 1 for i in at]


def _make_samples(columns: Sequence[Sequence[Any]]) -> list[StepSample]:
    """StepSamples from one sequence per field (in field order), equal to StepSample(*row).

    Filled a field at a time through its slot, for every sample at once: twice as fast
    as __init__, which sets each field through the frozen check (StepSample has slots
    and no __post_init__; tests pin both)."""
    out = [object.__new__(StepSample) for _ in columns[0]]
    for i, f in enumerate(fields(StepSample)):
        list(map(StepSample.__dict__[f.name].__set__, out, columns[i]))
    return out


class SampleColumns(Sequence[StepSample]):
    """A run's samples kept column by column: numbers in arrays as narrow as their
    values allow, names as codes, time stamps in one byte string. A 200,000-row run
    takes about 14 MB instead of the 90 MB of one `StepSample` object per row.
    Iterating builds the samples a chunk at a time, and `by_arm_views` splits the store into
    per-mode views that share its columns, so a summary never builds every sample at once.

    A read-only sequence like a list of the same samples, in the same order; `append`
    adds one at the end (not to a view).
    """

    _INTS = ("draft_length", "latency_ms", "tokens", "drafted", "accepted", "predicted_n",
             "reload_ms", "round")  # fmt: skip
    _NAMES = ("arm", "phase", "actuator", "prompt_class")  # stored as codes into _names

    def __init__(self, base: SampleColumns | None = None, at: array[int] | None = None) -> None:
        self._base = base
        self._at = at  # a view: its positions in `base`
        self._groups: dict[str, SampleColumns] | None = None  # by_arm_views, once asked
        self._built: list[StepSample] | None = None  # a small view's samples, kept a while
        if base is not None:
            return
        self._kept: list[SampleColumns] = []  # views whose samples are built, oldest first
        self._ints: dict[str, Ints] = {c: array("b") for c in self._INTS}
        self._codes: dict[str, array[int]] = {c: array("b") for c in self._NAMES}
        self._predicted_ms = array("d")  # None as NaN (a results row never holds a NaN)
        self._success = bytearray()  # 1 or 0
        self._settle = bytearray()
        self._names: list[str] = []
        self._code_of: dict[str, int] = {}
        self._stamps = bytearray()  # every time stamp, UTF-8, one after another
        self._stamp_at = array("b", [0])  # where each one starts in _stamps, then the end
        self._nones: set[str] = set()  # columns holding a None (-1 or NaN) somewhere
        self._n = 0

    def append(self, s: StepSample) -> None:
        if self._base is not None:
            raise TypeError("a view of a SampleColumns is read-only")
        ints = self._ints
        for c in self._INTS:
            v = getattr(s, c)
            if v is None:
                self._nones.add(c)
            ints[c] = _append_int(ints[c], v)
        for c in self._NAMES:
            name = getattr(s, c)
            code = self._code_of.get(name)
            if code is None:
                code = self._code_of[name] = len(self._names)
                self._names.append(sys.intern(name))
            self._codes[c] = _append_index(self._codes[c], code)
        if s.predicted_ms is None:
            self._nones.add("predicted_ms")
        self._predicted_ms.append(math.nan if s.predicted_ms is None else s.predicted_ms)
        self._success.append(s.success)
        self._settle.append(s.settle)
        self._stamps += s.timestamp.encode(errors="surrogatepass")
        self._stamp_at = _append_index(self._stamp_at, len(self._stamps))
        self._n += 1

    def _store(self) -> SampleColumns:
        return self if self._base is None else self._base

    def _positions(self) -> Sequence[int]:
        return range(self._n) if self._at is None else self._at

    def __len__(self) -> int:
        return self._n if self._at is None else len(self._at)

    def _build(self, at: Sequence[int]) -> list[StepSample]:
        """The samples at positions `at` of the store, built column by column."""
        st = self._store()
        ints = {}
        for c in self._INTS:
            col = st._ints[c]
            v = _pick(col, at)
            none_as_minus_1 = isinstance(col, array) and c in st._nones
            ints[c] = [None if x < 0 else x for x in v] if none_as_minus_1 else v
        ms = _pick(st._predicted_ms, at)
        if "predicted_ms" in st._nones:
            ms = [None if x != x else x for x in ms]
        names = st._names.__getitem__
        mode, phase, actuator, pclass = (
            list(map(names, _pick(st._codes[c], at))) for c in self._NAMES
        )
        blob = st._stamps
        stamps = list(
            map(
                lambda a, b: str(blob[a:b], errors="surrogatepass"),
                _pick(st._stamp_at, at),
                _pick(st._stamp_at, _next(at)),
            )
        )
        return _make_samples(
            (
                mode,
                ints["draft_length"],
                list(map(bool, _pick(st._success, at))),
                ints["latency_ms"],
                ints["tokens"],
                ints["drafted"],
                ints["accepted"],
                ints["predicted_n"],
                ms,
                ints["reload_ms"],
                phase,
                ints["round"],
                list(map(bool, _pick(st._settle, at))),
                actuator,
                stamps,
                pclass,
            )
        )

    def __iter__(self) -> Iterator[StepSample]:
        if self._built is not None:
            return iter(self._built)
        if self._at is not None and len(self._at) <= KEEP_BUILT:
            return iter(self._keep())
        return self._chunks()

    def _chunks(self) -> Iterator[StepSample]:
        at = self._positions()
        for lo in range(0, len(at), _CHUNK):
            yield from self._build(at[lo : lo + _CHUNK])

    def _keep(self) -> list[StepSample]:
        """Build this view's samples and keep them (a summary reads one arm many times
        over), letting go of those kept longest so that at most KEEP_BUILT are kept."""
        kept = self._store()._kept
        while kept and sum(len(v) for v in kept) + len(self) > KEEP_BUILT:
            kept.pop(0)._built = None
        built = self._build(self._positions())
        kept.append(self)
        self._built = built
        return built

    def __getitem__(self, i: int) -> StepSample:  # type: ignore[override]
        if not isinstance(i, int):
            raise TypeError("SampleColumns takes one whole-number index")
        return self._build([self._positions()[i]])[0]

    def measured(self) -> SampleColumns:
        """The steps that are not settle rows, as a view."""
        settle = self._store()._settle
        at = array("b")
        for i in self._positions():
            if not settle[i]:
                at = _append_index(at, i)
        return SampleColumns(self._store(), at)

    def by_arm_views(self) -> dict[str, SampleColumns]:
        """One view per mode, modes in the order they first appear (the same views
        each time it is asked)."""
        if self._groups is not None:
            return self._groups
        st = self._store()
        codes = st._codes["arm"]
        at: dict[int, array[int]] = {}
        for i in self._positions():
            c = codes[i]
            pos = at.get(c)
            at[c] = _append_index(array("b") if pos is None else pos, i)
        self._groups = {st._names[c]: SampleColumns(st, pos) for c, pos in at.items()}
        return self._groups


@dataclass
class RunSamples:
    """One run of a file, reduced to what the summary needs (rows not kept)."""

    index: int
    run_id: str
    rows: int
    samples: SampleColumns


WarnFn = Callable[[str], None]
_INT_COLUMNS = {  # column: smallest value allowed
    "global_step": 0, "step": 0, "draft_length": 0, "latency_ms": 0, "tokens": 0,
}  # fmt: skip
_OPT_INT_COLUMNS = ("drafted", "accepted", "predicted_n", "reload_ms", "round", "block_pos")
_OPT_FLOAT_COLUMNS = ("predicted_ms",)


def _short(v: str) -> str:
    return repr(v if len(v) <= 40 else v[:40] + "...")


def check_row(row: dict[str, str]) -> None:
    """Raise ValueError naming the first column that no results row can hold."""
    for c, least in _INT_COLUMNS.items():
        v = row.get(c)
        if v is None:
            raise ValueError(f"{c} is missing")
        try:
            n = int(v)
        except ValueError:
            raise ValueError(f"{c}={_short(v)} is not an integer") from None
        if n < least:
            raise ValueError(f"{c}={n} is below {least}")
    if row.get("success") not in ("0", "1"):
        raise ValueError(f"success={_short(row.get('success') or '')} must be 0 or 1")
    mode = row.get("mode") or ""
    if row.get("draft_length") == "0" and not (canonical(mode) == NOSPEC or is_adaptive(mode)):
        # K 0 is no speculation: the nospec arm, or an adaptive arm that chose it
        raise ValueError(f"draft_length=0 belongs to nospec or an adaptive arm, not {_short(mode)}")
    if row.get("settle") not in (None, "", "0", "1"):
        raise ValueError(f"settle={_short(row.get('settle') or '')} must be 0 or 1")
    for c in _OPT_INT_COLUMNS + _OPT_FLOAT_COLUMNS:
        v = row.get(c) or ""
        if not v:
            continue
        try:
            f = float(v)
        except ValueError:
            raise ValueError(f"{c}={_short(v)} is not a number") from None
        if not math.isfinite(f) or f < 0:
            raise ValueError(f"{c}={_short(v)} must be a finite number >= 0")


def iter_rows(
    path: str | os.PathLike[str], warn: WarnFn | None = None
) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) of a results CSV, one at a time, each checked.

    A bad row raises ResultsError `file:line: reason`. A torn last row (no final
    newline, or the wrong field count) is skipped, with `warn` told.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
        with p.open("rb") as raw:
            raw.seek(max(0, size - 1))
            torn_tail = size > 0 and raw.read(1) != b"\n"
        fh = p.open(newline="", encoding="utf-8")
    except FileNotFoundError:
        raise ResultsError(f"{p}: no such file") from None
    except OSError as e:
        raise ResultsError(f"{p}: cannot read ({e.strerror or e})") from None
    with fh:
        reader = csv.reader(fh)
        try:
            header = tuple(next(reader, ()))
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
                    yield _checked(p, header, *pending)
                pending = (reader.line_num, cells)
        except csv.Error as e:
            raise ResultsError(f"{p}:{reader.line_num}: not a results row ({e})") from None
        except UnicodeDecodeError as e:
            raise ResultsError(f"{p}:{reader.line_num + 1}: not text ({e.reason})") from None
        if pending is not None:
            lineno, cells = pending
            if torn_tail or len(cells) != len(header):
                if warn is not None:
                    warn(
                        f"{p}:{lineno}: skipped a torn last row "
                        "(cut short by a crash or a full disk)"
                    )
                return
            yield _checked(p, header, lineno, cells)


def _checked(
    p: Path, header: tuple[str, ...], lineno: int, cells: list[str]
) -> tuple[int, dict[str, str]]:
    if len(cells) != len(header):
        raise ResultsError(
            f"{p}:{lineno}: not a results row ({len(cells)} fields, the header has "
            f"{len(header)})"
        )
    row = dict(zip(header, cells, strict=True))
    try:
        check_row(row)
    except ValueError as e:
        raise ResultsError(f"{p}:{lineno}: not a results row ({e})") from None
    return lineno, row


def _split_runs(
    rows: Iterator[tuple[int, dict[str, str]]],
) -> Iterator[tuple[bool, dict[str, str]]]:
    """(starts a new run, row): a run ends where global_step restarts or run_id changes."""
    prev_step = 0
    prev_id: str | None = None
    first = True
    for _, row in rows:
        g = int(row["global_step"])
        rid = row.get("run_id") or ""
        yield first or g <= prev_step or (prev_id is not None and rid != prev_id), row
        first = False
        prev_step, prev_id = g, rid


def read_runs(path: str | os.PathLike[str], warn: WarnFn | None = None) -> list[Run]:
    """Rows of a results CSV, split into runs where global_step restarts or run_id changes.

    Reads both this tool's CSVs and the original's 8-column ones. Keeps every row:
    `iter_runs` is the bounded-memory way.
    """
    runs: list[list[dict[str, str]]] = []
    for new, row in _split_runs(iter_rows(path, warn)):
        if new:
            runs.append([])
        runs[-1].append(row)
    return [Run(i + 1, rs[0].get("run_id") or "", tuple(rs)) for i, rs in enumerate(runs)]


def iter_runs(path: str | os.PathLike[str], warn: WarnFn | None = None) -> Iterator[RunSamples]:
    """Each run of a results CSV as soon as it ends, rows reduced to samples as read:
    memory holds one run's samples, never the file's rows."""
    current: RunSamples | None = None
    for new, row in _split_runs(iter_rows(path, warn)):
        if new:
            if current is not None:
                yield current
            index = 1 if current is None else current.index + 1
            current = RunSamples(index, row.get("run_id") or "", 0, SampleColumns())
        assert current is not None
        current.samples.append(sample_from_row(row))
        current.rows += 1
    if current is not None:
        yield current


# -- summaries ----------------------------------------------------------------
@dataclass(frozen=True)
class Report:
    summaries: tuple[ArmSummary, ...]
    winner: str | None
    winner_score: float | None
    knob: KnobVerdict
    regret: tuple[PhaseRegret, ...] = ()
    class_regret: tuple[PhaseRegret, ...] = ()  # per prompt class, when classes vary
    verdict: Verdict | None = None
    decision: Decision | None = None
    actuator: str = ""
    nospec_drafted: int | None = None


def build_report(
    samples: Sequence[StepSample],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
) -> Report:
    """Everything the summaries say, from rows alone (settle rows are not measurements)."""
    rows: Sequence[StepSample]
    if isinstance(samples, SampleColumns):  # a long run read back: views, not copies
        rows = samples.measured()
    else:
        rows = [s for s in samples if not s.settle]
    groups = by_arm(rows)  # a SampleColumns splits itself into per-mode views
    # As stats.summarize (modes in order of appearance), one mode's samples at a time.
    summaries = tuple(summarize_arm(m, list(g)) for m, g in groups.items())
    best = winner(summaries)
    nospec = [s.drafted for s in rows if s.arm == NOSPEC and s.success and s.drafted]
    decision = decision_of(samples)
    return Report(
        summaries=summaries,
        winner=best.arm if best else None,
        winner_score=best.score if best else None,
        knob=check_knob(rows),
        regret=tuple(adaptive_regret(rows)),
        class_regret=(
            tuple(adaptive_regret(rows, key="prompt_class"))
            if len({s.prompt_class for s in rows if s.prompt_class}) > 1
            else ()
        ),
        verdict=decide(rows, tolerance=tolerance, eliminated=decision.dropped) if rows else None,
        decision=decision,
        actuator=main_actuator(samples),
        nospec_drafted=sum(nospec) if nospec else None,
    )


def verdict_section(report: Report) -> list[str]:
    if report.verdict is None or report.decision is None:
        return []
    return verdict_lines(report.verdict, report.decision, report.actuator, report.nospec_drafted)


def regret_lines(report: Report) -> list[str]:
    return [
        f"{r.arm} vs best fixed in {r.phase}: {r.adaptive_ms:.1f} ms vs {r.best_ms:.1f} ms "
        f"({r.best_fixed}), regret {_percent(r.regret)}"
        for r in report.regret
    ] + [
        f"{r.arm} vs best fixed on {r.phase} prompts: {r.adaptive_ms:.1f} ms vs "
        f"{r.best_ms:.1f} ms ({r.best_fixed}), regret {_percent(r.regret)}"
        for r in report.class_regret
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
                    c.arm, c.steps, c.success, c.failures, c.avg, c.median, c.p95, c.min,
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
    w = max([10, *(len(s.arm) for s in report.summaries)])
    lines = [
        "",
        f"{'mode':<{w}} {'drafted':>9} {'accepted':>9} {'accept%':>8} {'srv tok/s':>10} "
        f"{'reloads':>8} {'reload ms':>10}",
    ]
    for s in report.summaries:
        c = summary_cells(s)
        lines.append(
            f"{c.arm:<{w}} {c.drafted:>9} {c.accepted:>9} {c.acceptance:>8} "
            f"{c.server_tps:>10} {c.reloads:>8} {c.reload_ms:>10}"
        )
    adapting = adapting_lines(report)
    if adapting:
        lines += ["", *adapting]
    if report.regret or report.class_regret:
        lines.append("")
        lines += regret_lines(report)
    marker = {"effective": "OK", "no-effect": "WARNING", "unverified": "NOTE"}[report.knob.status]
    lines.append(f"\n[{marker}] {report.knob.message}")
    lines += verdict_section(report)
    return "\n".join(lines)


def adapting_lines(report: Report) -> list[str]:
    """What adapting cost each adaptive arm: its K changes and their reloads, and its
    tokens/s without and with them (the verdict ranks on the latter)."""
    out = []
    for s in report.summaries:
        if not s.is_adaptive:
            continue
        tps = "-" if s.throughput is None else f"{s.throughput:.1f}"
        incl = "-" if s.throughput_incl is None else f"{s.throughput_incl:.1f}"
        out.append(
            f"{s.arm}: {s.k_changes} K changes, {s.adapting_ms} ms reloading for them; "
            f"{tps} tok/s without, {incl} tok/s with them"
        )
    return out


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
                    "arm": r.arm,
                }
                for r in report.regret
            ],  # fmt: skip
            "class_regret": [
                {"prompt_class": r.phase, "best_fixed": r.best_fixed, "best_ms": r.best_ms,
                 "arm_ms": r.adaptive_ms, "regret": r.regret, "arm": r.arm}
                for r in report.class_regret
            ],  # fmt: skip
            "verdict": (
                verdict_dict(report.verdict, report.decision, report.actuator)
                if report.verdict is not None and report.decision is not None
                else None
            ),
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
        name = md_escape(s.arm)
        if s.arm == report.winner:
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
            label = "Adaptive" if s.arm == "adaptive" else md_escape(s.arm)
            lines.append(f"\n{label}: {s.k_changes} K changes, converged at step {conv} (k=5).")
    adapting = adapting_lines(report)
    if adapting:
        lines += [""] + [f"- {md_escape(line)}" for line in adapting]
    if report.regret or report.class_regret:
        lines += [""] + [f"- {md_escape(line)}" for line in regret_lines(report)]
    lines += ["", f"Knob check: **{report.knob.status}**: {md_escape(report.knob.message)}", ""]
    verdict = verdict_section(report)
    if verdict:
        lines += ["## Verdict", "", "```text", *verdict[1:], "```", ""]
    return "\n".join(lines)


def summary_paths(csv_path: str | os.PathLike[str]) -> dict[str, Path]:
    p = Path(csv_path)
    stem = p.with_suffix("") if p.suffix == ".csv" else p
    return {
        "txt": Path(f"{stem}_summary.txt"),
        "json": Path(f"{stem}_summary.json"),
        "md": Path(f"{stem}_summary.md"),
    }


class SummaryWriteError(OSError):
    """Some summary files could not be written; the others were."""

    def __init__(self, written: list[Path], failed: list[tuple[Path, str]]) -> None:
        super().__init__("; ".join(f"{p}: {why}" for p, why in failed))
        self.written = written
        self.failed = failed


def _write_whole(path: Path, text: str) -> None:
    """Write `path` entirely or not at all (a temporary file, then a rename)."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


def write_summaries(
    csv_path: str | os.PathLike[str], report: Report, meta: dict[str, Any] | None = None
) -> list[Path]:
    """Write the txt, json and md summaries, each whole or not at all.

    Every file is tried; when any fails, SummaryWriteError lists which (and why)
    and which were written.
    """
    paths = summary_paths(csv_path)
    texts = {
        "txt": summary_text(report),
        "json": summary_json(report, meta) + "\n",
        "md": summary_markdown(report),
    }
    written: list[Path] = []
    failed: list[tuple[Path, str]] = []
    for kind, path in paths.items():
        try:
            _write_whole(path, texts[kind])
        except OSError as e:
            failed.append((path, e.strerror or str(e)))
        else:
            written.append(path)
    if failed:
        raise SummaryWriteError(written, failed)
    return written
