"""Counts of first-stage PSUs and strata, overall or per domain: the facts behind the
design degrees of freedom (R's ``degf``) and the headers of printed results."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..protocols import SurveyDesign


def first_stage_counts(
    design: SurveyDesign, rows: np.ndarray | None = None, groups: np.ndarray | None = None, n_groups: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Numbers of first-stage PSUs and of strata with rows in each group.

    Parameters
    ----------
    design : a design whose data are in memory (its ``spec`` names ``ids`` and ``strata``).
    rows : boolean mask of the rows that count; None = every row.
    groups : group code (0 .. n_groups - 1) of each row; None = one group.
    n_groups : number of groups.

    Returns
    -------
    (n_psu, n_strata) : two integer arrays of length `n_groups`.  A PSU is counted within
    its stratum, since with ``nest=True`` PSU labels repeat across strata.
    """
    spec: dict[str, Any] = design.spec
    ids, strata = spec["ids"], spec["strata"]
    sel = np.arange(design.n_rows) if rows is None else np.flatnonzero(rows)
    psu = design.frame.codes(ids[0], "ids").codes[sel].astype(np.int64) if ids else sel.astype(np.int64)
    stratum = (
        design.frame.codes(strata[0], "strata").codes[sel].astype(np.int64)
        if strata
        else np.zeros(len(sel), np.int64)
    )
    group = np.zeros(len(sel), np.int64) if groups is None else groups[sel].astype(np.int64)
    n_strata_codes = int(stratum.max(initial=0)) + 1
    n_psu_codes = int(psu.max(initial=0)) + 1
    # Two steps of dense keys keep every product below 2^63 for any number of rows.
    cell_keys, cell = np.unique(group * n_strata_codes + stratum, return_inverse=True)
    cell_group = cell_keys // n_strata_codes
    psu_keys = np.unique(cell.astype(np.int64) * n_psu_codes + psu)
    psu_group = cell_group[psu_keys // n_psu_codes]
    return (
        np.bincount(psu_group, minlength=n_groups),
        np.bincount(cell_group, minlength=n_groups),
    )
