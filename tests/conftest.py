"""Shared fixtures: the reference data folder (../shared/reference beside the checkout)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "reference"))

from run_cases import SHARED_REFERENCE as REFERENCE  # noqa: E402


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    if not REFERENCE.is_dir():
        pytest.skip(f"reference cases not found at {REFERENCE}")
    return REFERENCE
