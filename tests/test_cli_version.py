"""``sscoverage --version`` prints the version that Cargo.toml (the only place it lives) gives."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import sscoverage as ssc
from sscoverage.cli import main

CARGO_TOML = Path(__file__).resolve().parents[1] / "Cargo.toml"


def cargo_version() -> str:
    match = re.search(r'^version\s*=\s*"([^"]+)"', CARGO_TOML.read_text(encoding="utf-8"), re.MULTILINE)
    assert match is not None, "Cargo.toml has no version line"
    return match.group(1)


def test_version_flag_prints_cargo_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"sscoverage {cargo_version()}"
    assert ssc.__version__ == cargo_version()


def test_version_from_installed_entry_point() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "sscoverage.cli", "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == f"sscoverage {cargo_version()}"
