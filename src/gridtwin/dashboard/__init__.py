"""The live dashboard: a run folder or a running simulation in the browser (docs/dashboard.md)."""
