"""Numeric helpers of the depth analysis: least squares, correlation, means, percentiles and
stepping back over NaN holes, in plain numpy reductions (no BLAS threads); no I/O."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Fit:
    """Ordinary least squares y = intercept + Σ betas·x; None where not identifiable."""

    betas: tuple[float | None, ...]
    intercept: float | None
    r2: float | None
    n: int


def none_if_nan(value: float) -> float | None:
    return None if not np.isfinite(value) else float(value)


def fit_ols(x: FloatArray, y: FloatArray) -> Fit:
    """OLS of y on the columns of x with an intercept.

    Needs at least k + 2 observations for k regressors (fewer fit exactly and say nothing);
    a regressor with no variance gets beta None, and r2 is None when y has no variance.

    Solved on centered data through the k x k normal equations (scaled to a correlation
    matrix), with plain numpy reductions: a BLAS least-squares call on the n x (k + 1)
    design would wake BLAS threads that then spin beside the rest of the analysis. A
    degenerate or ill-conditioned design is solved by `lstsq` on the full design, as the
    normal equations would lose precision there (and `lstsq` picks the minimum-norm fit).
    """
    x2 = x.reshape(-1, 1) if x.ndim == 1 else x
    n, k = x2.shape
    if n < k + 2:
        return Fit((None,) * k, None, None, n)
    varies = np.ptp(x2, axis=0) > 0
    if varies.all():
        fit = _fit_centered(x2, y)
        if fit is not None:
            return fit
    return _fit_lstsq(x2, y, varies)


MAX_NORMAL_CONDITION = 1e6  # of the correlation matrix; above it the fit goes to lstsq


def _fit_centered(x: FloatArray, y: FloatArray) -> Fit | None:
    """`fit_ols` for regressors that all vary; None when the design is ill-conditioned."""
    n, k = x.shape
    columns = np.array(x.T, order="C")  # a copy, one row per regressor (pairwise sums)
    means = columns.mean(axis=1)
    columns -= means[:, None]
    y_mean = float(y.mean())
    y_centered = y - y_mean
    gram = np.empty((k, k))
    cross = np.empty(k)
    for i in range(k):
        cross[i] = float(np.multiply(columns[i], y_centered).sum())
        for j in range(i + 1):
            gram[i, j] = gram[j, i] = float(np.multiply(columns[i], columns[j]).sum())
    scale = np.sqrt(np.diag(gram))
    if not (np.all(scale > 0) and np.all(np.isfinite(gram)) and np.all(np.isfinite(cross))):
        return None
    correlation = gram / np.outer(scale, scale)
    solution, _, rank, singular = np.linalg.lstsq(correlation, cross / scale, rcond=None)
    if rank < k or singular[0] > MAX_NORMAL_CONDITION * singular[-1]:
        return None
    betas = solution / scale
    resid = _residuals(columns, y_centered, betas)
    # one step of iterative refinement brings the normal equations to lstsq's accuracy
    correction = np.array([float(np.multiply(columns[i], resid).sum()) for i in range(k)])
    betas += np.linalg.lstsq(correlation, correction / scale, rcond=None)[0] / scale
    resid = _residuals(columns, y_centered, betas)
    ss_tot = float(np.square(y_centered).sum())
    r2 = 1.0 - float(np.square(resid).sum()) / ss_tot if ss_tot > 0 else None
    intercept = y_mean - float(np.multiply(means, betas).sum())
    return Fit(tuple(float(b) for b in betas), intercept, r2, n)


def _residuals(columns: FloatArray, y: FloatArray, betas: FloatArray) -> FloatArray:
    resid = y.copy()
    for column, beta in zip(columns, betas, strict=True):
        resid -= beta * column
    return resid


def _fit_lstsq(x: FloatArray, y: FloatArray, varies: npt.NDArray[np.bool_]) -> Fit:
    n = len(y)
    design = np.column_stack([np.ones(n), x])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ coef
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.square(resid).sum()) / ss_tot if ss_tot > 0 else None
    betas = tuple(float(c) if v else None for c, v in zip(coef[1:], varies, strict=True))
    if not varies.any():
        r2 = None
    return Fit(betas, float(coef[0]), r2, n)


def corr(x: FloatArray, y: FloatArray) -> float | None:
    """Pearson correlation (plain reductions, no BLAS: see `fit_ols`)."""
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    x_centered = x - x.mean()
    y_centered = y - y.mean()
    sxy = float(np.multiply(x_centered, y_centered).sum())
    sxx = float(np.square(x_centered).sum())
    syy = float(np.square(y_centered).sum())
    if not (sxx > 0 and syy > 0):  # underflow of tiny values, or NaN
        return None
    return none_if_nan(max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy))))


def mean_or_none(total: float, count: float) -> float | None:
    return float(total / count) if count > 0 else None


def vw_mean(values: FloatArray, weights: FloatArray) -> float | None:
    total = float(weights.sum())
    return float((weights * values).sum()) / total if total > 0 else None  # no BLAS threads


def filled_percentile(values: FloatArray, q: float) -> float | None:
    """The q-th percentile of NaN-free `values` when one value fills the order statistics
    around it (then `np.percentile`'s interpolation between equal neighbours is exactly
    that value), found by two counting passes; None otherwise (take a partial sort).

    Spreads of one tick and the regular gap between snapshots are such values, and the
    counting costs a fraction of the partial sort.
    """
    n = len(values)
    if n == 0:
        return None
    candidate = float(np.percentile(values[:: max(1, n // 2048)], q, method="nearest"))
    rank = (n - 1) * q / 100.0  # order statistics around it, with a margin for rounding
    first, last = max(math.floor(rank) - 1, 0), min(math.ceil(rank) + 1, n - 1)
    below = int(np.count_nonzero(values < candidate))
    if below > first or below + int(np.count_nonzero(values == candidate)) <= last:
        return None
    return candidate


@dataclass(frozen=True, slots=True)
class ValueGaps:
    """Rows of a NaN-holed series without a value (`rows`, sorted), each with the first
    row of its run of such rows (`run_start`): enough to step from any row back to the
    last row with a value without copying the series."""

    rows: IntArray
    run_start: IntArray

    @classmethod
    def of(cls, values: FloatArray) -> ValueGaps:
        rows = np.flatnonzero(np.isnan(values))
        if len(rows) == 0:
            return cls(rows, rows)
        starts = np.empty(len(rows), dtype=bool)
        starts[0] = True
        np.not_equal(np.diff(rows), 1, out=starts[1:])
        first = np.maximum.accumulate(np.where(starts, np.arange(len(rows)), 0))
        return cls(rows, rows[first])

    def last_with_value(self, idx: IntArray) -> IntArray:
        """For each row index, the last row at or before it that has a value (−1: none)."""
        if len(self.rows) == 0:
            return idx
        at = np.minimum(np.searchsorted(self.rows, idx), len(self.rows) - 1)
        return np.where(self.rows[at] == idx, self.run_start[at] - 1, idx)
