"""Policy scenarios: predicted coverage under counterfactual changes, from a fitted
design-based model, with the design-based standard error of the change.

>>> import numpy as np, sscoverage as ssc
>>> df = ssc.demo_sample(n_strata=4, psus_per_stratum=5, persons_per_psu=20, seed=1)
>>> design = ssc.Design(df, ids="psu", strata="stratum", weights="weight")
>>> fit = design.glm("covered ~ monthly_income + population_type", family="quasibinomial")
>>> raise_low = {"monthly_income": lambda x: np.where(x < 5000, x + 300, x)}
>>> ssc.simulate.scenario(fit, changes=raise_low).to_pandas()[["variable", "estimate", "se"]].round(4)
   variable  estimate      se
0  baseline    0.9246  0.0179
1  scenario    0.9249  0.0179
2    change    0.0003  0.0002

The computation (predictions averaged with the sampling weights, delta-method influence
values through the design's variance engine) is :func:`sscoverage.margins.scenario`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from ..models.margins import scenario as _scenario
from ..results.estimates import Estimates

if TYPE_CHECKING:
    from ..design.design import Design
    from ..models.glm import GLMResult


def scenario(result: "GLMResult", design: "Design | None" = None, changes: Mapping[str, Any] | None = None,
             by: str | None = None, level: float | None = None) -> Estimates:
    """Predicted mean response (e.g. coverage) by group, as observed and under `changes`,
    and the change with its design-based SE.

    Stata: ``margins, at(...)`` and ``contrast`` after ``svy: logit``; R: no built-in.

    Parameters
    ----------
    result : a fit of :meth:`Design.glm` (a :class:`GLMResult`).
    design : the design to average over: the fitted one (None) or a subset of it.
    changes : column -> new value (one for every row) or a function of the fitted
        column (a pandas Series) giving the new values, e.g. an income shift
        ``{"income": lambda x: x + 500}`` or a subsidy below a threshold
        ``{"income": lambda x: np.where(x < 5000, x + 300, x)}``.
    by : a column of the design's data; the averages per group as well as overall.
    level : interval level (t on the model's ``df_residual``).

    Returns
    -------
    Estimates
        For ``all`` and each group: ``baseline``, ``scenario`` and ``change`` rows with
        ``estimate``, ``se``, ``ci_low``, ``ci_high``; ``vcov[0]`` their covariance.
    """
    return _scenario(result, changes or {}, design=design, by=by, level=level)
