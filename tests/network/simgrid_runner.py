"""Run a flow set in SimGrid and print the completion times (a peer for ``gridtwin.network.MaxMin``).

This script is standalone on purpose: it runs under Debian's system ``/usr/bin/python3`` with the
``python3-simgrid`` package (SimGrid 3.32), not under the project's Python, and imports nothing of
gridtwin. It reads one JSON document on stdin::

    {"config": ["network/model:LV08", "network/crosstraffic:0"],
     "links":  [{"id": "l0", "bandwidth": 1.25e8, "latency": 0.01}],      # bytes/s, seconds
     "routes": [{"src": "h0", "dst": "h1", "links": ["l0", "l1"]}],       # one-way routes
     "flows":  [{"id": 0, "src": "h0", "dst": "h1", "size": 1e9, "start": 0.0}]}

and prints ``{"simgrid_version": ..., "completion": {"<flow id>": seconds, ...}}`` on stdout.

The platform is written as a SimGrid XML file (one ``Full`` zone, one host per endpoint, shared
links, non-symmetrical routes) and every flow is a host-to-host ``Comm.sendto`` issued by its own
actor at its start time, so the communication starts exactly then (no mailbox rendezvous delay).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from xml.sax.saxutils import quoteattr


def platform_xml(doc: dict) -> str:
    """The SimGrid platform (DTD 4.1) of the JSON document."""
    hosts: list[str] = []
    for r in doc["routes"]:
        for h in (r["src"], r["dst"]):
            if h not in hosts:
                hosts.append(h)
    for f in doc["flows"]:
        for h in (f["src"], f["dst"]):
            if h not in hosts:
                hosts.append(h)
    out = [
        "<?xml version='1.0'?>",
        '<!DOCTYPE platform SYSTEM "https://simgrid.org/simgrid.dtd">',
        '<platform version="4.1">',
        '<zone id="world" routing="Full">',
    ]
    out += [f'  <host id={quoteattr(h)} speed="1Gf"/>' for h in hosts]
    for link in doc["links"]:
        out.append(
            f'  <link id={quoteattr(link["id"])} bandwidth="{float(link["bandwidth"]):.17g}Bps"'
            f' latency="{float(link["latency"]):.17g}s"/>'
        )
    for r in doc["routes"]:
        out.append(f'  <route src={quoteattr(r["src"])} dst={quoteattr(r["dst"])} symmetrical="NO">')
        out += [f"    <link_ctn id={quoteattr(lid)}/>" for lid in r["links"]]
        out.append("  </route>")
    out += ["</zone>", "</platform>"]
    return "\n".join(out) + "\n"


def main() -> int:
    doc = json.load(sys.stdin)
    import simgrid  # imported late: a missing module is reported by the caller's skip check

    args = ["simgrid_runner", "--log=root.thres:critical"]
    args += [f"--cfg={c}" for c in doc.get("config", ["network/model:LV08", "network/crosstraffic:0"])]
    engine = simgrid.Engine(args)
    with tempfile.NamedTemporaryFile("w", suffix=".xml", delete=False) as fh:
        fh.write(platform_xml(doc))
        path = fh.name
    try:
        engine.load_platform(path)
    finally:
        os.unlink(path)

    completion: dict[str, float] = {}

    def flow_actor(fid: str, src: str, dst: str, size: int, start: float) -> None:
        simgrid.this_actor.sleep_until(start)
        simgrid.Comm.sendto(simgrid.Host.by_name(src), simgrid.Host.by_name(dst), size)
        completion[fid] = simgrid.Engine.clock

    for f in doc["flows"]:
        host = simgrid.Host.by_name(f["src"])
        simgrid.Actor.create(
            f"flow-{f['id']}", host, flow_actor, str(f["id"]), f["src"], f["dst"], int(f["size"]), float(f["start"])
        )
    engine.run()
    json.dump({"simgrid_version": "".join(simgrid.simgrid_version), "completion": completion}, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
