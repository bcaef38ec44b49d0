"""The plain bandwidth model of the simulation core: a transfer takes latency + bytes / rate.

The rate is the link bandwidth capped by a per-transfer stream rate (one FTS transfer rarely fills
a link), plus a fixed submission overhead for WAN transfers. Links are not shared between
transfers here; the flow models of the data-management layer replace this.
"""

from __future__ import annotations

from dataclasses import dataclass

from gridtwin.platform.model import Link


@dataclass(frozen=True, slots=True)
class PlainBandwidth:
    """Transfer durations from file sizes over a link."""

    stream_rate_bps: float = 100e6
    """Cap on one WAN transfer's rate, bytes/s."""
    lan_rate_bps: float = 200e6
    """Rate of a pilot's copy from local storage to the worker's scratch, bytes/s."""
    wan_overhead_s: float = 60.0
    """Rule evaluation, FTS submission and queueing before a WAN transfer starts."""

    def wan_time(self, nbytes: float, link: Link) -> float:
        """Seconds to move ``nbytes`` over ``link`` (a same-site link costs LAN time only)."""
        if link.src == link.dst:
            return self.lan_time(nbytes)
        rate = min(link.bandwidth_bps, self.stream_rate_bps)
        return self.wan_overhead_s + link.latency_s + nbytes / rate

    def lan_time(self, nbytes: float) -> float:
        """Seconds for a pilot to copy ``nbytes`` between local storage and scratch."""
        return nbytes / self.lan_rate_bps
