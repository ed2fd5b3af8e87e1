"""Replicate-weight designs: weights that come with a data set (R's ``svrepdesign``),
or built from a linearisation design (R's ``as.svrepdesign``).

The estimators are the design's own; only the variance differs: each estimate is
recomputed with every replicate's weights and the spread of those replicates,
``scale * sum_r rscales_r (theta_r - theta_bar)^2``, is its variance.
"""

from __future__ import annotations

import os

import re
import warnings
from typing import Any, Sequence

import numpy as np

from .._frames import Frame
from ..protocols import SurveyDesign
from ..exceptions import ColumnError, DesignError, NotSupportedError, SurveyWarning

TYPES = ("BRR", "Fay", "JK1", "JKn", "bootstrap", "successive-difference", "ACS", "JK2", "other")


def replicate_columns(frame: Frame, repweights: str | Sequence[str]) -> list[str]:
    if isinstance(repweights, str):
        pattern = re.compile(repweights)
        columns = [c for c in frame.columns if pattern.search(str(c))]
        if not columns:
            raise ColumnError(f"no column name matches the replicate-weight pattern {repweights!r}")
        return columns
    columns = list(repweights)
    for c in columns:
        frame.column(c)
    if not columns:
        raise DesignError("repweights names no column")
    return columns


def scale_and_rscales(
    kind: str, n_rep: int, reps: np.ndarray, scale: float | None, rscales: Any, rho: float | None, combined: bool
) -> tuple[float, np.ndarray]:
    """R's svrepdesign defaults for scale and rscales."""
    if kind == "Fay" and rho is None:
        raise DesignError("type='Fay' needs rho, Fay's coefficient")
    if kind == "BRR":
        scale = 1.0 / n_rep
    elif kind == "Fay":
        scale = 1.0 / (n_rep * (1 - rho) ** 2)
    elif kind == "bootstrap" and scale is None:
        scale = 1.0 / (n_rep - 1)
    elif kind == "JK1" and scale is None:
        scale = (n_rep - 1) / n_rep if combined else 1.0 / reps[:, 0].max()
    elif kind in ("successive-difference", "ACS"):
        scale, rscales = 4.0 / n_rep, None
    elif kind == "JK2":
        scale, rscales = 1.0, None
    elif kind == "JKn" and rscales is None:
        if combined:
            raise DesignError("type='JKn' with combined weights needs rscales, (n_h - 1)/n_h per replicate")
        rscales = 1.0 / reps.max(axis=0)
    if scale is None:
        scale = 1.0
    if rscales is None:
        rscales = np.ones(n_rep)
    rscales = np.broadcast_to(np.asarray(rscales, dtype=np.float64), (n_rep,)).copy()
    return float(scale), rscales


def _check_replicate_count(design: SurveyDesign, replicates: Any) -> None:
    """A bootstrap's replicate count: a whole number of at least 2 whose factors (PSUs x
    replicates, then rows x replicates of analysis weights) fit in half this machine's
    memory, so that a large request is an error rather than an abort."""
    if isinstance(replicates, bool) or not isinstance(replicates, (int, np.integer)) or replicates < 2:
        raise DesignError(f"replicates={replicates!r}: the bootstrap needs a whole number of at least 2 replicates")
    needed = 8 * int(replicates) * (design.n_psu + design.n_rows)
    memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    if needed > memory // 2:
        raise DesignError(
            f"{replicates} bootstrap replicates of {design.n_rows} rows need {needed / 2**30:.1f} GiB of "
            f"replicate weights, more than half this machine's {memory / 2**30:.1f} GiB: use fewer replicates"
        )


def replicate_core(design: SurveyDesign, type: str = "auto", rho: float = 0.0, mse: bool = False,
                   replicates: int = 50, seed: int | None = None, small: str = "fail",
                   large: str = "split") -> tuple[Any, dict[str, Any]]:
    """Replicate weights built from the first stage of a linearisation design: the core
    design that holds them and the design's description."""
    if design.is_replicate:
        raise NotSupportedError("the design already has replicate weights: use it directly "
                                "(as_replicates builds them from a linearisation design)")
    if type == "auto":
        type = "JKn" if design.spec.get("strata") else "JK1"
    brr = type in ("BRR", "Fay")
    if brr and design.spec.get("fpc"):
        warnings.warn("the finite population correction is dropped for BRR and Fay replicates (as R)",
                      SurveyWarning, stacklevel=3)
    if type in ("bootstrap", "subbootstrap"):
        _check_replicate_count(design, replicates)
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % (2**63))
    elif isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**64:
        raise DesignError(f"seed={seed!r}: give a whole number from 0 to 2**64 - 1, or None")
    rank = _brr_strata(design, small, large) if brr else None
    core = design.core.as_replicates(type, rho=rho, mse=mse, replicates=replicates, seed=seed,
                                      stratum_rank=rank, small=small, large=large)
    spec = {**design.spec, "type": type, "mse": mse}
    if brr and (small, large) != ("fail", "split"):
        spec.update(small=small, large=large)
    if type == "Fay":
        spec["rho"] = rho
    if type in ("bootstrap", "subbootstrap"):
        spec["seed"] = seed
    return core, spec


