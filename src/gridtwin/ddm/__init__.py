"""Rucio-like data management: catalog of datasets and replicas."""

from gridtwin.ddm.catalog import ReplicaCatalog, place_initial_replicas

__all__ = ["ReplicaCatalog", "place_initial_replicas"]
