"""What every benchmark prints: its figures, one line per target (met or NOT met), and optionally JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def report(figures: dict[str, Any], targets: list[tuple[str, bool]], json_path: Path | None = None) -> None:
    """Print ``figures`` aligned, then each (target, met) pair; write the figures to ``json_path`` if given."""
    width = max(len(k) for k in [*figures, "target"])
    for k, v in figures.items():
        print(f"{k:>{width}}: {v}")
    for label, ok in targets:
        print(f"{'target':>{width}}: {label} {'met' if ok else 'NOT met'}")
    if json_path is not None:
        json_path.write_text(json.dumps(figures, indent=2) + "\n")
