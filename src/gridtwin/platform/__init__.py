"""Platform: sites (PanDA queues), RSEs and network links, with their loaders."""

from gridtwin.platform.cric import load_cric_queues
from gridtwin.platform.model import RSE, Link, LinkDefaults, Platform, Site
from gridtwin.platform.netmatrix import load_atlas_snapshot, load_network_matrix
from gridtwin.platform.wlcg import build_wlcg_like

__all__ = [
    "RSE",
    "Link",
    "LinkDefaults",
    "Platform",
    "Site",
    "build_wlcg_like",
    "load_atlas_snapshot",
    "load_cric_queues",
    "load_network_matrix",
]
