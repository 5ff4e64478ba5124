"""Line series on a braille canvas, in numpy, pixel for pixel as plotext draws them.

Plotext turns every point of a line plot into pixels one Python call at a time
(`get_lines`, `hd_group`, `remove_outsiders`): a few milliseconds for a short run,
hundreds for a long noisy one, and the monitor builds its plots once a second. The
same steps over arrays take a fraction of a millisecond. Each function names the
plotext step it stands for; tests/test_braille.py checks each against it.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

DOTS_X, DOTS_Y = 2, 4  # pixels of a braille cell: 2 across, 4 up


def matrix_data(values: ArrayLike, lo: float, hi: float, bins: int) -> np.ndarray:
    """Each value's pixel on an axis of `bins` pixels across [lo, hi], as plotext's
    `get_matrix_data`: floor(round(0.5 + (bins - 1) (v - lo) / (hi - lo), 8))."""
    v = np.asarray(values, dtype=float)
    change = 0.5 + (bins - 1) * (v - lo) / (hi - lo)
    out = np.floor(np.round(change, 8))
    # numpy rounds by scaling, Python's round exactly: they can part within a hair
    # of a whole number, where the floor decides the pixel. Those few go Python's way.
    for i in np.flatnonzero(np.abs(change - np.rint(change)) < 1e-6):
        out[i] = math.floor(round(float(change[i]), 8))
    return out.astype(np.int64)


def decimate(px: np.ndarray, py: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Of each run of points in one pixel column (`px`, in order), the first, the
    lowest, the highest and the last, in their order. Within a column the lines through
    all of them and through these four light the same pixels, from lowest to highest;
    the lines between columns join the same points."""
    n = len(px)
    if n <= 4:
        return px, py
    starts = np.flatnonzero(np.r_[True, px[1:] != px[:-1]])
    if len(starts) * 4 >= n:  # too few points a column to gain anything
        return px, py
    ends = np.r_[starts[1:], n] - 1
    run = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, n]))
    index = np.arange(n)
    low = np.minimum.reduceat(py, starts)[run]
    high = np.maximum.reduceat(py, starts)[run]
    first_low = np.minimum.reduceat(np.where(py == low, index, n), starts)
    first_high = np.minimum.reduceat(np.where(py == high, index, n), starts)
    keep = np.unique(np.concatenate([starts, ends, first_low, first_high]))
    return px[keep], py[keep]


def line_pixels(px: np.ndarray, py: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pixels of the lines joining the points in turn, as plotext's `get_lines`:
    each segment is max(|dx|, |dy|) + 1 evenly spaced points truncated to whole
    pixels, less its last (the next segment's first), then the very last point."""
    n = len(px)
    if n == 0:
        return px, py
    x0, x1, y0, y1 = px[:-1], px[1:], py[:-1], py[1:]
    length = np.maximum(np.abs(x1 - x0), np.abs(y1 - y0)) + 1
    count = length - 1  # points each segment adds
    seg = np.repeat(np.arange(n - 1), count)
    k = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
    steps = np.maximum(length - 1, 1)
    # linspace(lower, upper, length): lower + k * ((upper - lower) / (length - 1))
    sx = np.where(length > 1, (x1 - x0) / steps, 0.0)
    sy = np.where(length > 1, (y1 - y0) / steps, 0.0)
    xs = np.trunc(x0[seg] + k * sx[seg]).astype(np.int64)
    ys = np.trunc(y0[seg] + k * sy[seg]).astype(np.int64)
    return np.r_[xs, px[-1:]], np.r_[ys, py[-1:]]


def braille_cells(
    px: np.ndarray, py: np.ndarray, cols: int, rows: int
) -> list[tuple[int, int, tuple[int, ...]]]:
    """Lit pixels grouped into braille cells inside a canvas of `cols` x `rows` cells,
    as plotext's `hd_group` then `remove_outsiders`: (column, row, dots), the dots top
    row first, left before right (plotext's key for the braille character)."""
    if len(px) == 0:
        return []
    cx, cy = px // DOTS_X, py // DOTS_Y
    bit = (DOTS_Y - 1 - py % DOTS_Y) * DOTS_X + px % DOTS_X  # place in the dots tuple
    inside = (cx >= 0) & (cx < cols) & (cy >= 0) & (cy < rows)
    cx, cy, bit = cx[inside], cy[inside], bit[inside]
    if len(cx) == 0:
        return []
    key = cx * rows + cy
    order = np.argsort(key, kind="stable")
    key, bit = key[order], bit[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    masks = np.bitwise_or.reduceat(1 << bit, starts)
    cells = key[starts]
    return [
        (int(c) // rows, int(c) % rows, _DOTS[int(m)]) for c, m in zip(cells, masks, strict=True)
    ]


_DOTS = [tuple((m >> p) & 1 for p in range(DOTS_X * DOTS_Y)) for m in range(256)]
