"""Network models: how long transfers take over the platform's links."""

from gridtwin.network.flow import (
    TCP_GAMMA_BYTES,
    FlowModel,
    PlatformRoutes,
    Resource,
    Route,
    link_resource,
    route_between,
    route_latency,
)
from gridtwin.network.linksharing import LinkSharing
from gridtwin.network.maxmin import LV08_WEIGHT_S, MaxMin
from gridtwin.network.plain import PlainBandwidth

__all__ = [
    "LV08_WEIGHT_S",
    "TCP_GAMMA_BYTES",
    "FlowModel",
    "LinkSharing",
    "MaxMin",
    "PlainBandwidth",
    "PlatformRoutes",
    "Resource",
    "Route",
    "link_resource",
    "route_between",
    "route_latency",
]
