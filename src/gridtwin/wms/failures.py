"""Job failures with PanDA's own error codes (pilot ``errorcodes.py``, transformation exit codes).

Each attempt draws at most one random failure at the configured per-attempt rates; on top of that,
physics decides: a payload whose memory exceeds the queue's limit fails with 1212, one that would
run past the queue's ``maxtime`` is killed at that limit with 1213.
"""

from __future__ import annotations

from dataclasses import dataclass, field

STAGEIN_FAILED = 1099
STAGEOUT_FAILED = 1137
PAYLOAD_OUT_OF_MEMORY = 1212
REACHED_MAX_TIME = 1213
SIGTERM = 1201
PAYLOAD_EXECUTION_FAILURE = 1305

TB_REASSIGNED = 105
DDM_DISPATCH_FAILED = 100
"""ddmerrorcode of a job whose dispatch (``_dis``) transfers gave up (PanDA dataservice EC_Setupper)."""
DDM_OUTPUT_FAILED = 200
"""ddmerrorcode of a job whose output (``_sub``) transfers gave up (PanDA dataservice EC_Adder)."""
"""taskbuffer error code of a job closed because its queue went offline (it is rebrokered)."""

# outcome kinds, as small ints for the hot loop
OK, STAGEIN, OOM, WALLTIME, PAYLOAD, STAGEOUT = range(6)


@dataclass(frozen=True)
class FailureRates:
    """Per-attempt probabilities of each random failure kind, and the payload exit codes drawn."""

    stagein: float = 0.01
    oom: float = 0.01
    walltime: float = 0.001
    payload: float = 0.05
    stageout: float = 0.005
    exe_codes: tuple[int, ...] = (65, 68, 85, 137)
    """Transformation exit codes for payload failures (65 is the generic trf execution failure)."""
    exe_code_weights: tuple[float, ...] = (0.6, 0.2, 0.1, 0.1)
    max_attempts: int = 3
    """Attempts per job (PanDA's maxattempt): a failed job is retried until it has made this many."""

    def validate(self) -> None:
        total = self.stagein + self.oom + self.walltime + self.payload + self.stageout
        for name in ("stagein", "oom", "walltime", "payload", "stageout"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"failures.{name}: a probability in [0, 1] was expected, got {v}")
        if total > 1.0:
            raise ValueError(f"failures: the rates add up to {total:.3f}, more than 1")
        if len(self.exe_codes) != len(self.exe_code_weights) or not self.exe_codes:
            raise ValueError("failures: exe_codes and exe_code_weights must be non-empty and of equal length")


@dataclass
class FailureModel:
    """Draws the outcome kind of an attempt from a uniform number."""

    rates: FailureRates = field(default_factory=FailureRates)

    def __post_init__(self) -> None:
        r = self.rates
        r.validate()
        acc = 0.0
        self._thresholds: list[tuple[float, int]] = []
        for kind, p in ((STAGEIN, r.stagein), (OOM, r.oom), (WALLTIME, r.walltime), (PAYLOAD, r.payload),
                        (STAGEOUT, r.stageout)):
            acc += p
            self._thresholds.append((acc, kind))
        self._p_any = acc
        w = [x / sum(r.exe_code_weights) for x in r.exe_code_weights]
        self._exe_cum = [sum(w[: i + 1]) for i in range(len(w))]

    def kind(self, u: float) -> int:
        """The outcome kind for a uniform draw ``u`` in [0, 1)."""
        if u >= self._p_any:  # the common case: no random failure
            return OK
        for threshold, kind in self._thresholds:
            if u < threshold:
                return kind
        return OK

    def exe_code(self, u: float) -> int:
        """A payload exit code for a uniform draw ``u``."""
        for c, code in zip(self._exe_cum, self.rates.exe_codes, strict=True):
            if u < c:
                return code
        return self.rates.exe_codes[-1]
