"""KServe object status: conditions, readiness and the condition reasons after which waiting does not help.

Pure functions on the dicts the API server returns (InferenceService / TrainedModel ``status``);
nothing here talks to a cluster.
"""
from __future__ import annotations

import urllib.parse
from typing import List, Optional, Tuple

__all__ = ["ADMISSION_REASONS", "TERMINAL_REASONS", "conditions", "describe_conditions", "readiness", "host_of"]

# Condition reasons after which waiting longer does not help.
ADMISSION_REASONS = frozenset({"MemoryResourceNotAvailable", "MemoryResourceUnavailable", "IsNotMMSPredictor",
                               "NotMMSPredictor", "FrameworkNotSupported"})
TERMINAL_REASONS = ADMISSION_REASONS | frozenset({
    "RevisionFailed", "Unschedulable", "ProgressDeadlineExceeded", "ContainerMissing", "ExitCode",
    "ImagePullBackOff", "ErrImagePull", "CrashLoopBackOff", "InvalidSpec", "NoSupportingRuntime",
    "RuntimeNotRecognized", "RuntimeDisabled", "InvalidPredictorSpec", "ModelLoadFailed", "ServingRuntimeNotFound"})


def conditions(obj: Optional[dict]) -> List[dict]:
    return list(((obj or {}).get("status") or {}).get("conditions") or [])


def describe_conditions(obj: Optional[dict], only_bad: bool = True) -> str:
    out = []
    for c in conditions(obj):
        if only_bad and c.get("status") == "True":
            continue
        why = ": ".join(x for x in (c.get("reason"), c.get("message")) if x)
        out.append(f"{c.get('type')}={c.get('status')}" + (f" ({why})" if why else ""))
    return "; ".join(out)


def readiness(obj: Optional[dict]) -> Tuple[str, str]:
    """("ready" | "failed" | "pending", why)."""
    conds = conditions(obj)
    ready = next((c for c in conds if c.get("type") == "Ready"), None)
    if ready is not None and ready.get("status") == "True":
        return "ready", ""
    for c in conds:
        if c.get("status") == "False" and c.get("reason") in TERMINAL_REASONS:
            return "failed", describe_conditions(obj)
    ms = ((obj or {}).get("status") or {}).get("modelStatus") or {}
    if ms.get("transitionStatus") in ("BlockedByFailedLoad", "InvalidSpec"):
        lf = ms.get("lastFailureInfo") or {}
        return "failed", (f"modelStatus {ms['transitionStatus']}: {lf.get('reason', '')} {lf.get('message', '')}".strip()
                          + (f"; {describe_conditions(obj)}" if conds else ""))
    return "pending", describe_conditions(obj)


def host_of(url: Optional[str]) -> str:
    return urllib.parse.urlsplit(url or "").hostname or ""
