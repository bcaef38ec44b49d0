"""Short meanings of the PanDA error codes the twin writes (pilot ``errorcodes.py``, PanDA dataservice and
transformation exit codes), for the dashboard's error tables."""

from __future__ import annotations

from gridtwin.wms import failures as F

MEANINGS: dict[str, dict[int, str]] = {
    "piloterrorcode": {
        F.STAGEIN_FAILED: "stage-in failed", F.STAGEOUT_FAILED: "stage-out failed",
        F.SIGTERM: "payload killed (SIGTERM)", F.PAYLOAD_OUT_OF_MEMORY: "payload exceeded its memory limit",
        F.REACHED_MAX_TIME: "reached the queue's maximum wall time",
        F.PAYLOAD_EXECUTION_FAILURE: "payload execution failure (see exeerrorcode)",
    },
    "exeerrorcode": {65: "transformation execution failure", 68: "transformation: input file problem",
                     85: "transformation: output file problem", 137: "transformation killed (signal 9)"},
    "ddmerrorcode": {F.DDM_DISPATCH_FAILED: "dispatch (_dis) transfers gave up",
                     F.DDM_OUTPUT_FAILED: "output (_sub) transfers gave up"},
}


def diag(key: str) -> str:
    """The meaning of ``"<column> <code>"`` (``"piloterrorcode 1212"``), or an empty string."""
    column, _, code = key.partition(" ")
    try:
        return MEANINGS.get(column, {}).get(int(code), "")
    except ValueError:
        return ""
