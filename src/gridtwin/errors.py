"""Error types: one base class, specific subclasses; the CLI turns them into exit code 2."""

from __future__ import annotations


class GridtwinError(Exception):
    """Base of every error gridtwin raises on purpose."""


class ConfigError(GridtwinError):
    """A scenario or option is invalid; the message names the key path."""


class InputError(GridtwinError):
    """An input file is malformed; the message names the file, the row or key and what was expected."""


class PolicyError(GridtwinError):
    """A policy could not be found, loaded or behaved against its protocol."""


class SimulationError(GridtwinError):
    """The model reached a state that should be impossible (a bug or an inconsistent platform)."""
