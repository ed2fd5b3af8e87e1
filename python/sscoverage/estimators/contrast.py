"""Linear contrasts of means or totals, across variables and across domains.

Mirrors R's ``survey::svycontrast`` applied to ``svymean`` / ``svytotal`` of several
variables, or to ``svyby(..., covmat=TRUE)``.  One call of the core gives every domain's
estimates and their joint covariance across domains and variables (each domain's
influence totals side by side through the one variance engine, or its replicate
estimates through the replicate engine); the contrasts are small matrix products.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .. import _core
from ..exceptions import DesignError, MissingValueError, OptionError, ShapeError
from ..results.estimates import Estimates, critical_value, standard_errors
from .domains import domain_rows, present_domains

STATISTICS = ("mean", "total")


def _outcomes(design: Any, names: list[str]) -> tuple[list, list, list[str], np.ndarray | None]:
    """The core's outcomes: numeric columns as they are, factors as codes (one estimate
    per level, R's naming ``stypeE``); their labels; and the rows with a missing value
    in any of them (None when there are none)."""
    frame = design.frame
    numeric, categorical, labels = [], [], []
    missing = None
    for pos, name in enumerate(names):
        if frame.is_factor(name):
            c = frame.codes(name, "contrast variable")
            categorical.append((pos, c.codes, len(c.labels)))
            labels.extend(f"{name}{lv}" for lv in c.labels)
            miss = c.missing
        else:
            x = frame.numeric(name, "contrast variable")
            numeric.append((pos, x))
            labels.append(name)
            miss = np.isnan(x) if np.isnan(x.sum()) else None
        if miss is not None:
            missing = miss if missing is None else missing | miss
    return numeric, categorical, labels, missing


def _weights(contrasts: Any, n: int, labels: list[str]) -> tuple[list[str], np.ndarray]:
    """(names, matrix) of the contrasts, one row each, checked against n estimates."""
    if isinstance(contrasts, Mapping):
        names, rows = list(contrasts), [contrasts[k] for k in contrasts]
        try:
            rows = [np.asarray(r, dtype=np.float64) for r in rows]
        except (TypeError, ValueError):
            raise OptionError(f"contrasts: each named contrast holds numbers, one per estimate "
                              f"({', '.join(labels)})") from None
    else:
        try:
            arr = np.asarray(contrasts, dtype=np.float64)
        except (TypeError, ValueError):
            raise OptionError(f"contrasts={contrasts!r}: give numbers, one weight per estimate "
                              f"({', '.join(labels)})") from None
        rows = [arr] if arr.ndim == 1 else list(arr)
        names = ["contrast"] if arr.ndim == 1 else [f"contrast{i + 1}" for i in range(len(rows))]
    matrix = np.asarray(rows, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] != n:
        raise ShapeError(f"each contrast needs {n} weights, one per estimate ({', '.join(labels)})")
    return names, matrix


def contrast(
    design: Any,
    y: str | Sequence[str],
    contrasts: Sequence[float] | Sequence[Sequence[float]] | Mapping[str, Sequence[float]],
    statistic: str = "mean",
    by: Any = None,
    na_rm: bool = False,
    level: float = 0.95,
    df: float | str | None = None,
) -> Estimates:
    """Contrasts of means or totals; see :meth:`Design.contrast`."""
    check_statistic(statistic)
    names = [y] if isinstance(y, str) else list(y)
    numeric, categorical, labels, missing = _outcomes(design, names)
    n_removed = 0 if missing is None else int(np.count_nonzero(missing & design.in_subset()))
    if n_removed and not na_rm:
        raise MissingValueError(
            f"{n_removed} rows used have a missing value in {names}; pass na_rm=True to leave them out "
            "(they stay in the design)"
        )
    base = design.subset(~missing) if n_removed else design
    by_names, coded, domain, n_domains, notes = domain_rows(base, by)
    # R's svyby(covmat=TRUE) takes the covariance over the design given; svymean(na.rm)
    # over the rows left once missing values are dropped.
    over = design if by_names else base
    res = _core.joint_estimate(design.core, statistic, domain, n_domains, numeric, categorical,
                               np.ascontiguousarray(over.in_subset()) if over.is_subset else None)
    present, values = present_domains(res.n_rows, res.weight_sum, by_names, coded, notes)
    return contrast_estimates(res, present, values, by_names, labels, contrasts, statistic, level,
                              float(design.degf) if df == "design" else df, n_removed, notes)


def check_statistic(statistic: str) -> None:
    """Raise :class:`~sscoverage.DesignError` unless contrasts can be taken of `statistic`."""
    if statistic not in STATISTICS:
        raise DesignError(f"statistic={statistic!r}; use one of {', '.join(STATISTICS)}")


def contrast_estimates(
    res: Any,
    present: np.ndarray,
    values: dict[str, list[Any]],
    by_names: list[str],
    labels: list[str],
    contrasts: Any,
    statistic: str,
    level: float,
    df: float | None,
    n_removed: int,
    notes: list[str],
) -> Estimates:
    """The contrasts of the core's joint estimates `res` (``joint_estimate`` in memory,
    ``joint_estimate_from_sums`` streamed) of the domains `present` (their by values in
    `values`) and the estimates `labels` of each."""
    p = int(res.p)
    n_domains = len(res.n_rows)
    # Estimates in the order domain, variable.
    keep = (present[:, None] * p + np.arange(p)[None, :]).ravel()
    est = np.asarray(res.estimate)[keep]
    k = n_domains * p
    v = np.asarray(res.vcov).reshape(k, k)[np.ix_(keep, keep)]
    domain_labels = [
        ":".join([*(str(values[name][i]) for name in by_names), label])
        for i in range(len(present)) for label in labels
    ]
    contrast_names, matrix = _weights(contrasts, len(est), domain_labels)
    estimate = matrix @ est
    cov = matrix @ v @ matrix.T
    se = standard_errors(np.diag(cov))
    q = critical_value(level, df)
    table = pd.DataFrame(
        {
            "variable": contrast_names,
            "level": None,
            "label": contrast_names,
            "estimate": estimate,
            "se": se,
            "ci_low": estimate - q * se,
            "ci_high": estimate + q * se,
        }
    )
    return Estimates(
        statistic=f"contrast of {statistic}s" + (f" by {', '.join(by_names)}" if by_names else ""),
        table=table,
        vcov=[cov],
        by=[],
        level=level,
        df=df,
        n_removed=n_removed,
        notes=notes,
    )
