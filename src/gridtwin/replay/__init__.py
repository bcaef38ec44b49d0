"""Replay of recorded PanDA traces in the twin, and the comparison of simulated against recorded jobs."""

from gridtwin.replay.run import ReplayResult, replay

__all__ = ["ReplayResult", "replay"]
