"""Network models: how long transfers take over the platform's links."""

from gridtwin.network.plain import PlainBandwidth

__all__ = ["PlainBandwidth"]