def r_text(label: Any) -> str:
    """A label as R's ``as.character`` writes it (R's BRR sorts the strata as text):
    integers in full, doubles to 15 significant digits, fixed or scientific whichever is
    shorter, logicals as TRUE / FALSE."""
    if isinstance(label, (bool, np.bool_)):
        return "TRUE" if label else "FALSE"
    if isinstance(label, (int, np.integer)):
        return str(int(label))
    if isinstance(label, (float, np.floating)):
        value = float(f"{float(label):.15g}")
        mantissa, _, exponent = f"{value:.14e}".partition("e")
        mantissa = mantissa.rstrip("0").rstrip(".")
        power = int(exponent)
        scientific = f"{mantissa}e{'-' if power < 0 else '+'}{abs(power):02d}"
        fixed = np.format_float_positional(value, trim="-")
        return fixed if len(fixed) <= len(scientific) else scientific
    return str(label)


def _brr_strata(design: SurveyDesign, small: str, large: str) -> list[int]:
    """Each first-stage stratum's place among the labels sorted as text (R's
    ``brrweights`` pairs PSUs in that order), after checking the PSU counts against
    `small` and `large` with the strata's own labels."""
    if small not in ("fail", "split", "merge"):
        raise DesignError(f"small={small!r}; use 'fail', 'split' or 'merge' (R's brrweights)")
    if large not in ("split", "merge", "fail"):
        raise DesignError(f"large={large!r}; use 'split', 'merge' or 'fail' (R's brrweights)")
    strata, ids = design.spec.get("strata"), design.spec.get("ids")
    if not strata:
        raise DesignError("BRR and Fay need strata; use type='JK1' or 'bootstrap' for an unstratified design")
    coded = design.frame.codes(strata[0], "strata")
    stratum = coded.codes.astype(np.int64)
    psu = design.frame.codes(ids[0], "ids").codes.astype(np.int64) if ids else np.arange(design.n_rows)
    # PSUs per stratum (PSU labels may repeat across strata with nest=True).
    width = int(psu.max()) + 1
    present, n_psu = np.unique(np.unique(stratum * width + psu) // width, return_counts=True)
    labels = [coded.labels[c] for c in present]
    counts = dict(zip(labels, n_psu.tolist()))
    lonely = [lab for lab, k in counts.items() if k == 1]
    many = {lab: k for lab, k in counts.items() if k > 2}
    if lonely and small == "fail":
        raise DesignError(
            f"BRR needs at least two PSUs per stratum: stratum {lonely[0]!r} has one"
            f"{f' (and {len(lonely) - 1} more)' if len(lonely) > 1 else ''}; set small='split' "
            "(no variance from it) or small='merge' (pairs such strata), as R's brrweights"
        )
    if len(lonely) == 1 and small == "merge":
        raise DesignError(f"small='merge' needs two or more strata with one PSU; only stratum {lonely[0]!r} "
                          "has one: set small='split'")
    if many and large == "fail":
        label = next(iter(many))
        raise DesignError(f"BRR needs two PSUs per stratum: stratum {label!r} has {many[label]}; "
                          "set large='split' or 'merge'")
    odd = [lab for lab, k in many.items() if k % 2]
    if odd and large == "split":
        raise DesignError(
            f"stratum {odd[0]!r} has {many[odd[0]]} PSUs, an odd number that large='split' cannot "
            "pair (R: \"Can't split with odd numbers of PSUs in a stratum\"); set large='merge'"
        )
    texts = [r_text(lab) for lab in labels]
    order = sorted(range(len(texts)), key=texts.__getitem__)
    rank = [0] * len(texts)
    for place, k in enumerate(order):
        rank[k] = place
    return rank
