"""Designs over data larger than memory: a polars LazyFrame (``pl.scan_parquet`` over
many files) streamed in batches, or a Dask DataFrame reduced partition by partition
where each partition lives (only the sums travel to the client).

Each batch (partition) is reduced by the core's one pass to per-(domain, PSU) sums,
with PSUs and domains coded for the whole data set; the sums are added in batch order
(so the digits do not depend on threads, chunking or workers) and the design's variance
engine takes it from there — the numbers of the in-memory path.

What streams: means, totals and ratios with ``by=``, ``subset`` conditions, ``na_rm``
and ``deff``; proportions with every interval of :meth:`Design.ciprop`, tests of
association in two-way tables (:meth:`Design.chisq`) and contrasts of domain means or
totals (:meth:`Design.contrast`), finished by the core from the same sums (see
:mod:`sscoverage.stream.tables`); quantiles with Woodruff intervals, ``by=`` and subsets
(:meth:`StreamedDesign.quantile`: windows of each domain's values narrowed pass by pass
and read by the core's rule, see :mod:`sscoverage.stream.quantile`); survival curves
(:meth:`StreamedDesign.km`: one pass, and one more per variance with ``se=True``, see
:mod:`sscoverage.stream.survival`); GLMs (:meth:`StreamedDesign.glm`: one pass per IRLS iteration, see
:mod:`sscoverage.stream.glm`); raking (:meth:`StreamedDesign.rake`: two passes to
the collapsed cell table, see :mod:`sscoverage.stream.weighting`), after which
estimates carry R's raking residuals into their variance.

Memory bound: one batch (``batch_rows`` rows of the columns an estimate reads, or a
Dask partition per worker) plus the tables of sums — n_domains x n_PSUs x (2 + outcome
columns) for an estimate, p x p per batch for a GLM, n_PSUs x n_cells for a rake, a
histogram of the occupied bins (a 256th of a binade, then finer) per domain and quantile
level and a few thousand values at most per window for a quantile — and
the design's PSU table.  Nothing grows with the number of rows (but a quantile whose
window cannot decide at the last bit reads its domain's values and weights, see
:mod:`sscoverage.stream.quantile`).

Scope: first-stage variance (strata, PSUs, a first-stage fpc; later stages by the
ultimate-cluster approximation, as without fpc).  What needs every row at once —
calibration other than raking, per-row replicate weights, PPS, the interpolating
quantile rules and score intervals, a GLM or quantiles on a raked design — needs the
data in memory: ``collect()``.
"""

from __future__ import annotations

import inspect
import functools
from typing import Any, Callable, Iterable, Mapping, Sequence, TypeVar

import numpy as np
import polars as pl

from .._frames import Coded, check_weight_counts
from .._progress import track
from .._provenance import recorded
from .._frames import SUBSET_OPS, column_names
from ..design.design import Design
from .batches import UNIT, expression_columns, is_dask, on_polars, streams
from .sums import Plan, Sums, add_sums, batch_sums
from ..exceptions import ColumnError, DesignError, EmptyDomainError, MissingValueError, NotSupportedError, OptionError
from ..results.estimates import Estimates

T = TypeVar("T")


