"""Plugin protocols, the registry, and the built-in brokerage policies."""

from gridtwin.policies.base import BrokeragePolicy, GridView, JobChunk, PerJobPolicy, SiteView
from gridtwin.policies.panda import PandaParams, PandaPolicy
from gridtwin.policies.registry import available_policies, make_policy

__all__ = [
    "BrokeragePolicy", "GridView", "JobChunk", "PandaParams", "PandaPolicy", "PerJobPolicy", "SiteView",
    "available_policies", "make_policy",
]
