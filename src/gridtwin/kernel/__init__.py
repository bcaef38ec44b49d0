"""Event kernel: clock, event heap and seeded random streams. Imports nothing of gridtwin."""

from gridtwin.kernel.engine import Engine, EventHandle
from gridtwin.kernel.streams import RandomStreams, UniformBuffer

__all__ = ["Engine", "EventHandle", "RandomStreams", "UniformBuffer"]
