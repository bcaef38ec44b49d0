"""Analyses of record folders (simulated or imported real data); never reads the live model."""
