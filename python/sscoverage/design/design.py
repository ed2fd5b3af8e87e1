"""Design: a complex survey design (strata, multi-stage clusters, fpc, PPS) and the
estimators it answers — means, totals and ratios, overall or by domain.

Mirrors R's ``survey::svydesign`` with ``svymean``, ``svytotal``, ``svyratio`` and
``svyby``; Stata's ``svyset`` with ``svy: mean``, ``svy: total``, ``svy: ratio``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import warnings

import numpy as np
import pandas as pd
import polars as pl

from .. import _core
from .._frames import (
    OUTSIDE,
    SUBSET_OPS,
    Coded,
    Frame,
    check_weight_counts,
    codes_of,
    column_names,
    domain_codes,
    domain_values,
    require_no_missing,
)
from .._provenance import recorded
from .stages import first_stage_counts
from ..exceptions import (
    ColumnError,
    DesignError,
    EmptyDomainError,
    EstimationError,
    LonelyPsuError,
    MissingValueError,
    ShapeError,
    SurveyError,
    NotSupportedError,
    OptionError,
    SurveyWarning,
)
from ..results.estimates import Estimates, critical_value, standard_errors
from ..io.serialize import Serializable
from .replicates import TYPES, replicate_columns, scale_and_rscales, replicate_core

if TYPE_CHECKING:
    from ..estimators.association import ChisqTest
    from ..models.glm import GLMResult
    from ..models.survival import CoxResult, SurvivalCurves
    from ..models.threshold import ThresholdResult

LONELY_PSU = ("fail", "remove", "adjust", "average", "certainty")


class Design(Serializable):
    """A survey design over a data set.

    Parameters
    ----------
    data : pandas.DataFrame, polars.DataFrame or LazyFrame, or pyarrow.Table
    ids : column or list of columns, one per sampling stage, outermost first.
        ``None`` or ``[]``: each row is its own PSU.
    strata : stratum column of the first stage, or a list with one per stage.
    weights : sampling-weight column.  With neither `weights` nor `probs`, weights
        come from the fpc (population / sample size per stage) or are all 1.
    probs : instead of `weights`, a column of selection probabilities (weight = 1/prob).
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

    _stored_as_design = True

    #: Data sources a frame in memory is not (a LazyFrame's batches, Dask partitions),
    #: each with the design class that serves it; a subclass registers itself with
    #: ``class StreamedDesign(Design, source=accepts)``.
    _sources: list[tuple[Callable[[Any], bool], type["Design"]]] = []

    def __init_subclass__(cls, source: Callable[[Any], bool] | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if source is not None:
            Design._sources.append((source, cls))

    def __new__(cls, data: Any = None, *args: Any, **kwargs: Any) -> "Design":
        if cls is Design:
            for accepts, design_class in Design._sources:
                if accepts(data):
                    return object.__new__(design_class)
        return object.__new__(cls)

    @recorded
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
        if frame.n_rows == 0:
            raise DesignError("the data have no rows: a design needs at least one sampled unit")
        for role, value in (("weights", weights), ("probs", probs)):
            if value is not None and not isinstance(value, (str, int, np.integer)):
                raise OptionError(f"{role}={value!r}: {role} is the name of a column, not the values")
        for option, flag in (("nest", nest), ("adjust_domain_lonely", adjust_domain_lonely)):
            if not isinstance(flag, (bool, np.bool_)):
                raise OptionError(f"{option}={flag!r}: {option} is True or False")
        if lonely_psu not in LONELY_PSU:
            raise DesignError(f"lonely_psu={lonely_psu!r}; use one of {', '.join(LONELY_PSU)}")
        if weights is not None and probs is not None:
            raise DesignError("give weights or probs, not both")
        id_names = column_names(ids, "ids")
        strata_names = column_names(strata, "strata")
        fpc_names = column_names(fpc, "fpc")
        for role, names in (("ids", id_names), ("strata", strata_names), ("fpc", fpc_names)):
            for name in names:
                require_no_missing(frame, name, role)
        # An integer first-stage ids column goes to the core as it is, to be coded there
        # straight into the design's own codes.
        ids_labels = frame.int_labels(id_names[0]) if id_names else None
        clusters = [
            np.empty(0, np.uint32) if i == 0 and ids_labels is not None else frame.codes(n, "ids").codes
            for i, n in enumerate(id_names)
        ] or [None]
        strata_coded = [frame.codes(n, "strata") for n in strata_names]
        fpc_arrays = [frame.numeric(n, "fpc") for n in fpc_names]
        # A float64 weights column goes to the core as it is, unchecked: the core says only
        # that something is wrong, and the checks below then tell what.  Weights (not
        # probabilities) are taken as 1/(1/w) by the core as it copies them (R keeps
        # probabilities and weighs by their inverse; where a cumulative weight meets
        # p * total exactly, as in quantiles, that last bit decides the data value).
        w = frame.plain_floats(weights) if weights is not None else None
        unchecked = w is not None
        if w is None and (weights is not None or probs is not None):
            w = _checked_weights(frame, weights, probs)
        roundtrip = weights is not None
        pps_method, psum, joint = _pps_arguments(pps, frame.n_rows)
        try:
            self.core = _core.CoreDesign(
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
                weights_roundtrip=roundtrip,
                ids_labels=ids_labels,
            )
        except SurveyError as err:
            if unchecked:
                # Unchecked weights: their own error, if any, comes first, as before.
                try:
                    _checked_weights(frame, weights, probs)
                except SurveyError as weights_err:
                    raise weights_err from None
            if not isinstance(err, DesignError):
                raise
            raise type(err)(_name_columns(err, {"ids": id_names, "strata": strata_names, "fpc": fpc_names,
                                                 "weights": weights or probs})) from None
        if fpc_arrays and pps is None:
            _warn_fpc_varies(frame, id_names, strata_coded, fpc_arrays, ids_labels)
        self.frame = frame
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
        """Number of rows of the data (all of them: rows outside a subset stay in the
        design)."""
        return self.frame.n_rows

    @property
    def weights(self) -> np.ndarray:
        """The sampling weights (zero outside a subset, as R's ``weights(design)``)."""
        w = self.core.weights
        return w if self._mask is None else np.where(self._mask, w, 0.0)

    @property
    def degf(self) -> int:
        """Design degrees of freedom: first-stage PSUs minus strata (R's ``degf``).

        Only PSUs and strata with rows of non-zero weight count (in the subset, for a
        subset), as R's ``degf``.
        """
        if self.is_replicate:
            # From the rank of the replicate weights: of the domain's rows in a domain
            # (R's degf of design[rows, ]), else the core's.
            if self._mask is None:
                return int(self.core.degf)
            return int(self.core.replicate_degf_in(np.ascontiguousarray(self._mask)))
        rows = self._counted_rows()
        if rows is None:
            return int(self.core.degf)
        n_psu, n_strata = first_stage_counts(self, rows)
        return int(n_psu[0] - n_strata[0])

    def _counted_rows(self) -> np.ndarray | None:
        """Rows whose PSUs and strata count (R's ``degf``: rows of non-zero weight, in the
        subset if there is one, e.g. after a nonresponse adjustment zeroed the
        nonrespondents); None when that is every row."""
        if self._mask is None and not self.core.any_zero_weight:
            return None
        nonzero = self.core.weights != 0
        return nonzero if self._mask is None else self._mask & nonzero

    @property
    def n_psu(self) -> int | None:
        """Number of first-stage sampling units (in a subset: those with rows of non-zero
        weight in it); None for a design given only by its replicate weights."""
        if "ids" not in self.spec:
            return None
        return int(first_stage_counts(self, self._counted_rows())[0][0])

    @property
    def n_strata(self) -> int | None:
        """Number of first-stage strata (1 without strata), counted as :attr:`n_psu`."""
        if "ids" not in self.spec:
            return None
        return int(first_stage_counts(self, self._counted_rows())[1][0])

    def __repr__(self) -> str:
        sub = "" if self._mask is None else f", subset of {int(self._mask.sum())} rows"
        if self.is_replicate:
            kind = self.spec.get("type", "replicate")
            return (f"<sscoverage.{type(self).__name__} n={self.n_rows}{sub}: {kind} with {self.n_replicates} "
                    f"replicates{', MSE' if self.mse else ''}>")
        parts = [f"{k}={v!r}" for k, v in self.spec.items() if v not in (None, [], False)]
        return f"<sscoverage.Design n={self.n_rows}{sub}: {', '.join(parts)}>"

    # ------------------------------------------------------------------ variance
    @property
    def is_replicate(self) -> bool:
        """True when the variance comes from replicate weights (R's ``svrepdesign``),
        False for Taylor linearisation."""
        return self.core.replicate_scheme is not None

    def _replicate_scheme(self) -> tuple[float, Any, bool, int]:
        scheme = self.core.replicate_scheme
        if scheme is None:
            raise NotSupportedError(
                "this design's variance is by linearisation; it has no replicate weights: "
                "use design.as_replicates(...) for a replicate design"
            )
        return scheme

    @property
    def n_replicates(self) -> int:
        """Number of replicate weights (replicate designs)."""
        return int(self._replicate_scheme()[3])

    @property
    def scale(self) -> float:
        """The overall multiplier of the replicate variance (R's ``scale``)."""
        return float(self._replicate_scheme()[0])

    @property
    def rscales(self) -> np.ndarray:
        """Each replicate's multiplier of the variance (R's ``rscales``)."""
        return np.asarray(self._replicate_scheme()[1])

    @property
    def mse(self) -> bool:
        """True when replicates are centred at the full-sample estimate (R's ``mse``)."""
        return bool(self._replicate_scheme()[2])

    def replicate_weights(self) -> np.ndarray:
        """Each replicate's analysis weights (rows x replicates), zero outside a subset."""
        self._replicate_scheme()
        w = self.core.replicate_weights()
        return w if self._mask is None else w * self._mask[:, None]

    def replicate_vcov(self, thetas: np.ndarray, full: np.ndarray) -> np.ndarray:
        """The replicate variance of estimates recomputed with each replicate's weights.

        Through the one replicate engine, for estimators computed outside the fused pass
        (quantiles, models).  Replicates giving NaN are left out, as R does.  R's
        ``svrVar``.

        Parameters
        ----------
        thetas : the estimates under each replicate's weights, replicates x p.
        full : the p full-sample estimates (the centre when the design has ``mse``).

        Returns
        -------
        numpy.ndarray
            The p x p covariance matrix.
        """
        full = np.ascontiguousarray(np.atleast_1d(np.asarray(full, dtype=np.float64)))
        thetas = np.ascontiguousarray(np.asarray(thetas, dtype=np.float64).reshape(self.n_replicates, full.size))
        v, dropped = self.core.replicate_vcov(thetas, full)
        if dropped:
            warnings.warn(f"{dropped} replicates gave undefined estimates and were left out (R: \"replicates "
                          "gave NA results and were discarded\")", SurveyWarning, stacklevel=3)
        return v

    @recorded
    def as_replicates(
        self, type: str = "auto", rho: float = 0.0, mse: bool = False, replicates: int = 50,
        seed: int | None = None, small: str = "fail", large: str = "split",
    ) -> "Design":
        """This design with replicate weights built from its first stage.

        R's ``as.svrepdesign``; Stata's ``svy jackknife / brr / bootstrap``.

        Parameters
        ----------
        type : ``"JK1"`` (unstratified jackknife), ``"JKn"`` (stratified jackknife),
            ``"BRR"`` (half-samples on R's Hadamard matrices), ``"Fay"`` (BRR with
            Fay's `rho`), ``"bootstrap"`` / ``"subbootstrap"`` (`replicates` draws), or
            ``"auto"`` (JK1 without strata, JKn with).
        rho : Fay's coefficient, with ``type="Fay"``.
        mse : centre the replicates at the full-sample estimate instead of their mean
            (R's ``mse``).
        replicates : number of bootstrap replicates.
        seed : makes the bootstrap replicates reproducible on any machine.
        small : BRR / Fay, a stratum with one PSU: an error (``"fail"``), its own pair
            with no variance (``"split"``), or paired with another such stratum
            (``"merge"``).
        large : BRR / Fay, a stratum with more than two PSUs: split into pairs of
            consecutive PSUs (``"split"``, R's default; an even number is needed),
            halved into one pair (``"merge"``), or an error (``"fail"``).

        Returns
        -------
        Design
            The same data and weights, its variance by replicates.

        Notes
        -----
        BRR and Fay pair the PSUs as R's ``brrweights`` does: strata in the order of
        their labels sorted as text, PSUs in order of first appearance.

        Examples
        --------
        >>> jk = design.as_replicates("JKn")
        >>> jk
        <sscoverage.Design n=400: JKn with 20 replicates>
        >>> jk.mean("covered").to_pandas()[["estimate", "se"]].round(4)
           estimate      se
        0    0.9246  0.0185
        """
        core, spec = replicate_core(self, type, rho, mse, replicates, seed, small, large)
        new = object.__new__(self.__class__)
        new.__dict__.update(self.__dict__)
        new.core = core
        new.spec = spec
        return new

    @property
    def is_subset(self) -> bool:
        """True for a domain taken with :meth:`subset` (the rows outside stay in the design)."""
        return self._mask is not None

    def in_subset(self) -> np.ndarray:
        """Rows of the domain this design stands for (all rows unless subset)."""
        return np.ones(self.n_rows, bool) if self._mask is None else self._mask.copy()

    def influence_vcov(self, influence: np.ndarray, in_domain: np.ndarray | None = None) -> np.ndarray:
        """Covariance from per-row influence values, through the one variance engine.

        For estimators the fused pass cannot form (quantiles, GLM scores, contrasts
        across domains).  R's ``svyrecvar``.

        Parameters
        ----------
        influence : influence values, rows x p (or one value per row); zero outside the
            domain.
        in_domain : boolean, one per row: the domain's rows (R drops the others from
            the design, which matters only for the lonely-PSU rules); None = every row.

        Returns
        -------
        numpy.ndarray
            The p x p covariance matrix (Taylor linearisation, with the design's fpc
            and lonely-PSU rule).
        """
        if self.is_replicate:
            raise NotSupportedError(
                "a replicate design has no linearisation variance: re-estimate with each replicate's "
                "weights (replicate_weights()) and use replicate_vcov"
            )
        z = np.ascontiguousarray(np.asarray(influence, dtype=np.float64).reshape(self.n_rows, -1))
        mask = None if in_domain is None else np.ascontiguousarray(in_domain, dtype=bool)
        return self.core.influence_vcov(z, mask)

    # ------------------------------------------------------------------ domains
    @recorded
    def subset(self, mask: Any) -> "Design":
        """The domain where `mask` holds, keeping the whole design for the variance.

        Rows outside stay in the design (their PSUs still count), as R's
        ``subset(design, ...)`` and Stata's ``subpop()``.

        Parameters
        ----------
        mask : a boolean array-like with one value per row (missing = outside), or a
            dict ``{"column", "op", "value"}`` with op one of
            ``== != < <= > >= in not_na``.

        Returns
        -------
        Design
            The domain; a subset of a subset is the rows where both hold.

        Examples
        --------
        >>> high = design.subset(df["monthly_income"] >= 5000)
        >>> high.mean("covered").to_pandas()[["estimate", "se"]].round(4)
           estimate      se
        0    0.9265  0.0216
        """
        # type(self): a domain of a replicate design keeps its replicate weights.
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new._mask = self._subset_mask(mask)
        return new

    @recorded
    def with_columns(self, columns: Mapping[str, Any]) -> "Design":
        """This design with variables added to its data (or replacing same-named ones).

        For variables derived from the data (indicators built from other columns,
        bands), so that they are estimated like any column; the design (weights,
        strata, clusters, subset) is kept.  R's ``update(design, ...)``; Stata's
        ``generate`` after ``svyset``.

        Parameters
        ----------
        columns : name -> array-like with one value per row.
        """
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.frame = self.frame.with_columns(columns)
        return new

    def _subset_mask(self, mask: Any) -> np.ndarray:
        if isinstance(mask, Mapping):
            rows = self._condition(mask)
        else:
            rows = self.frame.mask(mask, "subset mask")
        if self._mask is not None:
            rows = rows & self._mask
        if not rows.any():
            raise EmptyDomainError("the subset holds no rows: check the condition")
        return rows

    def _condition(self, cond: Mapping[str, Any]) -> np.ndarray:
        column, op, value = cond.get("column"), cond.get("op"), cond.get("value")
        if op not in SUBSET_OPS:
            raise OptionError(f"subset op {op!r} is not one of {', '.join(SUBSET_OPS)}")
        series = self.frame.column(column)
        col = series.to_pandas() if not isinstance(series, pd.Series) else series
        missing = col.isna().to_numpy()
        if op == "not_na":
            return ~missing
        if op == "in":
            hit = col.isin(list(value)).to_numpy()
        else:
            if isinstance(value, str) and self.frame.is_numeric(column):
                raise ColumnError(f"column {column!r} is numeric; compare it with a number, not {value!r}")
            ops = {"==": col.__eq__, "!=": col.__ne__, "<": col.__lt__, "<=": col.__le__, ">": col.__gt__, ">=": col.__ge__}
            hit = ops[op](value).fillna(False).to_numpy(dtype=bool)
        return hit & ~missing

    # ------------------------------------------------------------------ estimators
    @recorded
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

        Parameters
        ----------
        y : column or list of columns; a text, categorical or logical column gives the
            proportion in each of its levels.
        by : domain column(s): one estimate per combination of their values (R's
            ``svyby``, Stata's ``over()``); each domain keeps the whole design.
        na_rm : leave rows with a missing outcome out (they stay in the design, as a
            domain); without it a missing value is an error that counts them.
        deff : add the design effect, ``deff`` (R's ``deff=TRUE``; Stata's ``estat effects``).
        level : confidence level of the intervals.
        df : None for normal intervals (R's default), ``"design"`` for t on the
            design degrees of freedom, or a number.

        Returns
        -------
        Estimates
            One row per domain, variable and level: ``estimate``, ``se``, ``ci_low``,
            ``ci_high``, ``cv``, ``n``, ``weight_sum``.

        Examples
        --------
        >>> design.mean("covered", level=0.9, df="design").to_pandas()[["estimate", "se", "ci_low"]].round(4)
           estimate      se  ci_low
        0    0.9246  0.0179  0.8933
        """
        return self._estimate("mean", column_names(y, "y"), by, na_rm, deff, level, df)

    @recorded
    def total(
        self,
        y: str | Sequence[str],
        by: str | Sequence[str] | None = None,
        na_rm: bool = False,
        deff: bool = False,
        level: float = 0.95,
        df: float | str | None = None,
    ) -> Estimates:
        """Estimated population totals (counts for a factor).

        R's ``svytotal``; Stata's ``svy: total``.

        Parameters
        ----------
        y, by, na_rm, deff, level, df : as for :meth:`mean`.

        Returns
        -------
        Estimates
            As :meth:`mean`, with totals.

        Examples
        --------
        >>> design.total("covered").to_pandas()[["estimate", "se"]].round(0)
            estimate        se
        0  3731689.0  499550.0
        """
        return self._estimate("total", column_names(y, "y"), by, na_rm, deff, level, df)

    @recorded
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

        Parameters
        ----------
        numerator, denominator : column or list of numeric columns.
        by, na_rm, level, df : as for :meth:`mean`.

        Returns
        -------
        Estimates
            One row per domain and ratio, labelled ``"numerator/denominator"``.
        """
        num, den = column_names(numerator, "numerator"), column_names(denominator, "denominator")
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
        frame = self.frame
        if not outcomes:
            raise OptionError("name at least one outcome column")
        for option, flag in (("na_rm", na_rm), ("deff", deff)):
            if not isinstance(flag, (bool, np.bool_)):
                raise OptionError(f"{option}={flag!r}: {option} is True or False")
        # One integer by column not coded yet goes to the core as it is (a label less the
        # smallest is the domain), unless its values span too many (then it is coded).
        labels = frame.int_labels(by) if isinstance(by, str) else None
        by_names, by_coded = ([by], []) if labels is not None else self.by_columns(by)
        # Rows that take part in no domain; None while there are none, so the common
        # case (no subset, nothing missing) makes no pass over the rows here.
        excluded: np.ndarray | None = None if self._mask is None else ~self._mask
        notes: list[str] = []
        for name, c in zip(by_names, by_coded):
            if c.missing is not None:
                hit = c.missing if excluded is None else c.missing & ~excluded
                if hit.any():  # missing only outside a subset: nothing to tell
                    notes.append(f"{int(hit.sum())} rows with a missing {name!r} are in no domain")
                excluded = c.missing if excluded is None else excluded | c.missing
        numeric: list[tuple[int, np.ndarray]] = []
        categorical: list[tuple[int, np.ndarray, int]] = []
        spec: list[tuple[str, list[Any] | None]] = []
        n_removed = 0
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
                # Without na_rm the core itself stops at a missing value in a used row.
                miss = np.isnan(values) if na_rm else None
            if na_rm and miss is not None and miss.any():
                new = miss if excluded is None else miss & ~excluded
                n_removed += int(new.sum())
                excluded = miss if excluded is None else excluded | miss
        res = None
        if labels is not None and excluded is None:
            res = self._core_estimate(
                lambda: self.core.estimate_labels(
                    kind, labels, numeric, categorical, n_numerators=n_numerators, deff=deff
                ),
                outcomes,
                excluded,
                (by, int(labels.min())),
            )
            if res is not None:
                first = int(res.offset)
                by_coded = [Coded(labels[:0], list(range(first, first + len(res.n_rows))), None)]
        if res is None:
            if labels is not None:
                by_names, by_coded = self.by_columns(by)
            domain, n_domains = domain_codes(by_coded, frame.n_rows)
            if excluded is not None:
                if excluded.all():
                    raise EmptyDomainError("no rows are left to estimate from (subset and missing values)")
                domain = np.where(excluded, OUTSIDE, domain).astype(np.uint32)
            res = self._core_estimate(
                lambda: self.core.estimate(
                    kind, domain, n_domains, numeric, categorical, n_numerators=n_numerators, deff=deff
                ),
                outcomes,
                excluded,
                (by_names, by_coded) if by_names else None,
            )
        present = np.flatnonzero(res.n_rows > 0)
        dropped = res.dropped_replicates
        if dropped:
            notes.append(f"{dropped} replicates gave undefined estimates and were left out (as R)")
        if len(present) == 0:
            raise EmptyDomainError("no rows are left to estimate from (subset and missing values)")
        return self._result(kind, res, spec, n_numerators, by_names, by_coded, present, level, df, n_removed, notes, deff)

    def _core_estimate(self, call: Any, outcomes: list[str], excluded: np.ndarray | None, domains: Any = None) -> Any:
        """The core's estimate, its errors in the user's terms (strata labels, columns,
        domain labels: `domains` is (by names, their codes), or (by column, smallest
        integer label) when the core coded the labels itself)."""
        try:
            return call()
        except LonelyPsuError as err:
            _, code, stage = err.args
            labels = self._strata_labels[min(stage, len(self._strata_labels)) - 1] if self._strata_labels else None
            label = labels[code] if labels is not None and stage == 1 else code
            raise LonelyPsuError(
                f"stratum {label!r} has only one PSU at stage {stage}; set lonely_psu to "
                "'adjust', 'average', 'remove' or 'certainty'"
            ) from None
        except EstimationError as err:
            # The core's structured errors: (message, kind, ...) with codes to name.
            if len(err.args) == 3 and isinstance(err.args[1], str):  # ZeroTotal: (message, what, domain)
                raise EmptyDomainError(_zero_total_message(err.args[1], int(err.args[2]), domains)) from None
            if len(err.args) == 4 and err.args[1] == "missing outcome":  # (message, kind, outcome, row)
                raise self._missing_value_error(outcomes[int(err.args[2])], excluded) from None
            raise

    def _missing_value_error(self, name: str, excluded: np.ndarray | None) -> MissingValueError:
        """The core's missing outcome as an error naming the column and the count."""
        miss = self.frame.isna(name)
        count = int((miss if excluded is None else miss & ~excluded).sum())
        return MissingValueError(
            f"column {name!r} has {count} missing values in the rows used; "
            "pass na_rm=True to leave those rows out (they stay in the design)"
        )

    def by_columns(self, by: Any) -> tuple[list[str], list[Coded]]:
        """Names and codes of the domain variables.

        Parameters
        ----------
        by : a column name, an array with one value per row, or a list of them
            (None: no domains).

        Returns
        -------
        tuple
            The names (``by0``, ``by1``, ... for unnamed arrays) and, for each, its
            integer codes with their level labels.
        """
        if by is None:
            return [], []
        items = [by] if isinstance(by, (str, pd.Series, pl.Series, np.ndarray)) else list(by)
        names, coded = [], []
        for i, item in enumerate(items):
            if isinstance(item, str):
                names.append(item)
                coded.append(self.frame.codes(item, "by"))
            else:
                values = self.frame.values(item, f"by[{i}]")
                name = str(values.name) if getattr(values, "name", None) not in (None, "") else f"by{i}"
                names.append(name)
                coded.append(codes_of(values, name, "by"))
        return names, coded

    def _result(
        self,
        kind: str,
        res: "_core.DomainEstimates",
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
        domain_labels: "pl.DataFrame | None" = None,
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
        # A domain whose rows all have zero weight is left out, as R's svyby does.
        weight_sums = np.asarray(res.weight_sum)
        empty = present[weight_sums[present] == 0]
        if len(empty):
            if not by_names or len(empty) == len(present):
                raise EmptyDomainError(
                    "the weights of the rows used sum to zero: no domain has a positive total weight"
                )
            gone = domain_values(empty, by_names, by_coded, domain_labels)
            text = ", ".join("/".join(str(gone[name][i]) for name in by_names) for i in range(len(empty)))
            message = (f"{'/'.join(by_names)} = {text}: every row has zero weight, so the domain is "
                       "left out of the table (as R's svyby)")
            warnings.warn(message, SurveyWarning, stacklevel=4)
            notes = [*notes, message]
            present = present[weight_sums[present] > 0]
        p = int(res.p)
        n_all = len(res.n_rows)
        est = res.estimate.reshape(n_all, p)[present]
        vcov = res.vcov.reshape(n_all, p, p)[present]
        n_rows = res.n_rows[present]
        weight_sum = res.weight_sum[present]
        deffs = res.deff.reshape(n_all, p)[present] if deff else None
        n_dom = len(present)
        se = standard_errors(np.diagonal(vcov, axis1=1, axis2=2))
        df_value = float(self.degf) if df == "design" else df
        q = critical_value(level, df_value)
        by_values = domain_values(present, by_names, by_coded, domain_labels)
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
                if deffs is not None:
                    rec["deff"] = deffs[d, j]
                rec["n"] = int(n_rows[d])
                rec["weight_sum"] = weight_sum[d]
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

    # ------------------------------------------------------------------ more estimators
    @recorded
    def quantile(
        self,
        y: str | Sequence[str],
        quantiles: float | Sequence[float] = (0.5,),
        by: Any = None,
        level: float = 0.95,
        qrule: Any = "math",
        interval_type: str = "mean",
        na_rm: bool = False,
        df: float | None = None,
        progress: bool = True,
    ) -> Estimates:
        """Weighted quantiles with confidence intervals.

        Mirrors R's ``svyquantile`` (survey >= 4.1); Stata has no built-in survey
        quantile (the user-written ``epctile`` is the nearest).

        Parameters
        ----------
        y : column or list of numeric columns.
        quantiles : probabilities, each strictly between 0 and 1.
        by : domain column(s), as for :meth:`mean`; each domain is a subset of the design.
        level : confidence level of the intervals (R's ``alpha`` is ``1 - level``).
        qrule : R's rule for the quantile of a weighted step function: ``"math"``
            (``"hf1"``, the default), ``"school"`` (``"hf2"``), ``"hf3"`` ... ``"hf9"``,
            ``"shahvaish"``, or a function ``(x, w, p) -> value``.
        interval_type : ``"mean"`` (Woodruff: the interval for the proportion below the
            estimate, mapped back through `qrule`), ``"beta"``, ``"xlogit"``, ``"asin"``
            (Woodruff with that interval for the proportion) or ``"score"``
            (Francisco-Fuller score interval, R's ``ffullerCI``).
        na_rm : rows with a missing value leave the design (PSU counts kept).
        df : degrees of freedom of the t quantiles; default the design's (for a domain,
            its own ``degf``, as R).
        progress : show a progress bar while a `qrule` given as a Python function is
            applied replicate by replicate (``"quantile"`` intervals); R's rules run in
            the core, all replicates at once.

        Returns
        -------
        Estimates
            One row per domain, variable and quantile: ``estimate``, ``ci_low``,
            ``ci_high`` and ``se`` = interval width / (2 t), as R reports it.
        """
        from ..estimators.quantile import quantile

        return quantile(self, y, quantiles, by, level, qrule, interval_type, na_rm, df, progress)

    @recorded
    def ciprop(
        self,
        y: str,
        method: str = "logit",
        level: float = 0.95,
        by: Any = None,
        df: float | None = None,
        na_rm: bool = False,
    ) -> Estimates:
        """A proportion with a confidence interval that stays inside [0, 1].

        Mirrors R's ``svyciprop`` and Stata's ``svy: proportion, citype()``.

        Parameters
        ----------
        y : a 0/1 numeric, boolean or FALSE/TRUE column.
        method : ``"logit"`` (R's default), ``"likelihood"``, ``"asin"``, ``"beta"``
            (Korn-Graubard), ``"mean"`` (Wald), ``"xlogit"``, or ``"wilson"`` (Wilson's
            score interval on the design's effective sample size, Stata's
            ``citype(wilson)``).  ``"logit"`` and ``"likelihood"`` fit R's
            ``svyglm(y ~ 1, family=quasibinomial)``; on a replicate design it is refitted
            with each replicate's weights (in the core), as R does.  R's likelihood
            interval on a replicate design is NA (its dispersion, about n, flattens the
            profile): NaN limits with a :class:`SurveyWarning`.
        level : confidence level, default 0.95.
        by : domain column(s), as for :meth:`mean`.
        df : degrees of freedom; default the design's ``degf``.
        na_rm : leave rows with a missing value out of the proportion.

        Returns
        -------
        Estimates
            ``estimate``, ``se`` (as :meth:`mean`), ``ci_low``, ``ci_high``.
        """
        from ..estimators.proportions import ciprop

        return ciprop(self, y, method, level, by, df, na_rm)

    @recorded
    def chisq(self, row: str, col: str, statistic: str = "F", na_rm: bool = True) -> "ChisqTest":
        """Design-based test of independence in the two-way table of `row` by `col`.

        Mirrors R's ``svychisq`` and Stata's ``svy: tabulate twoway`` tests.

        Parameters
        ----------
        row, col : the two categorical columns.
        statistic : ``"F"`` (Rao-Scott second-order, R's default; Stata's default
            design-based F), ``"Chisq"`` (Rao-Scott first-order), ``"Wald"``,
            ``"adjWald"`` (Stata's ``wald noadjust`` / ``wald``), or ``"saddlepoint"``.
        na_rm : leave out rows with a missing value in either column (default True).

        Returns
        -------
        ChisqTest
            ``statistic``, ``ndf``, ``ddf``, ``p_value`` and the weighted table.
        """
        from ..estimators.association import chisq

        return chisq(self, row, col, statistic, na_rm)

    @recorded
    def contrast(
        self,
        y: str | Sequence[str],
        contrasts: Any,
        statistic: str = "mean",
        by: Any = None,
        na_rm: bool = False,
        level: float = 0.95,
        df: float | str | None = None,
    ) -> Estimates:
        """Linear combinations of means or totals, across variables or domains.

        Mirrors R's ``svycontrast`` of ``svymean`` / ``svytotal`` or of ``svyby(...,
        covmat=TRUE)``, and Stata's ``lincom`` after ``svy: mean, over()``.

        Parameters
        ----------
        y : column(s) whose means or totals are combined.
        contrasts : weights on the estimates, in the row order of ``design.mean(y,
            by=by)`` (with several `by` columns the first varies slowest, where R's
            ``svyby`` varies it fastest); a list of such lists, or a dict name ->
            weights, for several.
        statistic : ``"mean"`` or ``"total"``.
        by : domain column(s); the covariance between domains is kept.
        na_rm : leave rows with a missing value out of every domain.
        level, df : for the intervals, as in :meth:`mean`.

        Returns
        -------
        Estimates
            One row per contrast: ``estimate``, ``se``, ``ci_low``, ``ci_high``.
        """
        from ..estimators.contrast import contrast

        return contrast(self, y, contrasts, statistic, by, na_rm, level, df)

    @recorded
    def glm(
        self,
        formula: str,
        family: str = "gaussian",
        link: str | None = None,
        levels: Mapping[str, Sequence[Any]] | None = None,
        level: float = 0.95,
        epsilon: float = 1e-8,
        maxit: int = 25,
        progress: bool = True,
    ) -> "GLMResult":
        """Design-based generalised linear model.

        Mirrors R's ``svyglm`` (with ``summary``) and Stata's ``svy: glm``.

        Parameters
        ----------
        formula : an R-style formula, ``"y ~ x1 + x2"``: ``*`` and ``:`` for
            interactions, ``- 1`` for no intercept, ``I(...)`` and ``log(...)`` for
            transformations; text, logical and categorical columns are factors with
            treatment contrasts, the first level (R's order) the reference.  Plain
            variables, factors and their interactions are assembled by the core from the
            columns, block by block, never as an n x p matrix; a term with a function
            (``I()``, ``log()``, ``poly()``, ``C()``) is evaluated by formulaic first.
        family : ``"gaussian"``, ``"binomial"``, ``"quasibinomial"``, ``"poisson"``,
            ``"quasipoisson"`` or ``"Gamma"``.
        link : ``"identity"``, ``"log"``, ``"inverse"``, ``"logit"``, ``"probit"`` or
            ``"cloglog"``; default the family's canonical link.
        levels : dict column -> level order for factors (the first is the reference).
        level : confidence level of the intervals, default 0.95.
        epsilon, maxit : R's ``glm.control``: stop when the deviance changes by less
            than ``epsilon`` relative; at most ``maxit`` iterations.
        progress : show a progress bar over the batches of a streamed design (in
            memory the fit, every replicate refit included, is one call into the core).

        Returns
        -------
        GLMResult
            ``coef``, ``se``, ``vcov``, ``dispersion``, ``df_residual``; ``summary()``
            with t statistics, p-values and intervals on ``df_residual`` degrees of
            freedom.  Rows with a missing model variable are left out (they stay in
            the design, as a domain).

        Raises
        ------
        ColumnError : a variable of the formula is not in the data.
        EstimationError : an outcome outside the family's range, or aliased terms.
        ConvergenceError : no convergence, or separation.
        """
        from ..models.glm import glm

        return glm(self, formula, family, link, levels, level, epsilon, maxit, progress)

    @recorded
    def threshold_glm(
        self,
        formula: str,
        threshold_var: str,
        grid: Any = None,
        kind: str = "slope",
        family: str = "quasibinomial",
        link: str | None = None,
        ci: str = "auto",
        level: float = 0.95,
        min_side: int | None = None,
        trim: float | None = None,
        n_draws: int = 999,
        seed: int = 20240601,
        levels: Mapping[str, Sequence[Any]] | None = None,
        epsilon: float = 1e-8,
        maxit: int = 25,
        progress: bool = True,
    ) -> "ThresholdResult":
        """A GLM whose slope (or level) in `threshold_var` changes at an unknown threshold.

        The threshold is the candidate of a grid at which the weighted deviance (minus
        twice the pseudo-log-likelihood) is least; each candidate is one IRLS fit.  R has
        no survey version (``chngpt::chngptm`` and ``segmented`` fit the unweighted model);
        Stata's ``threshold`` is for linear time-series models.

        Parameters
        ----------
        formula : the model without the threshold term, ``"lapse ~ income + hukou"``.
        threshold_var : a numeric column; with ``kind="slope"`` also a term of `formula`.
        grid : candidate thresholds inside the data's range; None: the sample quantiles
            from `trim` to 1 - `trim` by 2.5 % (10 %, 12.5 %, ..., 90 %); an int: that
            many quantiles over that range.
        trim : the share of the sample left out at each end by the default grid (0.10;
            at 0.05 the test of no threshold was liberal in simulations).
        kind : ``"slope"`` adds ``np.maximum(x - c, 0)`` (the slope changes at c, a
            kink); ``"level"`` adds ``I(x < c)`` (a step below c).
        family, link, levels, epsilon, maxit : as :meth:`glm`; family default
            ``"quasibinomial"``.
        ci : ``"lr"`` (likelihood-ratio inversion with a Rao-Scott design correction),
            ``"replicate"`` (replicate variance of the re-estimated threshold), or
            ``"auto"``: replicate on a non-jackknife replicate design, lr otherwise.
        level : confidence level, default 0.95.
        min_side : fewest rows strictly below and above a candidate (default
            max(10, 1 % of the rows)).
        n_draws, seed : draws and seed of the p-value of the test of no threshold (wild
            score bootstrap over PSUs; on replicate designs, simulation of the sup-Wald
            statistic's limit).
        progress : show a progress bar over the grid's fits.

        Returns
        -------
        ThresholdResult
            ``threshold``, ``ci_low``, ``ci_high``, ``confidence_set``, ``profile`` (a
            table to plot), ``model`` (the GLM at the threshold), ``statistic`` and
            ``p_value`` (test of no threshold).  See :mod:`sscoverage.threshold` for the
            methods.

        Raises
        ------
        ColumnError : `threshold_var` is not a (numeric) column of the data.
        ThresholdError : a grid candidate outside the data's range or with fewer than
            `min_side` rows on one side; kind="slope" without the variable in the formula.
        """
        from ..models.threshold import DEFAULT_TRIM, threshold_glm

        return threshold_glm(self, formula, threshold_var, grid, kind, family, link, ci, level, min_side,
                             DEFAULT_TRIM if trim is None else trim, n_draws, seed, levels, epsilon, maxit, progress)

    # ------------------------------------------------------------------ weighting
    @recorded
    def poststratify(self, strata: str | Sequence[str], population: Any, partial: bool = False) -> "Design":
        """A new design post-stratified to population counts.

        Mirrors R's ``postStratify`` and Stata's ``svyset ..., poststrata()
        postweight()``.  The weights of each post-stratum (a cell of the complete
        cross-classification of `strata`) are scaled to its count; the variance uses
        the residuals from the post-stratum means, as R's.

        Parameters
        ----------
        strata : ``"~a+b"``, a column name, or a list of columns.
        population : the count of every cell: a DataFrame with the strata columns and
            ``Freq`` (or one other column), a list of rows ``{"a": level, "Freq": n}``,
            a dict level -> count (one variable) or tuple of levels -> count.
        partial : leave out cells that have a count but no sample weight (R's
            ``partial=TRUE``) instead of raising.

        Raises
        ------
        CalibrationError : a cell in the sample but not the targets, or one with a
            positive count but no sample rows; a negative count.
        """
        from ..weighting.adjust import poststratify

        return poststratify(self, strata, population, partial)

    @recorded
    def rake(self, margins: Any, control: Mapping[str, Any] | None = None, force: bool = False) -> "Design":
        """A new design raked (iterative proportional fitting) to several margins.

        Mirrors R's ``rake`` and Stata's ``ipfraking`` / ``svycal rake``: post-stratify
        to each margin in turn until a sweep changes no cell of the margins'
        cross-classification by ``epsilon`` or more.  The variance uses R's raking
        residuals (ten backfitting sweeps over the margins).

        Parameters
        ----------
        margins : a list of ``(strata, population)`` pairs or of ``{"formula",
            "population"}`` dicts, or a dict column -> population; each population as
            for :meth:`poststratify`.
        control : ``{"maxit": 10, "epsilon": 1}`` (R's defaults); an ``epsilon`` below
            1 is a fraction of the sum of the weights.
        force : keep weights that did not converge (with a ``ConvergenceWarning``).

        Raises
        ------
        CalibrationError : margins whose totals disagree, or categories as for
            :meth:`poststratify`.
        ConvergenceError : no convergence in ``maxit`` sweeps; names the margin
            furthest from its targets.
        """
        from ..weighting.adjust import rake

        return rake(self, margins, control, force)

    @recorded
    def calibrate(
        self,
        formula: str,
        population: Any,
        calfun: str = "linear",
        bounds: Sequence[float] | None = None,
        epsilon: float = 1e-7,
        maxit: int = 50,
        force: bool = False,
    ) -> "Design":
        """A new design calibrated to population totals of the model matrix of `formula`.

        Mirrors R's ``calibrate`` and Stata's ``svycal``.  The variance uses the
        residuals of the weighted regression on the calibration variables (R's
        ``greg_calibration``); a replicate design has every replicate calibrated.

        Parameters
        ----------
        formula : ``"~stype + api99"``: factors give treatment-coded columns.
        population : totals by R's model-matrix column names (``"(Intercept)"``,
            ``"stypeH"``, ``"api99"``): a dict, Series, a one-row DataFrame, or a
            DataFrame of names and totals.
        calfun : ``"linear"`` (GREG), ``"raking"`` or ``"logit"``.
        bounds : ``(lower, upper)`` on g = new weight / old weight; ``"logit"`` needs them.
        epsilon, maxit : stop when every |misfit| / (1 + |total|) < epsilon, or after
            maxit Newton steps.
        force : keep weights that did not converge (with a ``ConvergenceWarning``).

        Raises
        ------
        CalibrationError : a total named that is not a column, a column without a total,
            a total for a category absent from the sample, negative totals of a
            non-negative variable, infeasible bounds.
        ConvergenceError : no convergence; says how close it got.
        """
        from ..weighting.adjust import calibrate

        return calibrate(self, formula, population, calfun, bounds, epsilon, maxit, force)

    @recorded
    def trim_weights(self, lower: float = -np.inf, upper: float = np.inf, strict: bool = False) -> "Design":
        """A new design with the weights trimmed to [lower, upper].

        Mirrors R's ``trimWeights`` (Stata: the ``trimloabs()`` / ``trimhiabs()``
        options of ``ipfraking``): weights outside are set to the bound and the trimmed
        amount is spread equally over the others; with `strict`, repeated until none is
        outside.  Earlier calibration still shapes the variance, as R's.  On a replicate
        design each replicate's weights are trimmed too (R's method for replicate
        designs means to, but leaves the full-sample weights as they were).

        Parameters
        ----------
        lower, upper : bounds on the weights.
        strict : trim again until no weight is outside the bounds.

        Returns
        -------
        Design
            The design with trimmed weights.

        Raises
        ------
        CalibrationError : empty bounds, or with `strict` bounds that cannot keep the
            sum of the weights.
        """
        from ..weighting.adjust import trim_weights

        return trim_weights(self, lower, upper, strict)

    def plot_weights(self, before: "Design | Sequence[float] | None" = None, ax: Any = None, bins: int = 30) -> Any:
        """Histogram of the weights, beside those of `before`; see
        :func:`sscoverage.plots.weights`.

        Parameters
        ----------
        before : the design before an adjustment, or its weights; None: this design's
            weights alone.
        ax : matplotlib Axes to draw on; None: a new figure.
        bins : number of histogram bins.

        Returns
        -------
        matplotlib.axes.Axes
        """
        from ..results.plots import weights

        return weights(self, before, ax, bins)

    def weighting_report(self) -> Any:
        """Diagnostics of the weights: Kish's design effect due to weighting and the
        effective sample size, a weight summary, and each adjustment's achieved against
        target totals and iterations (a :class:`sscoverage.weighting.WeightingReport`)."""
        from ..weighting.adjust import report

        return report(self)

    # ------------------------------------------------------------------ survival
    def km(
        self,
        time: str,
        event: str,
        by: str | None = None,
        times: Any = None,
        se: bool = False,
        na_rm: bool = False,
        level: float = 0.95,
    ) -> "SurvivalCurves":
        """Design-weighted survival curves.

        Mirrors R's ``svykm`` (with ``confint.svykm`` for the intervals); Stata's ``sts
        list`` with ``[pweight=]`` gives the point estimates (it has no ``svy`` variance).

        Parameters
        ----------
        time : survival or censoring time, a number >= 0.
        event : 1 (or True) for an event, 0 for a censored time.
        by : a column: one curve per level.  With ``se=True`` each level is a domain of
            the design, as R's ``subset``.
        times : times at which to report S(t): the value at the last tabulated time <= t.
            None: every tabulated time.
        se : False: the weighted product-limit (Kaplan-Meier) estimate.  True: as R,
            exp(-weighted Nelson-Aalen cumulative hazard) instead, with ``se_log`` (the
            design-based standard error of log S(t)) and the interval exp(log S -+ z
            se_log), upper end capped at 1.  On a replicate design the standard errors
            come from the replicate weights (R has none there).
        na_rm : leave out rows with a missing time, event or by value (they stay in the
            design); without it they are an error that counts them.
        level : level of the intervals, default 0.95.

        Returns
        -------
        SurvivalCurves
            ``to_pandas()`` at `times`; ``curve()``, ``confint()``, ``quantile()`` and
            ``median_survival()``.

        Raises
        ------
        ColumnError : a column is not in the data, a negative time, an event not 0/1.
        MissingValueError : missing values in the rows used, without ``na_rm``.
        """
        from ..models.survival import km

        return km(self, time, event, by, times, se, na_rm, level)

    def median_survival(
        self, time: str, event: str, by: str | None = None, level: float = 0.95, times: Any = None,
        na_rm: bool = False,
    ) -> pd.DataFrame:
        """Median survival time with a confidence interval, per `by` group.

        R's ``quantile(svykm(..., se=TRUE), 0.5, ci=TRUE)``: the first time at which
        exp(-cumulative hazard) is <= 0.5, the interval from where its pointwise limits
        cross 0.5 (Inf where a curve never gets there).  Stata: ``stci, median`` (no
        ``svy`` interval).

        Parameters
        ----------
        time, event, by, level, times, na_rm : as for :meth:`km`.

        Returns
        -------
        pandas.DataFrame
            Per `by` group: ``estimate``, ``ci_low``, ``ci_high``.
        """
        return self.km(time, event, by, times=times, se=True, na_rm=na_rm, level=level).median_survival()

    @recorded
    def coxph(
        self,
        formula: str,
        ties: str = "efron",
        levels: Mapping[str, Sequence[Any]] | None = None,
        na_rm: bool = False,
        level: float = 0.95,
        eps: float = 1e-9,
        maxit: int = 20,
    ) -> "CoxResult":
        """Design-based Cox proportional-hazards regression.

        Mirrors R's ``svycoxph`` and Stata's ``svy: stcox``.

        Parameters
        ----------
        formula : ``"Surv(time, event) ~ x1 + x2"``; the right-hand side as for
            :meth:`glm` (factors with treatment contrasts, no intercept).
        ties : ``"efron"`` (R's default) or ``"breslow"`` (Stata's default).
        levels : dict column -> level order for factors (the first is the reference).
        na_rm : leave out rows with a missing model variable (they stay in the design);
            without it they are an error that counts them.
        level : level of the intervals, default 0.95.
        eps, maxit : R's ``coxph.control``: stop when the log partial likelihood changes
            by at most ``eps`` relative; at most ``maxit`` iterations.

        Returns
        -------
        CoxResult
            ``coef`` (log hazard ratios), ``se`` / ``vcov`` design-based (linearisation of
            the weighted score residuals times the inverse information, or refits with
            each replicate's weights), ``se_model``, ``hazard_ratio``; ``summary()`` as R's.

        Raises
        ------
        ColumnError : a variable of the formula is not in the data, a negative time, an
            event not 0/1.
        MissingValueError : missing values in the rows used, without ``na_rm``.
        EstimationError : aliased terms, no events.
        ConvergenceError : no convergence, or a coefficient that may be infinite.
        """
        from ..models.survival import coxph

        return coxph(self, formula, ties, levels, na_rm, level, eps, maxit)

    @recorded
    def adjust_nonresponse(
        self,
        respondent: str,
        classes: str | Sequence[str] | None = None,
        propensity: str | None = None,
        n_classes: int | None = 5,
    ) -> "Design":
        """A new design with the weights adjusted for unit nonresponse.

        Within each weighting class the respondents' weights are multiplied by (sum of
        the weights of all sampled units in the class) / (sum over its respondents);
        nonrespondents get weight 0 and stay in the design (their PSUs still count for
        the variance).  This is post-stratification of the respondents to the
        full-sample class totals, and the variance is R's for
        ``postStratify(subset(design, resp == 1), ~class, as.data.frame(svytable(~class,
        design)))``: the class totals are taken as known, so the variability of the
        full-sample totals is not in the SEs.

        It must be the first adjustment (a design straight from ``ssc.Design(...)``,
        optionally with :meth:`as_replicates`; calibrate afterwards): the design is
        built again with the nonrespondents' weights at exactly 0.  Where their
        outcomes are missing, estimate with ``na_rm=True`` or on the respondents'
        subset (``.subset(data[respondent] == 1)``), which also has R's degrees of
        freedom (PSUs with respondents; the whole design counts every PSU).

        Parameters
        ----------
        respondent : a 0/1 or logical column, 1 / True for a respondent.
        classes : weighting classes: ``"~a+b"``, a column or a list of columns (their
            complete cross-classification).
        propensity : instead of `classes`, a response-propensity model's right-hand
            side, ``"~ age + region"``: fitted with :meth:`glm` (``respondent ~ ...``,
            family ``"quasibinomial"``, design-weighted, on the whole sample).
        n_classes : with `propensity`, the number of propensity classes (weighted
            quantiles of the fitted propensity over all sampled units), within which
            the weights are adjusted as for `classes` (the default, more stable).
            ``None``: divide each respondent's weight by its fitted propensity instead;
            the variance takes those weights as sampling weights (R: ``svydesign`` on
            them), without the error of the estimated propensities.

        Returns
        -------
        Design
            ``weighting_report().adjustments[-1]`` has per class the ``target`` (full-
            sample total), ``before`` / ``after`` (respondents' weight), ``factor``,
            ``n``, ``n_respondents``, ``response_rate`` and ``weighted_response_rate``
            (with propensity classes also the propensities' range and mean); its
            ``details`` the overall response rates and the propensity model.

        Raises
        ------
        CalibrationError : a class with no respondents (named).
        DesignError : a design already weighted, or a domain (subset) of one.
        ColumnError : a respondent column that is not 0/1 or logical.
        MissingValueError : missing values in the respondent column, a class variable
            or a variable of the propensity model.
        """
        from ..weighting.adjust import adjust_nonresponse

        return adjust_nonresponse(self, respondent, classes, propensity, n_classes)




def _checked_weights(frame: Frame, weights: str | None, probs: str | None) -> np.ndarray:
    """The sampling weights from a weights or probs column, checked: complete, finite,
    non-negative (probs positive); weights as given (the core takes 1/(1/w))."""
    name = weights if weights is not None else probs
    assert name is not None
    role = "weights" if weights is not None else "probs"
    require_no_missing(frame, name, role)
    w = frame.numeric(name, role)
    invalid = int((w <= 0).sum()) if probs is not None else int((w < 0).sum())
    check_weight_counts(name, role, 0, 0, invalid, int((w > 0).sum()))
    return 1.0 / w if probs is not None else w


def _warn_fpc_varies(
    frame: Frame, id_names: list[str], strata: list[Coded], fpc: list[np.ndarray], ids_labels: np.ndarray | None
) -> None:
    """R's as.fpc warning "`fpc' varies within strata": the variance takes one population
    size per stratum (of each PSU's first row), so a varying fpc is probably a mistake."""
    n = frame.n_rows
    for stage, values in enumerate(fpc):
        # R's strata of stage s: the given strata nested in the clusters of the stage above.
        stratum = strata[min(stage, len(strata) - 1)] if strata else None
        keys = [stratum.codes if stratum is not None else np.zeros(n, np.uint32)]
        for s in range(stage):
            # Integer first-stage ids are their own labels; other ids are coded.
            keys.append(ids_labels if s == 0 and ids_labels is not None else frame.codes(id_names[s], "ids").codes)
        spread = pd.Series(values).groupby(keys, sort=True).agg(["min", "max"])
        varies = spread.index[(spread["max"] != spread["min"]).to_numpy()]
        if len(varies):
            first = varies[0] if isinstance(varies[0], tuple) else (varies[0],)
            label = stratum.labels[first[0]] if stratum is not None else 1
            where = f"stratum {label!r}"
            if stage:
                clusters = [
                    c if s == 0 and ids_labels is not None else frame.codes(id_names[s], "ids").labels[c]
                    for s, c in enumerate(first[1:])
                ]
                where += f" in cluster {'/'.join(map(str, clusters))} of {'/'.join(id_names[:stage])}"
            warnings.warn(
                f"fpc varies within strata: {where} at stage {stage + 1} (R's \"`fpc' varies within "
                "strata\"); the variance takes one population size per stratum, the fpc of its "
                "first PSU's first row: check the fpc column",
                SurveyWarning,
                stacklevel=4,
            )


def _zero_total_message(what: str, domain: int, domains: Any) -> str:
    """The core's zero total in domain `domain` (a code), named by its labels."""
    if domains is None:
        where = "over the design's rows"
    elif isinstance(domains[0], str):  # integer labels: the code is the label less the smallest
        where = f"in the domain {domains[0]} = {domains[1] + domain}"
    else:
        names, coded = domains
        values = domain_values(np.array([domain]), names, coded, None)
        where = "in the domain " + ", ".join(f"{name} = {values[name][0]!r}" for name in names)
    zero = "every row there has zero weight" if what == "total weight" else "the denominator sums to zero there"
    return f"the {what} is zero {where}: {zero}; leave that level out (subset) or check the weights"


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


def _name_columns(err: DesignError, columns: Mapping[str, Any]) -> str:
    """The core's message pointing at the user's columns of the role it names (the core
    passes the role, e.g. "fpc", after the message)."""
    message = str(err.args[0])
    role = err.args[1] if len(err.args) > 1 else None
    named = columns.get(role)
    if not named:
        return message
    return f"{message} (column {named!r})" if isinstance(named, str) else f"{message} (columns {role}={named})"


class ReplicateDesign(Design):
    """A survey design over data that come with replicate weights (R's ``svrepdesign``).

    The design is a :class:`Design` like any other; only its variance is by replicates.

    Parameters
    ----------
    data : pandas / polars DataFrame, LazyFrame or pyarrow Table.
    repweights : list of replicate-weight columns, or a regular expression matched
        against the column names (R's ``grep``).
    weights : the full-sample weight column; ``None`` = all 1.
    type : ``"BRR"``, ``"Fay"``, ``"JK1"``, ``"JKn"``, ``"bootstrap"``,
        ``"successive-difference"``, ``"ACS"``, ``"JK2"`` or ``"other"``; sets the
        default ``scale`` and ``rscales`` as R does (BRR 1/R, Fay 1/(R(1-rho)^2),
        bootstrap 1/(R-1), JK1 (R-1)/R, successive difference 4/R).
    scale, rscales : the overall and per-replicate multipliers of the variance.
    rho : Fay's coefficient (required with ``type="Fay"``).
    mse : centre the replicates at the full-sample estimate instead of their mean.
    combined_weights : the replicate columns are final analysis weights (R's
        default) rather than multipliers of ``weights``.
    subset : a domain of the finished design, as for :class:`Design`.

    Notes
    -----
    R: ``svrepdesign``; Stata: ``svyset [pw=w], vce(brr | jackknife | bootstrap | sdr)
    brrweight() / jkrweight() / bsrweight()``.
    """

    @recorded
    def __init__(
        self,
        data: Any,
        repweights: str | Sequence[str],
        weights: str | None = None,
        type: str = "BRR",
        scale: float | None = None,
        rscales: Sequence[float] | float | None = None,
        rho: float | None = None,
        mse: bool = False,
        combined_weights: bool = True,
        subset: Any = None,
    ) -> None:
        if type not in TYPES:
            raise DesignError(f"replicate type {type!r}; use one of {', '.join(TYPES)}")
        frame = Frame(data)
        columns = replicate_columns(frame, repweights)
        reps = np.column_stack([frame.numeric(c, "repweights") for c in columns])
        bad = np.isnan(reps).any(axis=0)
        if bad.any():
            name = columns[int(np.argmax(bad))]
            raise MissingValueError(
                f"replicate-weight column {name!r} has {int(np.isnan(reps[:, bad.argmax()]).sum())} missing values; "
                "replicate weights must be complete"
            )
        if weights is None:
            pweights = np.ones(frame.n_rows)
        else:
            require_no_missing(frame, weights, "weights")
            pweights = frame.numeric(weights, "weights")
        n_rep = reps.shape[1]
        scale, rscales = scale_and_rscales(type, n_rep, reps, scale, rscales, rho, combined_weights)
        analysis = reps if combined_weights else reps * pweights[:, None]
        self.core = _core.CoreDesign.from_replicate_weights(
            np.ascontiguousarray(pweights), np.ascontiguousarray(analysis), float(scale), list(rscales), mse
        )
        self.frame = frame
        self._strata_labels = []
        self._mask = None
        self.spec = {"repweights": columns if len(columns) <= 4 else f"{len(columns)} columns", "weights": weights,
                     "type": type, "scale": scale, "mse": mse}
        if subset is not None:
            self._mask = self._subset_mask(subset)
