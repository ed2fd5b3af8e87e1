"""Running a script under different thread counts of the core (rayon), for the tests
that the digits do not depend on them."""

from __future__ import annotations

import os
import subprocess
import sys


def outputs_by_threads(code: str, *args: str, threads: tuple[str, ...] = ("1", "2")) -> list[str]:
    """What `code` prints, run in a fresh interpreter with each RAYON_NUM_THREADS."""
    return [
        subprocess.run([sys.executable, "-c", code, *args], env={**os.environ, "RAYON_NUM_THREADS": t},
                       capture_output=True, text=True, check=True).stdout
        for t in threads
    ]