class StreamedDesign(Design, source=streams):
    """A survey design over a polars LazyFrame or a Dask DataFrame; see the module notes.

    Built by :class:`Design` when `data` is one of those.

    Parameters
    ----------
    data : a polars LazyFrame (``pl.scan_parquet(...)``) or a Dask DataFrame.
    ids, strata, weights, probs, fpc, nest, lonely_psu : as for :class:`Design`; one
        strata and at most one fpc column (the first-stage variance), ids required.
    adjust_domain_lonely, pps, variance : as for :class:`Design`; only their defaults
        stream (the others need the rows in memory).
    subset : a domain: a polars expression or ``{"column", "op", "value"}``.
    batch_rows : rows per streamed batch of a LazyFrame.
    progress : show a progress bar over the batches.
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
        pps: Any = None,
        variance: str = "HT",
        subset: Any = None,
        batch_rows: int = 1_000_000,
        progress: bool = True,
    ) -> None:
        id_names, strata_names, fpc_names = column_names(ids, "ids"), column_names(strata, "strata"), column_names(fpc, "fpc")
        if not id_names:
            raise DesignError("a streamed design needs PSU ids (ids=...): with one row per PSU, collect() the data")
        if pps is not None or adjust_domain_lonely or variance != "HT":
            raise DesignError("PPS and domain lonely-PSU options need the rows in memory: collect() the data")
        if len(strata_names) > 1 or len(fpc_names) > 1:
            raise DesignError(
                "a streamed design uses the first-stage variance: give one strata and at most one fpc "
                "column (later stages need the rows: collect() the data)"
            )
        if weights is not None and probs is not None:
            raise DesignError("give weights or probs, not both")
        self._source = data
        self._dask = is_dask(data)
        self.batch_rows = int(batch_rows)
        self._progress = progress
        columns = list(data.columns) if self._dask else list(data.collect_schema().names())
        self.columns = columns
        keys = strata_names + id_names[:1]
        for name in keys + fpc_names + [c for c in (weights, probs) if c]:
            self.require_column(name)
        # The PSU table: one row per first-stage PSU, with its stratum and fpc.
        psus = self._unique(keys + fpc_names).sort(keys)
        if psus.select(pl.any_horizontal(pl.all().is_null()).any()).item():
            raise MissingValueError(f"columns {keys + fpc_names} have missing values; design variables must be complete")
        structure = Design(psus.to_pandas(), ids=id_names[0], strata=strata_names or None,
                           fpc=fpc_names or None, nest=nest, lonely_psu=lonely_psu)
        self.core = structure.core
        self.psu_table = psus.select(keys).with_columns(pl.Series(UNIT, structure.core.unit_of_row))
        self.psu_keys = keys
        self.weight_expr = (
            pl.col(weights).cast(pl.Float64) if weights else
            1.0 / pl.col(probs).cast(pl.Float64) if probs else pl.lit(1.0)
        )
        self.weight_name = weights or probs
        if self.weight_name:
            self._check_weights(self.weight_name, "weights" if weights else "probs")
        self._strata_labels = structure._strata_labels
        self.frame = None
        self._mask = None
        self.condition: pl.Expr | None = None
        self.raked: Any = None  # a Raked (see stream.weighting) once raked
        self._n_rows = int(self._count())
        self.spec = {"ids": id_names, "strata": strata_names, "weights": weights, "probs": probs,
                     "fpc": fpc_names, "nest": nest, "lonely_psu": lonely_psu, "streamed": True}
        if subset is not None:
            self.condition = self._expression(subset)

    # ------------------------------------------------------------ data access
    def require_column(self, name: str) -> None:
        """Raise :class:`~sscoverage.ColumnError` unless the data have a column `name`.

        Parameters
        ----------
        name : the column's name.
        """
        if name not in self.columns:
            raise ColumnError(f"column {name!r} is not in the data")

    def _lazy(self, columns: list[str]) -> pl.LazyFrame:
        return self._source.select(columns)

    def _unique(self, columns: list[str]) -> pl.DataFrame:
        if self._dask:
            return pl.from_pandas(self._source[columns].drop_duplicates().compute().reset_index(drop=True))
        return self._source.select(columns).unique().collect(engine="streaming")

    def schema(self) -> dict[str, pl.DataType]:
        """Column types as polars sees them (a Dask frame's from its typed sample rows)."""
        if self._dask:
            return dict(pl.from_pandas(self._source._meta_nonempty).schema)
        return dict(self._source.collect_schema())

    def _check_weights(self, name: str, role: str) -> None:
        """The in-memory design's weight check, on counts from one pass over the data."""
        if not self.schema()[name].is_numeric():
            raise ColumnError(f"column {name!r} ({role}) must be numeric, not {self.schema()[name]}")
        if self._dask:
            import dask

            w = self._source[name].astype("float64")
            invalid = (w <= 0) if role == "probs" else (w < 0)
            counts = dask.compute(w.isna().sum(), np.isinf(w).sum(), invalid.sum(), (w > 0).sum())
        else:
            w = pl.col(name).cast(pl.Float64)
            invalid = (w <= 0) if role == "probs" else (w < 0)
            row = self._source.select(
                (w.is_null() | w.is_nan()).sum().alias("missing"), w.is_infinite().sum().alias("infinite"),
                invalid.sum().alias("invalid"), (w > 0).sum().alias("positive"),
            ).collect(engine="streaming").row(0)
            counts = tuple(row)
        check_weight_counts(name, role, *(int(c) for c in counts))

    def _count(self) -> int:
        if self._dask:
            return int(self._source.shape[0].compute())
        return int(self._source.select(pl.len()).collect(engine="streaming").item())

    # ------------------------------------------------------------ design facts
    @property
    def n_rows(self) -> int:
        """Number of rows of the whole data set (counted in one pass when built)."""
        return self._n_rows

    @property
    def n_psu(self) -> int:
        """First-stage PSUs of the whole data set (the design's PSU table)."""
        return self.psu_table.height

    @property
    def n_strata(self) -> int:
        """First-stage strata of the whole data set (1 without strata)."""
        strata = self.spec["strata"]
        return self.psu_table.select(strata).n_unique() if strata else 1

    @property
    def weights(self) -> np.ndarray:
        """Not held: a streamed design never has every row's weight in memory (raises
        :class:`~sscoverage.DesignError`)."""
        raise DesignError("a streamed design does not hold its rows' weights")

    @property
    def is_subset(self) -> bool:
        """True for a domain taken with :meth:`subset`."""
        return self.condition is not None

    def subset(self, mask: Any) -> "StreamedDesign":
        """The domain where `mask` holds, keeping the whole design for the variance
        (R's ``subset(design, ...)``, Stata's ``subpop()``).

        Parameters
        ----------
        mask : a polars expression (``pl.col("age") >= 16``; null = outside) or
            ``{"column", "op", "value"}`` as for :meth:`Design.subset`.

        Returns
        -------
        StreamedDesign
        """
        new = object.__new__(StreamedDesign)
        new.__dict__.update(self.__dict__)
        expr = self._expression(mask)
        new.condition = expr if self.condition is None else self.condition & expr
        return new

    def _expression(self, cond: Any) -> pl.Expr:
        if isinstance(cond, pl.Expr):
            return cond.fill_null(False)
        if not isinstance(cond, Mapping):
            raise DesignError("a streamed design takes a subset as a polars expression or a condition dict")
        column, op, value = cond.get("column"), cond.get("op"), cond.get("value")
        if op not in SUBSET_OPS:
            raise OptionError(f"subset op {op!r} is not one of {', '.join(SUBSET_OPS)}")
        self.require_column(column)
        c = pl.col(column)
        expr = {
            "==": lambda: c == value, "!=": lambda: c != value, "<": lambda: c < value, "<=": lambda: c <= value,
            ">": lambda: c > value, ">=": lambda: c >= value, "in": lambda: c.is_in(list(value)),
            "not_na": lambda: c.is_not_null(),
        }[op]()
        return expr.fill_null(False)

    def __repr__(self) -> str:
        kind = "Dask DataFrame" if self._dask else "LazyFrame"
        return f"<sscoverage.StreamedDesign over a {kind}: {self._n_rows} rows, {self.degf} design df>"

    def map_batches(self, columns: list[str], reduce: Callable[..., T], *args: Any, label: str = "streamed batches",
                     progress: bool | None = None) -> Iterable[T]:
        """`reduce(*args, batch)` of every batch (a polars frame) of `columns`, in batch order.

        A LazyFrame's batches are streamed here; each Dask partition is reduced where it
        lives (only the results travel).

        Parameters
        ----------
        columns : the columns each batch holds.
        reduce : called as ``reduce(*args, batch)``; its results are what travels.
        *args : passed to `reduce` before the batch (small: they go to every worker).
        label : text of the progress bar.
        progress : show a progress bar; None: as the design was built.

        Returns
        -------
        Iterable
            `reduce`'s result for each batch, in batch order.
        """
        if self._dask:
            import dask

            parts = self._source[columns].to_delayed()
            return dask.compute(*[dask.delayed(on_polars)(reduce, args, part) for part in parts])
        batches = self._source.select(columns).collect_batches(chunk_size=self.batch_rows, maintain_order=True)
        n_batches = -(-self._n_rows // self.batch_rows)
        show = self._progress if progress is None else progress
        return (reduce(*args, batch) for batch in track(batches, n_batches, label, show))

    def reduce_batches(self, columns: list[str], reduce: Callable[..., T], combine: Callable[[T, T], T], *args: Any,
                       label: str = "streamed batches", progress: bool | None = None) -> T:
        """Every batch reduced by `reduce(*args, batch)` and the results combined into one
        by `combine`: a LazyFrame's in batch order; Dask partitions' in a binary tree on
        the workers (pairs of neighbouring partitions, then pairs of those, ...), so that
        only the combined result travels to the client.  Either order is fixed by the
        data, not by threads or workers: the same digits every run.

        Parameters
        ----------
        columns, reduce, *args, label, progress : as for :meth:`map_batches`.
        combine : ``combine(a, b)`` of two results, `a` from the earlier batches.

        Returns
        -------
        object
            The one combined result.
        """
        if not self._dask:
            return functools.reduce(combine, self.map_batches(columns, reduce, *args, label=label, progress=progress))
        import dask

        level = [dask.delayed(on_polars)(reduce, args, part) for part in self._source[columns].to_delayed()]
        while len(level) > 1:
            level = [dask.delayed(combine)(level[i], level[i + 1]) if i + 1 < len(level) else level[i]
                     for i in range(0, len(level), 2)]
        return level[0].compute()

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
    ) -> Any:
        """Design-based GLM over the streamed rows, one pass over the batches per IRLS
        iteration; the numbers of :meth:`Design.glm` on the same data (see
        :func:`sscoverage.stream.glm.streamed_glm`).

        Parameters
        ----------
        formula, family, link, levels, level, epsilon, maxit : as for :meth:`Design.glm`.
        progress : show a progress bar over the batches of each pass.

        Returns
        -------
        GLMResult
        """
        from .glm import streamed_glm

        return streamed_glm(self, formula, family, link, levels, level, epsilon, maxit, progress)

    def rake(self, margins: Any, control: Mapping[str, Any] | None = None, force: bool = False) -> "StreamedDesign":
        """:meth:`Design.rake` on the collapsed cell table: two passes over the batches,
        then later estimates carry the rake into their variance as in memory (see
        :mod:`sscoverage.stream.weighting`).

        Parameters
        ----------
        margins, control, force : as for :meth:`Design.rake`.

        Returns
        -------
        StreamedDesign
        """
        from .weighting import streamed_rake

        return streamed_rake(self, margins, control, force)

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
        """:meth:`Design.quantile` over the streamed rows, with its numbers: a few passes
        narrow each domain's distribution to a window around the quantile (and around the
        Woodruff limits) and the core's rule reads the window (see
        :mod:`sscoverage.stream.quantile`).  Serves the step rules (``math``, ``school``)
        and Woodruff's intervals (``mean``, ``beta``, ``xlogit``, ``asin``); the others
        raise :class:`~sscoverage.NotSupportedError`.

        Parameters
        ----------
        y, quantiles, by, level, qrule, interval_type, na_rm, df : as for :meth:`Design.quantile`.
        progress : unused (the passes are quick); kept for the in-memory signature.

        Returns
        -------
        Estimates
        """
        from .quantile import streamed_quantile

        return streamed_quantile(self, y, quantiles, by, level, qrule, interval_type, na_rm, df)

    @recorded
    def km(
        self,
        time: str,
        event: str,
        by: str | None = None,
        times: Any = None,
        se: bool = False,
        na_rm: bool = False,
        level: float = 0.95,
    ) -> Any:
        """:meth:`Design.km` over the streamed batches: one pass sums each curve's rows
        at its distinct times; with ``se=True`` each variance asked for is one more pass
        (see :mod:`sscoverage.stream.survival`).

        Parameters
        ----------
        time, event, by, times, se, na_rm, level : as for :meth:`Design.km`.

        Returns
        -------
        SurvivalCurves
        """
        from .survival import streamed_km

        return streamed_km(self, time, event, by, times, se, na_rm, level)

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
        progress: bool = True,
    ) -> Any:
        """:meth:`Design.coxph` over the streamed batches: R's Newton-Raphson with one pass
        per step, each batch summing its rows to the fit's event times (see
        :func:`sscoverage.stream.survival.streamed_coxph`).

        Parameters
        ----------
        formula, ties, levels, na_rm, level, eps, maxit : as for :meth:`Design.coxph`.
        progress : show a progress bar over the batches of each pass.

        Returns
        -------
        CoxResult
        """
        from .survival import streamed_coxph

        return streamed_coxph(self, formula, ties, levels, na_rm, level, eps, maxit, progress)

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
        """:meth:`Design.ciprop` over the streamed batches, every method with the in-memory
        numbers: one pass of sums for ``mean``, ``xlogit``, ``asin``, ``beta`` and
        ``wilson``, one more for ``logit`` and ``likelihood`` (R's svyglm fit starts per row),
        a quick one checking the values, and one with missing values left out (see
        :mod:`sscoverage.stream.tables`); on a raked design too.

        Parameters
        ----------
        y, method, level, by, df, na_rm : as for :meth:`Design.ciprop`.

        Returns
        -------
        Estimates
        """
        from .tables import streamed_ciprop

        return streamed_ciprop(self, y, method, level, by, df, na_rm)

    @recorded
    def chisq(self, row: str, col: str, statistic: str = "F", na_rm: bool = True) -> Any:
        """:meth:`Design.chisq` over the streamed batches, every statistic (Rao-Scott,
        Wald, saddlepoint) with the in-memory numbers: one pass finds the levels, one sums
        the cells (see :mod:`sscoverage.stream.tables`); on a raked design too.

        Parameters
        ----------
        row, col, statistic, na_rm : as for :meth:`Design.chisq`.

        Returns
        -------
        ChisqTest
        """
        from .tables import streamed_chisq

        return streamed_chisq(self, row, col, statistic, na_rm)

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
        """:meth:`Design.contrast` over the streamed batches, with the in-memory numbers:
        the domains' means or totals and their joint covariance from one pass's sums
        (see :mod:`sscoverage.stream.tables`); on a raked design too.

        Parameters
        ----------
        y, contrasts, statistic, by, na_rm, level, df : as for :meth:`Design.contrast`.

        Returns
        -------
        Estimates
        """
        from .tables import streamed_contrast

        return streamed_contrast(self, y, contrasts, statistic, by, na_rm, level, df)

    # ------------------------------------------------------------ what it cannot serve
    def _not_supported(self, method: str) -> NotSupportedError:
        kind = "Dask DataFrame" if self._dask else "LazyFrame"
        return NotSupportedError(
            f"{method}() needs the rows in memory, which a design over a {kind} does not hold: collect() the "
            f"data (ssc.Design(lazy.collect(), ...), or ddf.compute()) and use the in-memory design; "
            f"streamed designs serve {', '.join(STREAMED_METHODS)}"
        )

    def sums_pass(self, kind: str, outcomes: list[str], by: Any, na_rm: bool, deff: bool = False,
                  derived: Sequence[pl.Expr] = (), factors: Sequence[str] | None = None) -> tuple[Plan, Sums]:
        """One pass over the batches: per-(domain, PSU) sums of `outcomes` by `by` within the
        design's subset (and, on a raked design, per (domain, cell)), with the domains and
        factor levels the rows hold, added in batch order.

        Parameters
        ----------
        kind : the estimator the sums are for (named in messages; a ratio takes no factors).
        outcomes : the columns summed (text, categorical and logical ones level by level).
        by, na_rm, deff : as for :meth:`mean`.
        derived : polars expressions adding columns to each batch before it is read (an
            outcome may name one); they read only the data's own columns.
        factors : the outcomes summed level by level; None: those of a factor type.

        Returns
        -------
        (Plan, Sums)
        """
        by_names = column_names(by, "by")
        made = {e.meta.output_name() for e in derived}
        for name in [o for o in outcomes if o not in made] + by_names:
            self.require_column(name)
        schema = self.schema()
        if factors is None:
            factors = [n for n in outcomes if kind != "ratio" and _is_factor(schema[n])]
        # Domains sort as polars sorts the by columns (an Enum in its declared order).
        by_rank = [{v: i for i, v in enumerate(schema[n].categories.to_list())} if isinstance(schema[n], pl.Enum)
                   else None for n in by_names]
        raked_rows = self.raked.rows if self.raked is not None else None
        raked_columns = raked_rows.cells.columns if raked_rows is not None else []
        read = [c for e in derived for c in expression_columns(e)] + [o for o in outcomes if o not in made]
        columns = list(dict.fromkeys(self.psu_keys + read + by_names + [c for c in [self.weight_name] if c]
                                     + expression_columns(self.condition) + raked_columns))
        plan = Plan(self.psu_keys, self.psu_table, by_names, by_rank, outcomes, list(factors), self.condition,
                    self.weight_expr, kind, len(self.psu_table), na_rm, deff, raked_rows, derived=tuple(derived))
        # One pass: each batch finds its own domains and factor levels beside its sums.
        return plan, self.reduce_batches(columns, batch_sums, functools.partial(add_sums, plan), plan)

    # ------------------------------------------------------------ estimation
    def _estimate(
        self,
        kind: str,
        outcomes: list[str],
        by: Any,
        na_rm: bool,
        deff: bool,
        level: float,
        df: float | str | None,
        n_numerators: int = 0,
    ) -> Estimates:
        if not outcomes:
            raise OptionError("name at least one outcome column")
        plan, sums = self.sums_pass(kind, outcomes, by, na_rm, deff)
        by_names = plan.by_names
        n_domains = len(sums.domains)
        if n_domains == 0:
            raise EmptyDomainError(f"the by columns {by_names} hold no values")
        n_removed, n_missing_by = (int(c) for c in sums.counts)
        raked = (sums.cells.ravel(), self.raked.core) if self.raked is not None else None
        res = self.core.estimate_from_sums(kind, sums.table.ravel(), sums.squares.ravel(), n_domains,
                                            sums.width(plan), n_numerators=n_numerators, raked=raked)
        present = np.flatnonzero(np.asarray(res.n_rows) > 0)
        if len(present) == 0:
            raise EmptyDomainError("no rows are left to estimate from (subset and missing values)")
        notes = [f"{n_missing_by} rows with a missing by value are in no domain"] if n_missing_by else []
        spec = [(n, sums.levels.get(n)) for n in outcomes]
        by_levels = pl.DataFrame({n: [d[i] for d in sums.domains] for i, n in enumerate(by_names)}) if by_names else None
        by_coded = [Coded(np.zeros(0, np.uint32), by_levels.get_column(n).to_list(), None) for n in by_names]
        return self._result(kind, res, spec, n_numerators, by_names, by_coded, present, level, df, n_removed,
                            notes, deff, domain_labels=by_levels)


