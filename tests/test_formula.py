"""Formulas through the package's grammar give R's fits: a logical ``I()`` term is R's
two-level factor (column ``I(ell > 20)TRUE``), rows with a missing covariate are dropped
and counted.  Expected numbers: R's survey 4.1.1, ``tests/data/r_formula/glm_formula.R``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

import sscoverage as ssc


@pytest.fixture(scope="module")
def apistrat(reference_dir) -> pd.DataFrame:
    return pd.read_csv(reference_dir / "data" / "apistrat.csv")


def test_a_logical_term_is_a_two_level_factor_as_in_r(apistrat):
    design = ssc.Design(apistrat, strata="stype", weights="pw", fpc="fpc")
    fit = design.glm("api00 ~ I(ell > 20) + meals")
    assert fit.terms == ["(Intercept)", "I(ell > 20)TRUE", "meals"]
    assert_allclose(fit.coef, [822.84211433532369, -22.30275097487258, -3.12622000862349], rtol=1e-10)
    assert_allclose(np.sqrt(np.diag(fit.vcov)), [8.989619152992953, 15.974674720250356, 0.261657478154066],
                    rtol=1e-9)
    # The Wald test of the term goes by R's term name.
    assert fit.wald_test("I(ell > 20)").ndf == 1


def test_rows_with_a_missing_covariate_are_dropped_and_counted(apistrat):
    data = apistrat.copy()
    data.loc[[3, 10, 50], "meals"] = np.nan
    design = ssc.Design(data, strata="stype", weights="pw", fpc="fpc")
    fit = design.glm("api00 ~ ell + meals")
    assert fit.n_removed == 3
    assert_allclose(fit.coef, [823.633659536228379, -0.486901990780217, -3.099668260292428], rtol=1e-10)
    assert_allclose(np.sqrt(np.diag(fit.vcov)), [8.753257325222068, 0.393220891416288, 0.275847809080753],
                    rtol=1e-9)
    assert fit.df_residual == 192
