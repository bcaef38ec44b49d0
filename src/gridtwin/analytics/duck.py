"""DuckDB helpers shared by the analyses."""

from __future__ import annotations

import duckdb
import pyarrow as pa


def fetch_arrow(con: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    """Result of ``sql`` as a pa.Table (the relation's ``to_arrow_table``; ``arrow`` on DuckDB versions
    without it)."""
    relation = con.sql(sql)
    fetch = getattr(relation, "to_arrow_table", None) or relation.arrow
    return fetch()
