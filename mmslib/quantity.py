"""Kubernetes quantities: the one parser, exact.

A quantity is a number with an optional decimal or binary suffix (``n u m k M G
T P E``, ``Ki Mi Gi Ti Pi Ei``) or a decimal exponent: ``"100m"``, ``"1"``,
``"1.5"``, ``"100Mi"``, ``"10Gi"``, ``"500M"``, ``"0.55Ti"``, ``"1e3"``.
Values are exact (:class:`fractions.Fraction`), so sums of requests come out
exactly (352 x (100m + 1) = 387.2 CPU). Memory rounds fractional bytes up, as
Kubernetes' ``Quantity.Value()`` does. Every other module (params, specs,
planner, backends, k8s) parses quantities through this one.

Bad input raises :class:`~mmslib.errors.ParamError` (a ValueError) naming the
parameter, the value and what is allowed.
"""
from __future__ import annotations

import math
import re
from fractions import Fraction
from typing import Any

from .errors import ParamError

__all__ = ["KiB", "MiB", "GiB", "TiB", "KB", "MB", "GB", "ALLOWED",
           "exact", "cpu_exact", "memory_exact", "parse_quantity", "parse_cpu", "parse_memory",
           "format_memory", "memory_units"]

KiB, MiB, GiB, TiB = 2**10, 2**20, 2**30, 2**40
KB, MB, GB = 10**3, 10**6, 10**9

_SUFFIX: dict[str, Fraction] = {
    "n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 10**3), "": Fraction(1),
    "k": Fraction(10**3), "M": Fraction(10**6), "G": Fraction(10**9),
    "T": Fraction(10**12), "P": Fraction(10**15), "E": Fraction(10**18),
    "Ki": Fraction(2**10), "Mi": Fraction(2**20), "Gi": Fraction(2**30),
    "Ti": Fraction(2**40), "Pi": Fraction(2**50), "Ei": Fraction(2**60),
}
_RE = re.compile(
    r"^(?P<num>[+-]?(?:\d+\.?\d*|\.\d+))"
    r"(?:(?P<exp>[eE][+-]?\d+)|(?P<suf>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?$"
)
#: What a quantity may be, in words (the "allowed" of every quantity ParamError).
ALLOWED = (
    "a Kubernetes quantity >= 0: a number with an optional suffix "
    "(n u m k M G T P E, Ki Mi Gi Ti Pi Ei) or exponent (e.g. '100m', '1', '1.5', "
    "'100Mi', '10Gi', '500M', '1e3')"
)


def exact(value: Any, name: str = "quantity") -> Fraction:
    """Exact value of a Kubernetes quantity (str or number) >= 0; ParamError if bad."""
    if isinstance(value, bool) or value is None:
        raise ParamError(name, value, ALLOWED)
    if isinstance(value, Fraction):
        q = value
    elif isinstance(value, int):
        q = Fraction(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ParamError(name, value, ALLOWED)
        q = Fraction(repr(value))  # 64.6 -> 323/5, not the binary float
    elif isinstance(value, str):
        m = _RE.match(value.strip())
        if not m:
            raise ParamError(name, value, ALLOWED)
        q = Fraction(m.group("num"))
        if m.group("exp"):
            q *= Fraction(10) ** int(m.group("exp")[1:])
        else:
            q *= _SUFFIX[m.group("suf") or ""]
    else:
        raise ParamError(name, value, ALLOWED)
    if q < 0:
        raise ParamError(name, value, ALLOWED)
    return q


def cpu_exact(value: Any, name: str = "cpu") -> Fraction:
    """A CPU quantity in cores, exact."""
    return exact(value, name)


def memory_exact(value: Any, name: str = "memory") -> int:
    """A memory quantity in bytes (fractional bytes round up, as in Kubernetes).

    Sub-byte suffixes (``"100m"``: milli-bytes) are refused as almost certainly a typo."""
    if isinstance(value, str) and re.search(r"\d(n|u|m)$", value.strip()):
        raise ParamError(
            name, value,
            "a memory quantity in bytes; the suffix n/u/m means nano/micro/milli BYTES "
            "(Kubernetes accepts it but it is almost always a typo for M or Mi)",
        )
    return math.ceil(exact(value, name))


def parse_quantity(value: Any, name: str = "quantity") -> float:
    """Any Kubernetes quantity >= 0 as a float (no unit implied)."""
    return float(exact(value, name))


def parse_cpu(value: Any, name: str = "cpu") -> float:
    """CPU quantity -> cores (float): ``"100m"`` -> 0.1, ``"1"`` -> 1.0, ``2`` -> 2.0."""
    return float(cpu_exact(value, name))


def parse_memory(value: Any, name: str = "memory") -> int:
    """Memory quantity -> bytes (int): ``"100Mi"`` -> 104857600, ``"500M"`` -> 500000000,
    ``"0.55Ti"`` -> 604731395277 (fractional bytes round up)."""
    return memory_exact(value, name)


def format_memory(n_bytes: int) -> str:
    """Bytes as the shortest exact binary quantity: 1048576 -> ``"1Mi"``, 1000 -> ``"1000"``."""
    n = int(n_bytes)
    for suf, mul in (("Ei", 1 << 60), ("Pi", 1 << 50), ("Ti", 1 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20),
                     ("Ki", 1 << 10)):
        if n and n % mul == 0:
            return f"{n // mul}{suf}"
    return str(n)


def memory_units(n_bytes: int | float) -> dict[str, float]:
    """The same amount in bytes, MiB, GiB, MB and GB (10**9), for loose-unit comparisons."""
    return {"bytes": n_bytes, "MiB": n_bytes / MiB, "GiB": n_bytes / GiB, "MB": n_bytes / MB, "GB": n_bytes / GB}
