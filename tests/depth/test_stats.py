"""Hand-computed cases of `ibdesk.depth.stats`: the least-squares fits."""

from __future__ import annotations

import numpy as np
import pytest

from ibdesk.depth.stats import fit_ols


def test_fit_ols_recovers_an_exact_line() -> None:
    x = np.array([1.0, 2.0, 4.0, 7.0])
    fit = fit_ols(x, 2.0 + 3.0 * x)
    assert fit.betas[0] == pytest.approx(3.0)
    assert fit.intercept == pytest.approx(2.0)
    assert fit.r2 == pytest.approx(1.0)
    assert fit.n == 4


def test_fit_ols_says_nothing_with_too_few_points_or_no_variance() -> None:
    assert fit_ols(np.array([1.0, 2.0]), np.array([1.0, 3.0])).betas == (None,)
    flat = fit_ols(np.array([1.0, 1.0, 1.0]), np.array([1.0, 2.0, 3.0]))
    assert flat.betas == (None,)
    assert flat.r2 is None


def test_fit_ols_r2_of_a_noisy_line() -> None:
    x = np.array([0.0, 1.0, 2.0, 3.0])
    y = np.array([0.0, 2.0, 1.0, 3.0])
    fit = fit_ols(x, y)
    # slope 0.8, intercept 0.3; residuals -0.3, 0.9, -0.9, 0.3 -> SSres 1.8, SStot 5
    assert fit.betas[0] == pytest.approx(0.8)
    assert fit.intercept == pytest.approx(0.3)
    assert fit.r2 == pytest.approx(1 - 1.8 / 5.0)
