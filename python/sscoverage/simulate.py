"""Policy scenarios: predicted coverage under counterfactual changes, from a fitted
design-based model, with the design-based standard error of the change.

>>> fit = design.glm("covered ~ income + hukou + age", family="quasibinomial")
>>> ssc.simulate.scenario(fit, changes={"income": lambda x: np.where(x < 5000, x + 300, x)},
...                       by="population_type").to_pandas()

The computation (predictions averaged with the sampling weights, delta-method influence
values through the design's variance engine) is :func:`sscoverage.margins.scenario`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from .margins import scenario as _scenario
from .results import Estimates

if TYPE_CHECKING:
    from .design import Design
    from .models import GLMResult


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