#: The methods a streamed design serves with the in-memory numbers.
STREAMED_METHODS = ("mean", "total", "ratio", "quantile", "ciprop", "chisq", "contrast", "subset", "glm", "rake",
                    "km", "median_survival", "coxph", "to_json")
#: Design methods that need the rows in memory: on a streamed design they raise
#: NotSupportedError (they used to fail on attributes a streamed design lacks, or, as
#: trim_weights, to give other numbers).
IN_MEMORY_METHODS = ("threshold_glm",
                     "poststratify", "calibrate", "trim_weights", "as_replicates", "adjust_nonresponse",
                     "with_columns", "weighting_report", "plot_weights", "in_subset", "by_columns",
                     "influence_vcov", "replicate_vcov", "replicate_weights")


def _refuse(method: str) -> Callable[..., Any]:
    def refuse(self: StreamedDesign, *args: Any, **kwargs: Any) -> Any:
        raise self._not_supported(method)

    refuse.__name__ = refuse.__qualname__ = method
    refuse.__doc__ = "Not served by a streamed design: raises :class:`~sscoverage.NotSupportedError`."
    # The in-memory method's parameters, so that a notebook shows what the call takes.
    refuse.__signature__ = inspect.signature(getattr(Design, method))  # type: ignore[attr-defined]
    return refuse


for _method in IN_MEMORY_METHODS:
    setattr(StreamedDesign, _method, _refuse(_method))


def _is_factor(dtype: pl.DataType) -> bool:
    """An outcome estimated level by level: text, categorical or logical."""
    return dtype in (pl.String, pl.Categorical, pl.Enum, pl.Boolean)
