"""Each numpy step of the braille lines equals the plotext step it stands for."""

import numpy as np
import pytest
from plotext import _utility as ut

from halospec_tui.ui.braille import braille_cells, decimate, line_pixels, matrix_data


def test_matrix_data_is_plotexts_get_matrix_data():
    values = [i / 4 for i in range(-40, 4001)] + [0.1 + 0.2, 1 / 3, 2 / 3, 999.9999999999]
    for lo, hi, bins in ((0.5, 1000.0, 241), (-10.0, 1000.0, 100), (1.0, 7.0, 296), (0, 1, 2)):
        assert matrix_data(values, lo, hi, bins).tolist() == ut.get_matrix_data(values, [lo, hi], bins)


@pytest.mark.parametrize("seed", range(8))
def test_line_pixels_are_plotexts_get_lines(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    px = np.sort(rng.integers(0, 200, n))  # x ascending, as steps are
    py = rng.integers(0, 90, n)
    py[: n // 3] = py[0]  # flat runs and repeated points too
    xs, ys = line_pixels(px, py)
    want_x, want_y = ut.get_lines(px.tolist(), py.tolist(), ["m"] * n)[:2]
    assert (xs.tolist(), ys.tolist()) == (want_x, want_y)


def test_line_pixels_by_hand():
    xs, ys = line_pixels(np.array([0, 3, 3]), np.array([0, 1, 4]))
    # (0,0)->(3,1): 4 points 0, 1/3, 2/3, 1 truncated, less the last; (3,1)->(3,4): rows 1-3; end
    assert (xs.tolist(), ys.tolist()) == ([0, 1, 2, 3, 3, 3, 3], [0, 0, 0, 1, 2, 3, 4])
    assert [a.tolist() for a in line_pixels(np.array([5]), np.array([7]))] == [[5], [7]]


def plotext_cells(px, py, cols, rows):
    """plotext's hd_group then remove_outsiders, as {(col, row): braille character}."""
    f = [2] * len(px), [4] * len(px)
    x, y, dots = ut.hd_group(px.tolist(), py.tolist(), *f)
    markers = [ut.get_hd_marker(d) for d in dots]
    x, y, markers = ut.remove_outsiders(x, y, cols, rows, markers)
    return dict(zip(zip(x, y, strict=True), markers, strict=True))


@pytest.mark.parametrize("seed", range(6))
def test_braille_cells_are_plotexts_hd_group_inside_the_canvas(seed):
    rng = np.random.default_rng(seed)
    px = rng.integers(-6, 90, 500)
    py = rng.integers(-9, 70, 500)
    cols, rows = 40, 15  # 80 x 60 pixels: some points fall outside
    mine = {(c, r): ut.get_hd_marker(d) for c, r, d in braille_cells(px, py, cols, rows)}
    assert mine == plotext_cells(px, py, cols, rows)
    assert len(mine) > 100


def test_decimate_keeps_first_lowest_highest_last_of_each_column_in_order():
    px = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    py = np.array([5, 9, 1, 4, 4, 4, 2, 2, 8, 3, 6, 7])
    # column 0: first 5, high 9, low 1, last 4 (the 6th); column 1: first 2 (also the
    # lowest: the first of equal lows), high 8, last 7
    x, y = decimate(px, py)
    assert (x.tolist(), y.tolist()) == ([0, 0, 0, 0, 1, 1, 1], [5, 9, 1, 4, 2, 8, 7])


def test_decimate_leaves_series_it_cannot_shorten():
    px, py = np.array([0, 0, 0]), np.array([3, 1, 2])
    assert decimate(px, py) == (px, py)
    px = np.array([0, 0, 0, 1, 1, 1, 2, 2, 3, 3])  # 4 points a column or fewer on average
    py = np.arange(10) % 3
    x, y = decimate(px, py)
    assert x is px and y is py


@pytest.mark.parametrize("seed", range(6))
def test_decimated_lines_light_the_same_pixels(seed):
    rng = np.random.default_rng(seed)
    n = 3000
    px = np.sort(rng.integers(0, 150, n))
    py = (40 + 30 * rng.standard_normal(n)).astype(np.int64)
    fx, fy = decimate(px, py)
    assert len(fx) <= 4 * 150 < n
    every = set(zip(*(a.tolist() for a in line_pixels(px, py)), strict=True))
    fewer = set(zip(*(a.tolist() for a in line_pixels(fx, fy)), strict=True))
    assert fewer == every
