"""The protocol estimators are written against.

An estimator is a function of a design: it reads the design's data source and weights,
asks which rows are in scope, and hands influence values (or replicate estimates) to
the design's variance.  It never needs the :class:`~sscoverage.Design` class itself, so
estimator modules sit below the design in the package and import nothing of it.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol

import numpy as np


class SurveyDesign(Protocol):
    """What an estimator may ask of a design (every :class:`~sscoverage.Design` is one)."""

    #: The data source: columns by name, coded (``Frame``); None for a streamed design.
    frame: Any
    #: The core design in Rust: weights, variance specification, estimate kernels.
    core: Any
    #: The design's description (ids, strata, weights, fpc, replicate type, ...).
    spec: Mapping[str, Any]

    @property
    def n_rows(self) -> int: ...

    @property
    def weights(self) -> np.ndarray: ...

    @property
    def degf(self) -> int: ...

    @property
    def is_replicate(self) -> bool: ...

    @property
    def n_psu(self) -> int | None: ...

    @property
    def is_subset(self) -> bool: ...

    def in_subset(self) -> np.ndarray:
        """Rows of the domain the design stands for (a boolean mask)."""
        ...

    def influence_vcov(self, influence: np.ndarray, in_domain: np.ndarray | None = None) -> np.ndarray:
        """Taylor covariance of per-row influence values (rows x p)."""
        ...

    def replicate_vcov(self, thetas: np.ndarray, full: np.ndarray) -> np.ndarray:
        """Replicate covariance of estimates recomputed with each replicate's weights."""
        ...

    def replicate_weights(self) -> np.ndarray:
        """Analysis weights of every replicate (rows x replicates)."""
        ...

    def subset(self, mask: Any) -> "SurveyDesign":
        """The design restricted to a domain (rows kept, as R's ``subset``)."""
        ...


class EstimateTable(Protocol):
    """What a table, flag or plot of estimates reads (every
    :class:`~sscoverage.Estimates` is one)."""

    #: What was estimated, e.g. "mean" or "ratio".
    statistic: str
    #: One row per domain and variable: estimate, se, ci_low, ci_high, cv, n, ...
    table: Any
    #: The by columns that define the domains.
    by: list[str]
    #: Confidence level of the intervals.
    level: float
    #: Degrees of freedom of the intervals (None: normal).
    df: float | None
    #: The call and the design that produced the estimates.
    provenance: Any


class FittedModel(Protocol):
    """What predictions and margins read of a fitted regression (every
    :class:`~sscoverage.GLMResult` is one)."""

    formula: str
    link: str
    coef: np.ndarray
    vcov: np.ndarray
    df_residual: int
    level: float
    #: The design the model was fitted on.
    design: SurveyDesign
    #: The model frame: data, factor levels and the formula's encoding of new data.
    model_frame: Any
    #: The coefficients refitted with each replicate's weights (replicate designs).
    replicate_coef: np.ndarray | None

    @property
    def influence(self) -> np.ndarray | None:
        """The coefficients' influence values on the fitted rows (linearisation designs)."""
