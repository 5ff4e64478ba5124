"""A run's samples kept as numpy columns, and views of them by index arrays.

One array per StepSample field: whole numbers as 32-bit ints (every column is bounded
well below 2**31, see reader.py), -1 for None where a row may leave one empty;
predicted_ms as floats, NaN for None; flags as bools; names as codes into one table;
time stamps as the strings read. A view (`Samples`) is the columns and the positions it holds: the
measured steps, or one arm's. The statistics read `StepSample`s: a run's are built
once, the first time any view is iterated, and shared by every view.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Sequence
from dataclasses import fields
from typing import overload

import numpy as np

from halospec_tui.stats import StepSample

FIELDS = tuple(f.name for f in fields(StepSample))
NAMES = ("arm", "phase", "actuator", "prompt_class", "server_kind", "condition")  # codes
OPTIONAL = ("drafted", "accepted", "predicted_n", "reload_ms", "round", "concurrency", "step_ms")
WHOLE = ("draft_length", "latency_ms", "tokens", *OPTIONAL)
# array.array type codes (a run's columns grow in them as it is read) and numpy's.
TYPECODES = {f: "i" for f in (*NAMES, *WHOLE)} | {"predicted_ms": "d"}
TYPECODES |= {"success": "b", "settle": "b", "timestamp": "O"}
DTYPES = {"i": np.int32, "d": np.float64, "b": np.bool_}
BUILD_ROWS = 4096  # samples built at a time


class Columns:
    """One run's samples, one array per StepSample field (see the module's docstring)."""

    def __init__(self, arrays: dict[str, np.ndarray], names: tuple[str, ...]) -> None:
        if set(arrays) != set(FIELDS):
            raise ValueError(f"one array per field of StepSample, not {sorted(arrays)}")
        self.arrays = arrays
        self.names = names
        self._built: np.ndarray | None = None  # the samples, an array of objects

    def __len__(self) -> int:
        return len(self.arrays["arm"])

    def samples(self) -> np.ndarray:
        """Every sample of the run, built once (a slice of rows at a time, so that the
        values on their way into the samples are never all held at once)."""
        if self._built is None:
            self._built = np.empty(len(self), object)
            for lo in range(0, len(self), BUILD_ROWS):
                at = slice(lo, lo + BUILD_ROWS)
                self._built[at] = list(map(StepSample, *(self._values(f, at) for f in FIELDS)))
        return self._built

    def _values(self, field: str, at: slice) -> list[object]:
        values: list[object] = self.arrays[field][at].tolist()
        if field in NAMES:
            return list(map(self.names.__getitem__, values))  # type: ignore[arg-type]
        if field == "predicted_ms":
            return [None if v != v else v for v in values]
        if field in OPTIONAL:
            values = [None if v == -1 else v for v in values]
        if field in WHOLE:  # one int object per value in the slice, not one per row
            one: dict[object, object] = {}
            return [one.setdefault(v, v) for v in values]
        return values


class ColumnsBuilder:
    """A run's columns as it is read, a chunk at a time. Each column grows in place
    (an `array.array`, reallocated where it lies): joining one array per chunk at the
    end would leave the chunks' memory behind as holes."""

    def __init__(self) -> None:
        self._arrays = {f: array(TYPECODES[f]) for f in FIELDS if f != "timestamp"}
        self._stamps: list[str] = []

    def add(self, columns: dict[str, np.ndarray], stamps: Sequence[str]) -> None:
        for f, a in columns.items():
            self._arrays[f].frombytes(a.astype(DTYPES[TYPECODES[f]]).tobytes())
        self._stamps += stamps

    def build(self, names: tuple[str, ...]) -> Columns:
        arrays = {f: np.frombuffer(a, DTYPES[a.typecode]) for f, a in self._arrays.items()}  # type: ignore[var-annotated]
        stamps = np.empty(len(self._stamps), object)
        stamps[:] = self._stamps
        return Columns({**arrays, "timestamp": stamps}, names)


class Samples(Sequence[StepSample]):
    """Some samples of a run, in order: all of them, or those at positions `at`."""

    def __init__(self, columns: Columns, at: np.ndarray | None = None) -> None:
        self.columns = columns
        self.at = at
        self._list: list[StepSample] | None = None
        self._measured: Samples | None = None
        self._groups: dict[str, Samples] | None = None

    def __len__(self) -> int:
        return len(self.columns) if self.at is None else len(self.at)

    def _samples(self) -> list[StepSample]:
        if self._list is None:
            built = self.columns.samples()
            self._list = (built if self.at is None else built[self.at]).tolist()
        return self._list

    @overload
    def __getitem__(self, i: int) -> StepSample: ...

    @overload
    def __getitem__(self, i: slice) -> list[StepSample]: ...

    def __getitem__(self, i: int | slice) -> StepSample | list[StepSample]:
        return self._samples()[i]

    def __iter__(self) -> Iterator[StepSample]:
        return iter(self._samples())

    def column(self, field: str) -> np.ndarray:
        """One field's values at this view's positions."""
        a = self.columns.arrays[field]
        return a if self.at is None else a[self.at]

    def _positions(self) -> np.ndarray:
        return np.arange(len(self.columns), dtype=np.int32) if self.at is None else self.at

    def measured(self) -> Samples:
        """The steps that are not settle rows, as a view (the same view each time)."""
        if self._measured is None:
            self._measured = Samples(self.columns, self._positions()[~self.column("settle")])
        return self._measured

    def by_arm_views(self) -> dict[str, Samples]:
        """One view per arm, arms in the order they first appear (the same views each
        time it is asked: their samples are gathered once)."""
        if self._groups is None:
            codes = self.column("arm")
            found, first = np.unique(codes, return_index=True)
            at = self._positions()
            self._groups = {
                self.columns.names[c]: Samples(self.columns, at[codes == c])
                for c in found[np.argsort(first)].tolist()
            }
        return self._groups
