"""Find brokerage policies by name: built-ins, the ``gridtwin.policies`` entry-point group, or
``module:Class`` strings (the module may also be a path to a ``.py`` file)."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from gridtwin.errors import ConfigError, PolicyError
from gridtwin.policies.base import BrokeragePolicy
from gridtwin.policies.panda import PandaPolicy
from gridtwin.policies.simple import DataLocalityPolicy, LeastLoadedPolicy, RandomPolicy, RoundRobinPolicy

ENTRY_POINT_GROUP = "gridtwin.policies"


class HistoricalPolicy:
    """Replay: every job runs at the queue its record names (``Workload.pinned_site``). The job broker
    places pinned tasks itself, bypassing the filters and weights; ``assign`` is only reached for a workload
    without pins, which this policy cannot place."""

    name = "historical"
    follows_pins = True

    def assign(self, chunk, candidates, grid, rng):
        raise PolicyError("policy 'historical' replays recorded sites: it needs a workload with pinned sites "
                          "(gridtwin replay), and this task has none")


BUILTIN: dict[str, Callable[[], Any]] = {
    "panda": PandaPolicy,
    "random": RandomPolicy,
    "round-robin": RoundRobinPolicy,
    "least-loaded": LeastLoadedPolicy,
    "data-locality": DataLocalityPolicy,
    "historical": HistoricalPolicy,
}


def available_policies() -> list[str]:
    """Names of built-in and installed (entry-point) policies."""
    names = set(BUILTIN)
    names.update(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
    return sorted(names)


def _load_module_class(spec: str) -> Any:
    mod_name, _, attr = spec.rpartition(":")
    if not mod_name or not attr:
        raise PolicyError(f"policy {spec!r}: expected 'module:Class' or 'path/to/file.py:Class'")
    try:
        if mod_name.endswith(".py"):
            path = Path(mod_name)
            if not path.is_file():
                raise PolicyError(f"policy {spec!r}: file {path} does not exist")
            mspec = importlib.util.spec_from_file_location(f"gridtwin_user_policy_{path.stem}", path)
            if mspec is None or mspec.loader is None:
                raise PolicyError(f"policy {spec!r}: cannot load {path} as a Python module")
            module = importlib.util.module_from_spec(mspec)
            mspec.loader.exec_module(module)
        else:
            module = importlib.import_module(mod_name)
    except PolicyError:
        raise
    except Exception as exc:  # the user's module failed to import: say which and why
        raise PolicyError(f"policy {spec!r}: importing {mod_name!r} failed: {type(exc).__name__}: {exc}") from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise PolicyError(f"policy {spec!r}: {mod_name!r} has no attribute {attr!r}") from None


def make_policy(spec: str | BrokeragePolicy) -> BrokeragePolicy:
    """Instantiate a brokerage policy from a name, an entry point, a ``module:Class`` or an object."""
    return make_plugin("brokerage", spec)


PLUGIN_KINDS = {
    # kind: (entry-point group, built-ins, method every plugin of the kind must have)
    "brokerage": (ENTRY_POINT_GROUP, "gridtwin.policies.registry:BUILTIN", "assign"),
    "source selection": ("gridtwin.source_selection", "gridtwin.policies.source_selection:BUILTIN_SOURCE_SELECTORS",
                         "choose"),
    "placement": ("gridtwin.placement", "gridtwin.policies.placement:BUILTIN_PLACEMENTS", "on_read"),
}


_PROTOCOLS = {
    "brokerage": "assign(chunk, candidates, grid, rng)",
    "source selection": "choose(candidates, dst_rse, file_bytes)",
    "placement": "on_read(dataset, site, view), tick(view), setup(platform)",
}


def make_plugin(kind: str, spec: Any, options: dict[str, Any] | None = None) -> Any:
    """Instantiate a brokerage, source-selection or placement plugin from a built-in name, an entry point of
    its group, a ``module:Class`` (or ``path.py:Class``) string, or an object; ``options`` go to the class."""
    group, builtin_ref, method = PLUGIN_KINDS[kind]
    mod, _, attr = builtin_ref.partition(":")
    builtin: dict[str, Any] = getattr(importlib.import_module(mod), attr)
    options = dict(options or {})
    if not isinstance(spec, str):
        obj: Any = spec
    elif spec in builtin:
        obj = builtin[spec]
    elif ":" in spec:
        obj = _load_module_class(spec)
    else:
        eps = [ep for ep in entry_points(group=group) if ep.name == spec]
        if not eps:
            known = sorted(set(builtin) | {ep.name for ep in entry_points(group=group)})
            raise PolicyError(f"unknown {kind} policy {spec!r}; known: {', '.join(known)} (or give 'module:Class')")
        try:
            obj = eps[0].load()
        except Exception as exc:
            raise PolicyError(f"{kind} policy {spec!r}: loading entry point failed: {type(exc).__name__}: {exc}") \
                from exc
    if isinstance(obj, type):
        try:
            obj = obj(**options)
        except TypeError as exc:
            raise PolicyError(f"{kind} policy {spec!r}: bad options {options}: {exc}") from exc
        except (PolicyError, ConfigError):
            raise
        except Exception as exc:
            raise PolicyError(f"{kind} policy {spec!r}: constructing it failed: {type(exc).__name__}: {exc}") from exc
    elif options:
        raise PolicyError(f"{kind} policy {spec!r}: options given for an object that is already built")
    if not callable(getattr(obj, method, None)):
        raise PolicyError(f"{kind} policy {spec!r}: has no {method}() method ({kind} protocol: "
                          f"{_PROTOCOLS[kind]})")
    if not getattr(obj, "name", None):
        with contextlib.suppress(AttributeError):
            obj.name = str(spec)
    return obj
