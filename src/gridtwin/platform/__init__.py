"""Platform: sites (PanDA queues), RSEs and network links, with their loaders."""

from gridtwin.platform.model import RSE, Link, LinkDefaults, Platform, Site

__all__ = ["RSE", "Link", "LinkDefaults", "Platform", "Site"]
