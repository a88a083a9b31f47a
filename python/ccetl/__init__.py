"""The `ccetl` binary this package installed (as ruff's and uv's wheels ship theirs)."""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from pathlib import Path


def find_ccetl_bin() -> str:
    """`$CCETL_BIN`, else the binary installed with this package (in the environment's
    scripts directory, which need not be on PATH: an Airflow worker's, say), else PATH."""
    explicit = os.environ.get("CCETL_BIN")
    if explicit:
        return explicit
    for scripts in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(scripts) / "ccetl"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("ccetl")
    if found:
        return found
    raise FileNotFoundError("no ccetl binary: pip install ccetl into this environment, or set CCETL_BIN")
