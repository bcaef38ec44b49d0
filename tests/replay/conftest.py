"""Shared set-up of the replay tests: fixtures writing the cases of ``replay_cases.py`` to files."""

from __future__ import annotations

from pathlib import Path

import pytest
from replay_cases import PLATFORM_YAML, TRACE


@pytest.fixture
def platform_yaml(tmp_path: Path) -> Path:
    p = tmp_path / "platform.yaml"
    p.write_text(PLATFORM_YAML)
    return p


@pytest.fixture
def trace_csv(tmp_path: Path) -> Path:
    p = tmp_path / "trace.csv"
    p.write_text(TRACE)
    return p
