"""Columnar recording of simulated (or imported) records into Parquet tables."""
