"""Judging a model version: thresholds, hysteresis, cooldown and request ids.

* :class:`Thresholds` turns a degradation (rolling MAE / baseline MAE - 1) into a level:
  healthy, warning or critical; no level (status ``unknown``) below ``min_pairs`` pairs or
  without a baseline.
* :class:`Hysteresis` changes the status only when a level held for the last K
  evaluations: a status rises to the lowest level of the last K and falls to the highest,
  so a single noisy evaluation never flips it.
* :class:`Cooldowns` allows one retrain request per model key per cooldown period. The
  one exception is an escalation: a fine-tune was asked for and the model has since gone
  critical, which allows one full retrain.
* :func:`evidence_id` derives the idempotency key of a request (and the id of a drift
  alert) from the model key, the version and the evaluation that triggered it, so
  re-evaluating the same evidence after a restart asks with the same id and the trainer
  acts once.
"""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass
from typing import Final

from events.lifecycle import HealthStatus, RetrainAction

STATUSES: Final[tuple[HealthStatus, ...]] = ("healthy", "warning", "critical")
UNKNOWN: Final[HealthStatus] = "unknown"
# Prometheus cannot hold text: the status gauge uses these numbers (unknown = -1).
STATUS_NUMBERS: Final[dict[HealthStatus, int]] = {
    "unknown": -1,
    "healthy": 0,
    "warning": 1,
    "critical": 2,
}
ACTIONS: Final[dict[HealthStatus, RetrainAction]] = {
    "warning": "fine_tune",
    "critical": "full_retrain",
}
# 16 bytes = 32 hex characters, as events.ids: ample for ids that repeat per evaluation.
_ID_BYTES: Final = 16
_PERSON: Final = b"driftline.req.v1"

ModelKey = tuple[str, str | None]


@dataclass(frozen=True)
class Thresholds:
    """When a degradation is a warning or critical, and how much evidence that needs."""

    warning: float = 0.15
    critical: float = 0.25
    min_pairs: int = 100

    def level(self, degradation: float | None, pairs: int) -> int | None:
        """0 healthy, 1 warning, 2 critical; None when there is too little evidence.

        >>> Thresholds().level(0.3, pairs=150), Thresholds().level(0.3, pairs=10)
        (2, None)
        """
        if degradation is None or pairs < self.min_pairs:
            return None
        if degradation >= self.critical:
            return 2
        return 1 if degradation >= self.warning else 0


class Hysteresis:
    """The published status of one version, moved only by a level held K evaluations."""

    def __init__(self, evaluations: int) -> None:
        self._recent: deque[int] = deque(maxlen=evaluations)
        self.status: HealthStatus = UNKNOWN

    def observe(self, level: int | None) -> HealthStatus:
        """Record one evaluation's level and return the (possibly changed) status.

        >>> h = Hysteresis(2)
        >>> [h.observe(level) for level in (2, 2, 0, 2, 0, 0)]
        ['unknown', 'critical', 'critical', 'critical', 'critical', 'healthy']
        """
        if level is None:
            self._recent.clear()
            self.status = UNKNOWN
            return self.status
        self._recent.append(level)
        if len(self._recent) < (self._recent.maxlen or 1):
            return self.status
        low, high = min(self._recent), max(self._recent)
        if STATUS_NUMBERS[self.status] < low:  # unknown (-1) is below every level
            self.status = STATUSES[low]
        elif STATUS_NUMBERS[self.status] > high:
            self.status = STATUSES[high]
        return self.status


@dataclass(frozen=True)
class LastRequest:
    """The latest retrain request of a model key: when (epoch seconds) and what."""

    at_s: float
    action: RetrainAction


class Cooldowns:
    """One retrain request per model key per ``seconds`` (plus one escalation)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._last: dict[ModelKey, LastRequest] = {}

    def allows(self, model_key: ModelKey, action: RetrainAction, now_s: float) -> bool:
        """True when ``action`` may be requested for ``model_key`` at ``now_s``."""
        last = self._last.get(model_key)
        if last is None or now_s - last.at_s >= self.seconds:
            return True
        return action == "full_retrain" and last.action == "fine_tune"

    def record(self, model_key: ModelKey, action: RetrainAction, at_s: float) -> None:
        """Note a request (made here or read back from the requests topic)."""
        last = self._last.get(model_key)
        if last is not None and abs(at_s - last.at_s) < self.seconds:
            # Within one cooldown the strongest action asked for counts.
            if last.action == "full_retrain":
                action = "full_retrain"
            at_s = max(at_s, last.at_s)
        self._last[model_key] = LastRequest(at_s, action)

    def last(self, model_key: ModelKey) -> LastRequest | None:
        return self._last.get(model_key)


def evidence_id(model: str, key: str | None, version: int, evidence: int, purpose: str) -> str:
    """Deterministic id of what one evaluation decided: 32 hex characters.

    ``evidence`` identifies the evidence: the newest target time (µs) of the judged
    window. Evaluated again over the same pairs (a restart replaying them), the decision
    gets the same id; a later one never does, however many pairs a restarted monitor
    counted. ``purpose`` is the retrain action, or ``"alert"``. Parts are length-prefixed,
    and an unkeyed model differs from a key named like nothing else.

    >>> evidence_id("demand", "sku-1", 3, 400, "full_retrain")
    '785853c30c10c1b0ac31c361303a8eb0'
    """
    digest = hashlib.blake2b(digest_size=_ID_BYTES, person=_PERSON)
    for part in (model, "" if key is None else f"k:{key}", version, evidence, purpose):
        encoded = str(part).encode()
        digest.update(len(encoded).to_bytes(4, "big"))
        digest.update(encoded)
    return digest.hexdigest()
