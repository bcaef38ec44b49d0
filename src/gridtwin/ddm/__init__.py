"""Rucio-like data management: catalog of datasets and replicas, RSE expressions, the FTS optimizer
and the reaper's selection rule."""

from gridtwin.ddm.catalog import ReplicaCatalog, place_initial_replicas
from gridtwin.ddm.fts_optimizer import LinkOptimizer, OptimizerParams
from gridtwin.ddm.reaper import ReplicaCandidate, select_replicas_to_delete
from gridtwin.ddm.rse_expression import parse_rse_expression, resolve_rse_expression

__all__ = [
    "LinkOptimizer", "OptimizerParams", "ReplicaCandidate", "ReplicaCatalog", "parse_rse_expression",
    "place_initial_replicas", "resolve_rse_expression", "select_replicas_to_delete",
]
