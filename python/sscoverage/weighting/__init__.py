"""Weighting: post-stratification, raking, calibration, trimming and nonresponse
adjustment of a design's weights (the design methods of the same names call these)."""

from .adjust import (
    CALFUNS,
    Adjustment,
    WeightingReport,
    adjust_nonresponse,
    calibrate,
    poststratify,
    rake,
    report,
    trim_weights,
)

__all__ = ["CALFUNS", "Adjustment", "WeightingReport", "adjust_nonresponse", "calibrate", "poststratify", "rake",
           "report", "trim_weights"]
