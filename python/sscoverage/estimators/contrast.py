"""Linear contrasts of means or totals, across variables and across domains.

Mirrors R's ``survey::svycontrast`` applied to ``svymean`` / ``svytotal`` of several
variables, or to ``svyby(..., covmat=TRUE)``.  The joint covariance across domains
comes from one estimate over the whole design: a domain total is the total of
y * 1[domain], a domain mean the ratio of that total to the total of 1[domain], so the
core's fused pass gives every domain estimate and their covariance at once — by
linearisation (R's svyby covmat: the full design) or by replicates alike.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .domains import domains, linear
from ..exceptions import DesignError, MissingValueError, ShapeError, OptionError
from ..results.estimates import Estimates, critical_value, standard_errors

STATISTICS = ("mean", "total")


def _columns(design: Any, names: list[str]) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Numeric columns as they are, factors as one 0/1 column per level (R's naming
    ``stypeE``); and the rows with a missing value in any of them."""
    frame = design.frame
    cols, labels = [], []
    missing = np.zeros(design.n_rows, bool)
    for name in names:
        if frame.is_factor(name):
            c = frame.codes(name, "contrast variable")
            cols.extend(c.codes == k for k in range(len(c.labels)))
            labels.extend(f"{name}{lv}" for lv in c.labels)
            if c.missing is not None:
                missing |= c.missing
        else:
            x = frame.numeric(name, "contrast variable")
            cols.append(np.nan_to_num(x))
            labels.append(name)
            missing |= np.isnan(x)
    return np.column_stack(cols).astype(np.float64), labels, missing


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
    if statistic not in STATISTICS:
        raise DesignError(f"statistic={statistic!r}; use one of {', '.join(STATISTICS)}")
    names = [y] if isinstance(y, str) else list(y)
    x, labels, missing = _columns(design, names)
    hit = missing & design.in_subset()
    n_removed = int(hit.sum())
    if n_removed and not na_rm:
        raise MissingValueError(
            f"{n_removed} rows used have a missing value in {names}; pass na_rm=True to leave them out "
            "(they stay in the design)"
        )
    base = design.subset(~missing) if n_removed else design
    by_names, doms, notes = domains(base, by)
    scope = base.in_subset()
    x = np.where(scope[:, None], x, 0.0)
    k = x.shape[1]
    indicators = np.column_stack([dom.in_subset() for _, dom in doms]).astype(np.float64)
    # Columns y_j * 1[d], domain by domain: estimates in the order domain, variable.
    y_by_domain = (indicators[:, :, None] * x[:, None, :]).reshape(base.n_rows, -1)
    domain_labels = [
        ":".join([*(str(v) for v in dom_labels.values()), label]) for dom_labels, _ in doms for label in labels
    ]
    # R's svyby(covmat=TRUE) takes the covariance over the design given; svymean(na.rm)
    # over the rows left once missing values are dropped.
    over = design if by_names else base
    if statistic == "total":
        est, v = linear(over, y_by_domain, "total")
    else:
        # Every (y_j 1[d]) / 1[d'] ratio comes out; keep the pairs with d' = d.
        n_dom = len(doms)
        est_all, v_all = linear(over, np.hstack([y_by_domain, indicators]), "ratio", n_numerators=n_dom * k)
        keep = np.array([(i * n_dom) + i // k for i in range(n_dom * k)])
        est, v = est_all[keep], v_all[np.ix_(keep, keep)]
    contrast_names, matrix = _weights(contrasts, len(est), domain_labels)
    values = matrix @ est
    cov = matrix @ v @ matrix.T
    se = standard_errors(np.diag(cov))
    df_value = float(design.degf) if df == "design" else df
    q = critical_value(level, df_value)
    table = pd.DataFrame(
        {
            "variable": contrast_names,
            "level": None,
            "label": contrast_names,
            "estimate": values,
            "se": se,
            "ci_low": values - q * se,
            "ci_high": values + q * se,
        }
    )
    return Estimates(
        statistic=f"contrast of {statistic}s" + (f" by {', '.join(by_names)}" if by_names else ""),
        table=table,
        vcov=[cov],
        by=[],
        level=level,
        df=df_value,
        n_removed=n_removed,
        notes=notes,
    )
