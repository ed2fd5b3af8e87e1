"""Design: a complex survey design (strata, multi-stage clusters, fpc, PPS) and the
estimators it answers — means, totals and ratios, overall or by domain.

Mirrors R's ``survey::svydesign`` with ``svymean``, ``svytotal``, ``svyratio`` and
``svyby``; Stata's ``svyset`` with ``svy: mean``, ``svy: total``, ``svy: ratio``.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import polars as pl

from . import _core
from ._frames import Coded, Frame, codes_of, require_no_missing
from .exceptions import (
    ColumnError,
    DesignError,
    EmptyDomainError,
    LonelyPsuError,
    MissingValueError,
    ShapeError,
)
from .results import Estimates, critical_value

OUTSIDE = np.iinfo(np.uint32).max
LONELY_PSU = ("fail", "remove", "adjust", "average", "certainty")
SUBSET_OPS = ("==", "!=", "<", "<=", ">", ">=", "in", "not_na")


def _names(value: str | Sequence[str] | None, role: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    names = list(value)
    if not all(isinstance(v, str) for v in names):
        raise TypeError(f"{role} must be a column name or a list of column names")
    return names


class Design:
    """A survey design over a data set.

    Parameters
    ----------
    data : pandas.DataFrame, polars.DataFrame or LazyFrame, or pyarrow.Table
    ids : column or list of columns, one per sampling stage, outermost first.
        ``None`` or ``[]``: each row is its own PSU.
    strata : stratum column of the first stage, or a list with one per stage.
    weights : sampling-weight column.  Alternatively ``probs``: selection
        probabilities (weight = 1/prob).  With neither, weights come from the fpc
        (population / sample size per stage) or are all 1.
    fpc : one column per stage: population counts (>= 1) or sampling fractions
        (<= 1).  With fpc at every stage the variance is R's full multistage formula;
        without, the with-replacement (ultimate cluster) approximation.
    nest : PSU labels repeat across strata; make them unique within stratum.
    lonely_psu : what a stratum with one PSU does: ``"fail"`` (an error naming the
        stratum), ``"remove"`` / ``"certainty"`` (contributes nothing), ``"adjust"``
        (centred at the grand mean), ``"average"`` (the average of the other strata).
        Stata's ``singleunit(missing | certainty | centered | scaled)``.
    adjust_domain_lonely : apply ``lonely_psu`` also to a stratum with one PSU inside
        a domain (R's ``options(survey.adjust.domain.lonely=TRUE)``).
    pps : PPS sampling without replacement, ``fpc`` holding inclusion probabilities:
        ``"brewer"``, ``"overton"``, ``"HR"`` / ``{"method": "HR", "psum": s}``
        (Hartley-Rao), or ``{"method": "ppsmat", "joint_probs": matrix}``.
    variance : with ``pps``: ``"HT"`` (Horvitz-Thompson) or ``"YG"`` (Yates-Grundy).
    subset : a domain of the finished design: a boolean mask, or
        ``{"column", "op", "value"}``; see :meth:`subset`.

    Notes
    -----
    R: ``svydesign(ids, strata, weights, probs, fpc, nest, pps, variance)``;
    Stata: ``svyset psu [pw=w], strata() fpc() singleunit()``.

    Examples
    --------
    >>> import sscoverage as ssc
    >>> df = ssc.demo_sample(n_strata=4, psus_per_stratum=5, persons_per_psu=20, seed=1)
    >>> design = ssc.Design(df, ids="psu", strata="stratum", weights="weight")
    >>> design.mean("covered").to_pandas()[["estimate", "se"]].round(3).shape
    (1, 2)
    """

    def __init__(
        self,
        data: Any,
        ids: str | Sequence[str] | None = None,
        strata: str | Sequence[str] | None = None,
        weights: str | None = None,
        probs: str | None = None,
        fpc: str | Sequence[str] | None = None,
        nest: bool = False,
        lonely_psu: str = "fail",
        adjust_domain_lonely: bool = False,
        pps: str | Mapping[str, Any] | None = None,
        variance: str = "HT",
        subset: Any = None,
    ) -> None:
        frame = Frame(data)
        if lonely_psu not in LONELY_PSU:
            raise DesignError(f"lonely_psu={lonely_psu!r}; use one of {', '.join(LONELY_PSU)}")
        if weights is not None and probs is not None:
            raise DesignError("give weights or probs, not both")
        id_names = _names(ids, "ids")
        strata_names = _names(strata, "strata")
        fpc_names = _names(fpc, "fpc")
        for role, names in (("ids", id_names), ("strata", strata_names), ("fpc", fpc_names)):
            for name in names:
                require_no_missing(frame, name, role)
        clusters = [frame.codes(n, "ids").codes for n in id_names] or [None]
        strata_coded = [frame.codes(n, "strata") for n in strata_names]
        fpc_arrays = [frame.numeric(n, "fpc") for n in fpc_names]
        w = None
        if weights is not None or probs is not None:
            name = weights if weights is not None else probs
            require_no_missing(frame, name, "weights" if weights is not None else "probs")
            w = frame.numeric(name, "weights" if weights is not None else "probs")
            if probs is not None:
                if (w <= 0).any():
                    raise DesignError(f"probs column {probs!r} must be positive; {int((w <= 0).sum())} rows are not")
                w = 1.0 / w
            elif (w < 0).any():
                raise DesignError(
                    f"weights column {weights!r} has {int((w < 0).sum())} negative values; "
                    "sampling weights must be non-negative"
                )
        pps_method, psum, joint = _pps_arguments(pps, frame.n_rows)
        try:
            self._core = _core.CoreDesign(
                frame.n_rows,
                clusters,
                [c.codes for c in strata_coded],
                fpc_arrays,
                w,
                nest,
                lonely_psu,
                adjust_domain_lonely,
                pps_method=pps_method,
                pps_psum=psum,
                pps_joint=joint,
                pps_variance=variance,
            )
        except DesignError as err:
            raise type(err)(_name_columns(str(err), id_names, strata_names, fpc_names, weights or probs)) from None
        self._frame = frame
        self._strata_labels = [c.labels for c in strata_coded]
        self._mask: np.ndarray | None = None
        self.spec = {
            "ids": id_names,
            "strata": strata_names,
            "weights": weights,
            "probs": probs,
            "fpc": fpc_names,
            "nest": nest,
            "lonely_psu": lonely_psu,
            "pps": pps,
        }
        if subset is not None:
            self._mask = self._subset_mask(subset)

    # ------------------------------------------------------------------ design facts
    @property
    def n_rows(self) -> int:
        return self._frame.n_rows

    @property
    def weights(self) -> np.ndarray:
        """The sampling weights (zero outside a subset, as R's ``weights(design)``)."""
        w = self._core.weights
        return w if self._mask is None else np.where(self._mask, w, 0.0)

    @property
    def degf(self) -> int:
        """Design degrees of freedom: first-stage PSUs minus strata (R's ``degf``)."""
        return int(self._core.degf)

    def __repr__(self) -> str:
        parts = [f"{k}={v!r}" for k, v in self.spec.items() if v not in (None, [], False)]
        sub = "" if self._mask is None else f", subset of {int(self._mask.sum())} rows"
        return f"<sscoverage.Design n={self.n_rows}{sub}: {', '.join(parts)}>"

    @property
    def is_replicate(self) -> bool:
        """True for a replicate-weight design (variance from replicate estimates)."""
        return False

    def as_replicates(
        self, type: str = "auto", rho: float = 0.0, mse: bool = False, replicates: int = 50, seed: int | None = None
    ) -> "Design":
        """This design with replicate weights built from its first stage.

        `type`: ``"JK1"`` (unstratified jackknife), ``"JKn"`` (stratified jackknife),
        ``"BRR"`` (two PSUs per stratum, R's Hadamard matrices), ``"Fay"`` (BRR with
        Fay's `rho`), ``"bootstrap"`` / ``"subbootstrap"`` (`replicates` draws; `seed`
        makes them reproducible on any machine), or ``"auto"`` (JK1 without strata,
        JKn with).  R's ``as.svrepdesign``; Stata's ``svy jackknife / brr / bootstrap``.
        """
        from .replicates import as_replicates

        return as_replicates(self, type, rho, mse, replicates, seed)

    def _scope(self) -> np.ndarray:
        """Rows of the domain this design stands for (all rows unless subset)."""
        return np.ones(self.n_rows, bool) if self._mask is None else self._mask.copy()

    def _influence_vcov(self, influence: np.ndarray, in_domain: np.ndarray | None = None) -> np.ndarray:
        """Covariance from per-row influence values (n x p), through the one variance engine.

        For estimators the fused pass cannot form (quantiles, GLM scores, contrasts
        across domains).  Influence values must be zero outside the domain;
        `in_domain` marks the domain's rows (R drops the others from the design, which
        matters only for the lonely-PSU rules); None = every row of the design.
        """
        z = np.ascontiguousarray(np.asarray(influence, dtype=np.float64).reshape(self.n_rows, -1))
        mask = None if in_domain is None else np.ascontiguousarray(in_domain, dtype=bool)
        return self._core.influence_vcov(z, mask)

    # ------------------------------------------------------------------ domains
    def subset(self, mask: Any) -> "Design":
        """The domain where `mask` holds, keeping the whole design for the variance.

        Rows outside stay in the design (their PSUs still count), as R's
        ``subset(design, ...)`` and Stata's ``subpop()``.  `mask` is a boolean
        array-like with one value per row (missing = outside), or a dict
        ``{"column", "op", "value"}`` with op one of ``== != < <= > >= in not_na``.
        """
        new = object.__new__(Design)
        new.__dict__.update(self.__dict__)
        new._mask = self._subset_mask(mask)
        return new

    def _subset_mask(self, mask: Any) -> np.ndarray:
        if isinstance(mask, Mapping):
            rows = self._condition(mask)
        else:
            rows = self._frame.mask(mask, "subset mask")
        if self._mask is not None:
            rows = rows & self._mask
        if not rows.any():
            raise EmptyDomainError("the subset holds no rows: check the condition")
        return rows

    def _condition(self, cond: Mapping[str, Any]) -> np.ndarray:
        column, op, value = cond.get("column"), cond.get("op"), cond.get("value")
        if op not in SUBSET_OPS:
            raise ValueError(f"subset op {op!r} is not one of {', '.join(SUBSET_OPS)}")
        series = self._frame._column(column)
        col = series.to_pandas() if not isinstance(series, pd.Series) else series
        missing = col.isna().to_numpy()
        if op == "not_na":
            return ~missing
        if op == "in":
            hit = col.isin(list(value)).to_numpy()
        else:
            if isinstance(value, str) and self._frame.is_numeric(column):
                raise ColumnError(f"column {column!r} is numeric; compare it with a number, not {value!r}")
            ops = {"==": col.__eq__, "!=": col.__ne__, "<": col.__lt__, "<=": col.__le__, ">": col.__gt__, ">=": col.__ge__}
            hit = ops[op](value).fillna(False).to_numpy(dtype=bool)
        return hit & ~missing

    # ------------------------------------------------------------------ estimators
    def mean(
        self,
        y: str | Sequence[str],
        by: str | Sequence[str] | None = None,
        na_rm: bool = False,
        deff: bool = False,
        level: float = 0.95,
        df: float | str | None = None,
    ) -> Estimates:
        """Weighted means (proportions for a factor: one row per level).

        R's ``svymean`` (``svyby`` with ``by``); Stata's ``svy: mean`` / ``svy: proportion``.
        `df`: None for normal intervals (R's default), ``"design"`` for t on the
        design degrees of freedom, or a number.
        """
        return self._estimate("mean", _names(y, "y"), by, na_rm, deff, level, df)

    def total(
        self,
        y: str | Sequence[str],
        by: str | Sequence[str] | None = None,
        na_rm: bool = False,
        deff: bool = False,
        level: float = 0.95,
        df: float | str | None = None,
    ) -> Estimates:
        """Estimated population totals (counts for a factor).  R's ``svytotal``; Stata's ``svy: total``."""
        return self._estimate("total", _names(y, "y"), by, na_rm, deff, level, df)

    def ratio(
        self,
        numerator: str | Sequence[str],
        denominator: str | Sequence[str],
        by: str | Sequence[str] | None = None,
        na_rm: bool = False,
        level: float = 0.95,
        df: float | str | None = None,
    ) -> Estimates:
        """Ratios of totals, every numerator over every denominator.

        R's ``svyratio``; Stata's ``svy: ratio``.
        """
        num, den = _names(numerator, "numerator"), _names(denominator, "denominator")
        return self._estimate("ratio", num + den, by, na_rm, False, level, df, n_numerators=len(num))

    def _estimate(
        self,
        kind: str,
        outcomes: list[str],
        by: str | Sequence[str] | None,
        na_rm: bool,
        deff: bool,
        level: float,
        df: float | str | None,
        n_numerators: int = 0,
    ) -> Estimates:
        frame = self._frame
        if not outcomes:
            raise ValueError("name at least one outcome column")
        by_names, by_coded = self._by(by)
        in_scope = np.ones(frame.n_rows, bool) if self._mask is None else self._mask.copy()
        notes: list[str] = []
        # Domain codes: the by columns combined, first column slowest.
        codes = np.zeros(frame.n_rows, dtype=np.int64)
        for name, c in zip(by_names, by_coded):
            if c.missing is not None:
                notes.append(f"{int((c.missing & in_scope).sum())} rows with a missing {name!r} are in no domain")
                in_scope &= ~c.missing
            codes = codes * len(c.labels) + np.where(c.codes == OUTSIDE, 0, c.codes)
        numeric: list[tuple[int, np.ndarray]] = []
        categorical: list[tuple[int, np.ndarray, int]] = []
        spec: list[tuple[str, list[Any] | None]] = []
        missing_any = np.zeros(frame.n_rows, bool)
        for pos, name in enumerate(outcomes):
            if kind != "ratio" and frame.is_factor(name):
                c = frame.codes(name, "outcome")
                categorical.append((pos, c.codes, len(c.labels)))
                spec.append((name, c.labels))
                miss = c.missing
            else:
                values = frame.numeric(name, "ratio term" if kind == "ratio" else f"outcome of {kind}")
                numeric.append((pos, values))
                spec.append((name, None))
                miss = np.isnan(values)
            if miss is not None:
                hit = miss & in_scope
                if hit.any() and not na_rm:
                    raise MissingValueError(
                        f"column {name!r} has {int(hit.sum())} missing values in the rows used; "
                        "pass na_rm=True to leave those rows out (they stay in the design)"
                    )
                missing_any |= miss
        n_removed = int((missing_any & in_scope).sum())
        in_scope &= ~missing_any
        present = np.unique(codes[in_scope]) if by_names else np.array([0])
        if not in_scope.any():
            raise EmptyDomainError("no rows are left to estimate from (subset and missing values)")
        if by_names:
            domain = np.searchsorted(present, codes).astype(np.uint32)
        else:
            domain = np.zeros(frame.n_rows, dtype=np.uint32)
        domain[~in_scope] = OUTSIDE
        try:
            res = self._core.estimate(
                kind, domain, len(present), numeric, categorical, n_numerators=n_numerators, deff=deff
            )
        except LonelyPsuError as err:
            _, code, stage = err.args
            labels = self._strata_labels[min(stage, len(self._strata_labels)) - 1] if self._strata_labels else None
            label = labels[code] if labels is not None and stage == 1 else code
            raise LonelyPsuError(
                f"stratum {label!r} has only one PSU at stage {stage}; set lonely_psu to "
                "'adjust', 'average', 'remove' or 'certainty'"
            ) from None
        return self._result(kind, res, spec, n_numerators, by_names, by_coded, present, level, df, n_removed, notes, deff)

    def _by(self, by: Any) -> tuple[list[str], list[Coded]]:
        """Names and codes of the domain variables: column names or arrays (one value per row)."""
        if by is None:
            return [], []
        items = [by] if isinstance(by, (str, pd.Series, pl.Series, np.ndarray)) else list(by)
        names, coded = [], []
        for i, item in enumerate(items):
            if isinstance(item, str):
                names.append(item)
                coded.append(self._frame.codes(item, "by"))
            else:
                values = self._frame.values(item, f"by[{i}]")
                name = str(values.name) if getattr(values, "name", None) not in (None, "") else f"by{i}"
                names.append(name)
                coded.append(codes_of(values, name, "by"))
        return names, coded

    def _result(
        self,
        kind: str,
        res: dict[str, Any],
        spec: list[tuple[str, list[Any] | None]],
        n_numerators: int,
        by_names: list[str],
        by_coded: list[Coded],
        present: np.ndarray,
        level: float,
        df: float | str | None,
        n_removed: int,
        notes: list[str],
        deff: bool,
    ) -> Estimates:
        if kind == "ratio":
            nums, dens = spec[:n_numerators], spec[n_numerators:]
            rows = [(f"{a}/{b}", None, f"{a}/{b}") for a, _ in nums for b, _ in dens]
        else:
            rows = []
            for name, levels in spec:
                if levels is None:
                    rows.append((name, None, name))
                else:
                    rows.extend((name, lv, f"{name}{lv}") for lv in levels)
        p = int(res["p"])
        n_dom = len(present)
        est = res["estimate"].reshape(n_dom, p)
        vcov = res["vcov"].reshape(n_dom, p, p)
        se = np.sqrt(np.clip(np.diagonal(vcov, axis1=1, axis2=2), 0.0, None))
        df_value = float(self.degf) if df == "design" else df
        q = critical_value(level, df_value)
        # Decode domain codes back to the by columns' labels.
        by_values: dict[str, list[Any]] = {}
        rest = present.copy()
        for name, c in reversed(list(zip(by_names, by_coded))):
            k = len(c.labels)
            by_values[name] = [c.labels[i] for i in (rest % k)]
            rest //= k
        records = []
        for d in range(n_dom):
            for j, (variable, lv, label) in enumerate(rows):
                e, s = est[d, j], se[d, j]
                rec = {name: by_values[name][d] for name in by_names}
                rec.update(
                    variable=variable,
                    level=lv,
                    label=label,
                    estimate=e,
                    se=s,
                    ci_low=e - q * s,
                    ci_high=e + q * s,
                    cv=s / abs(e) if e != 0 else np.nan,
                )
                if deff:
                    rec["deff"] = res["deff"].reshape(n_dom, p)[d, j]
                rec["n"] = int(res["n_rows"][d])
                rec["weight_sum"] = res["weight_sum"][d]
                records.append(rec)
        table = pd.DataFrame.from_records(records)
        return Estimates(
            statistic=kind,
            table=table,
            vcov=[vcov[d] for d in range(n_dom)],
            by=by_names,
            level=level,
            df=df_value,
            n_removed=n_removed,
            notes=notes,
        )


def _pps_arguments(pps: Any, n_rows: int) -> tuple[str | None, float | None, np.ndarray | None]:
    """(method, psum, joint-probability matrix flattened) from the user's ``pps``."""
    if pps is None or pps is False:
        return None, None, None
    if isinstance(pps, str):
        if pps not in ("brewer", "overton", "HR"):
            raise DesignError(f"pps={pps!r}; use 'brewer', 'overton', 'HR' or a dict for HR/ppsmat")
        return pps, None, None
    if isinstance(pps, Mapping):
        method = pps.get("method")
        if method == "HR":
            psum = pps.get("psum")
            return "HR", None if psum is None else float(psum), None
        if method == "ppsmat":
            joint = np.asarray(pps.get("joint_probs"), dtype=np.float64)
            if joint.ndim != 2 or joint.shape[0] != joint.shape[1]:
                raise ShapeError("joint_probs must be a square matrix of joint inclusion probabilities")
            return "ppsmat", None, np.ascontiguousarray(joint.ravel())
        raise DesignError(f"pps method {method!r}; use 'HR' or 'ppsmat'")
    raise DesignError(f"pps must be a string or a dict, not {type(pps).__name__}")


def _name_columns(message: str, ids: list[str], strata: list[str], fpc: list[str], weights: str | None) -> str:
    """Point the core's message at the user's columns."""
    named = {"ids": ids, "strata": strata, "fpc": fpc}
    for role, cols in named.items():
        if cols and role in message:
            message += f" (columns {role}={cols})"
            break
    if weights and "weights" in message:
        message += f" (column {weights!r})"
    return message
