"""Replay of recorded PanDA traces in the twin, and the comparison of simulated against recorded jobs."""

from __future__ import annotations

from typing import Any

__all__ = ["ReplayResult", "replay"]


def __getattr__(name: str) -> Any:
    """``replay`` and ``ReplayResult``, imported on first use (so the command line starts fast)."""
    if name in __all__:
        from gridtwin.replay import run

        return getattr(run, name)
    raise AttributeError(f"module 'gridtwin.replay' has no attribute {name!r}")
