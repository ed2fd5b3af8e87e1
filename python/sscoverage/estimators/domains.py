"""Domains as subset designs, and weighted means and totals with their influence values.

The estimators built on means and totals of derived columns (quantiles, interval
methods for proportions, contingency-table tests, contrasts across domains) get those
means, totals and covariances from the core's fused pass (:func:`linear`).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from .._frames import OUTSIDE, domain_codes, domain_values
from ..exceptions import EmptyDomainError, SurveyWarning

if TYPE_CHECKING:
    from ..protocols import SurveyDesign


def coded_domains(design: "SurveyDesign", by: Any) -> tuple[list[str], np.ndarray, int, list[dict[str, Any]], list[str]]:
    """(by names, the domain code of each row, how many domains, the labels of each,
    notes): the domains of :func:`domains` as codes 0..k-1 in their order, for the
    estimators that take every domain in one call.

    A row's code is ``OUTSIDE`` when it is in no domain (outside the design's subset, a
    missing `by` value, or a domain left out).
    """
    names, coded = design.by_columns(by)
    scope = design.in_subset()
    codes, n_codes = domain_codes(coded, design.n_rows)
    if not names:
        return [], np.where(scope, 0, OUTSIDE).astype(np.uint32), 1, [{}], []
    notes = []
    for name, c in zip(names, coded):
        if c.missing is not None:
            notes.append(f"{int((c.missing & scope).sum())} rows with a missing {name!r} are in no domain")
            scope &= ~c.missing
    if not scope.any():
        raise EmptyDomainError("no rows are in any domain of the by columns")
    everywhere = bool(scope.all())
    codes = codes.astype(np.uint32) if everywhere else np.where(scope, codes, OUTSIDE).astype(np.uint32)
    used = codes if everywhere else codes[scope]
    counts = np.bincount(used, minlength=n_codes)
    weights = design.weights
    weight = np.bincount(used, weights=weights if everywhere else weights[scope], minlength=n_codes)
    present, values = present_domains(counts, weight, names, coded, notes)
    left_out = np.setdiff1d(np.flatnonzero(counts), present)
    if len(left_out):
        codes[np.isin(codes, left_out)] = OUTSIDE
    labels = [{name: values[name][i] for name in names} for i in range(len(present))]
    if len(present) < n_codes:
        # Domains renumbered 0..k-1 in the order of their codes.
        out = np.full(n_codes, OUTSIDE, dtype=np.uint32)
        out[present] = np.arange(len(present), dtype=np.uint32)
        codes = np.where(codes == OUTSIDE, OUTSIDE, out[np.minimum(codes, n_codes - 1)]).astype(np.uint32)
    return names, codes, len(present), labels, notes


def domains(design: "SurveyDesign", by: Any) -> tuple[list[str], list[tuple[dict[str, Any], "SurveyDesign"]], list[str]]:
    """(by names, [(labels of the domain, the domain as a subset design)], notes).

    Domains are the combinations of the `by` columns present in the design's rows, in
    the order of :meth:`Design.mean` with `by` (first column slowest).  Without `by`
    the one domain is the design itself.  Rows with a missing `by` value are in no
    domain (a note says how many).
    """
    if by is None:
        return [], [({}, design)], []
    names, codes, n_domains, labels, notes = coded_domains(design, by)
    return names, [(labels[d], design.subset(codes == d)) for d in range(n_domains)], notes


def domain_rows(design: "SurveyDesign", by: Any) -> tuple[list[str], list[Any], np.ndarray, int, list[str]]:
    """(by names, their codes, each row's domain code, the number of codes, notes): the
    domains of :func:`domains` as codes for one call of the core, ``OUTSIDE`` for rows
    outside the design's rows or with a missing `by` value (a note says how many)."""
    names, coded = design.by_columns(by)
    codes, n_domains = domain_codes(coded, design.n_rows)
    excluded = ~design.in_subset() if design.is_subset else None
    notes = []
    for name, c in zip(names, coded):
        if c.missing is not None:
            hit = c.missing if excluded is None else c.missing & ~excluded
            notes.append(f"{int(hit.sum())} rows with a missing {name!r} are in no domain")
            excluded = c.missing if excluded is None else excluded | c.missing
    if excluded is not None and excluded.all():
        raise EmptyDomainError("no rows are in any domain of the by columns")
    domain = codes if excluded is None else np.where(excluded, OUTSIDE, codes).astype(np.uint32)
    return names, coded, domain, n_domains, notes


def present_domains(n_rows: np.ndarray, weight_sum: np.ndarray, names: list[str], coded: list[Any],
                    notes: list[str], domain_labels: Any = None) -> tuple[np.ndarray, dict[str, list[Any]]]:
    """The domain codes with rows, less those whose rows all have zero weight (left out
    with a warning, as R's svyby does), and their labels (from `domain_labels`, a streamed
    design's table of its domains' by values, when given)."""
    present = np.flatnonzero(n_rows > 0)
    empty = present[weight_sum[present] == 0]
    if len(empty) == len(present):
        raise EmptyDomainError("the weights of the rows used sum to zero: no domain has a positive total weight")
    if len(empty):
        gone = domain_values(empty, names, coded, domain_labels)
        text = ", ".join("/".join(str(gone[name][i]) for name in names) for i in range(len(empty)))
        message = (f"{'/'.join(names)} = {text}: every row has zero weight, so the domain is left out "
                   "of the table (as R's svyby)")
        warnings.warn(message, SurveyWarning, stacklevel=4)
        notes.append(message)
        present = present[weight_sum[present] > 0]
    return present, domain_values(present, names, coded, domain_labels)


def linear(design: "SurveyDesign", x: np.ndarray, kind: str = "mean", n_numerators: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Means, totals or ratios (the first `n_numerators` columns over each of the others)
    of the columns of x over the design's rows, and their covariance.

    Through the core's fused pass, so a linearisation, calibrated, PPS or replicate
    design each gets its own variance from the one engine.  x must be complete in the
    design's rows (rows outside are never read).
    """
    x = np.asarray(x, dtype=np.float64).reshape(design.n_rows, -1)
    domain = np.where(design.in_subset(), 0, OUTSIDE).astype(np.uint32)
    numeric = [(j, np.ascontiguousarray(x[:, j])) for j in range(x.shape[1])]
    res = design.core.estimate(kind, domain, 1, numeric, [], n_numerators, False)
    p = int(res.p)
    return np.asarray(res.estimate), np.asarray(res.vcov).reshape(p, p)
