"""Shared test set-up: make ``tests/helpers_core.py`` importable from every test folder."""

from __future__ import annotations

import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:  # pytest's default import mode already adds it; other modes may not
    sys.path.insert(0, _TESTS)
