"""Hypothesis profiles for the property tests, chosen by SSC_HYPOTHESIS_PROFILE.

``ci`` (the default) is fixed: derandomized, so every run tries the same examples, and
modest in size so the suite stays fast; ``dev`` explores more and at random.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=25,
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("SSC_HYPOTHESIS_PROFILE", "ci"))
