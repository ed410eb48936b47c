"""Parameter values as a user types them (``-p flag true`` from a shell, ``-p qps 25,50``, YAML):
numbers, integers, booleans, choices, lists, "nothing", Kubernetes quantities, percentiles and the
SLO gate's levels. One home for the parsing that :mod:`mmslib.params`, :mod:`mmslib.gate` and
:mod:`mmslib.summary` share; it imports none of them (no import circle). Every function raises
:class:`mmslib.errors.ParamError` naming the parameter, the value and what is allowed.
"""
from __future__ import annotations

import re
from typing import Any, List, Tuple, Union

from .errors import ParamError

__all__ = ["quantity", "number", "integer", "num", "range_text", "choice", "boolean", "optional", "listish",
           "percentiles", "levels_or_bool", "NUM_EXAMPLES"]


def quantity(name, v, kind):
    from .quantity import parse_cpu, parse_memory
    try:
        return parse_cpu(v) if kind == "cpu" else parse_memory(v)
    except (ValueError, TypeError, OverflowError):  # OverflowError: e.g. "1E310" CPUs as a float
        ex = "e.g. 100m, 1, 2.5" if kind == "cpu" else "e.g. 100Mi, 10Gi, 500M, or bytes"
        raise ParamError(name, v, f"a Kubernetes {kind} quantity ({ex})") from None


_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")
#: What a number parameter accepts, in words a shell user can type back.
NUM_EXAMPLES = "e.g. 25, 2.5, 1e3, 1_000"


def strip(v):
    return v.strip() if isinstance(v, str) else v


def number(v):
    """A number as typed on a shell ("25", "1e3", "1_000", " 2.5 "), or None if it is not one.
    Booleans are not numbers; NaN and infinities are refused."""
    if isinstance(v, bool):
        return None
    if isinstance(v, str):
        t = v.strip()
        if not t or not re.fullmatch(r"[+-]?[0-9_.eE+-]+", t):
            return None
        try:
            v = int(t) if re.fullmatch(r"[+-]?[0-9][0-9_]*", t) else float(t)
        except ValueError:
            return None
    if not isinstance(v, (int, float)) or v != v or v in (float("inf"), float("-inf")):
        return None
    if isinstance(v, int) and not -1e308 < v < 1e308:  # beyond any float (10**400)
        return None
    return v


def integer(name, v, lo=None, hi=None):
    """An integer: 25, "25", "1_000", 1e3 / "1e3" (integer-valued)."""
    x = number(v)
    if isinstance(x, float) and x.is_integer():
        x = int(x)
    if not isinstance(x, int):
        raise ParamError(name, v, f"an integer{range_text(lo, hi)}")
    if (lo is not None and x < lo) or (hi is not None and x > hi):
        raise ParamError(name, v, f"an integer{range_text(lo, hi)}")
    return x


def num(name, v, lo=None, hi=None, lo_open=False):
    """A finite number: 25, 2.5, "25", "1e3", "1_000"."""
    x = number(v)
    if x is None or (lo is not None and (x <= lo if lo_open else x < lo)) or (hi is not None and x > hi):
        raise ParamError(name, v, f"a number{range_text(lo, hi, lo_open)} ({NUM_EXAMPLES})")
    return float(x)


def range_text(lo, hi, lo_open=False):
    if lo is not None and hi is not None:
        return f" from {lo} to {hi}"
    if lo is not None:
        return f" > {lo}" if lo_open else f" >= {lo}"
    if hi is not None:
        return f" <= {hi}"
    return ""


def choice(name, v, allowed):
    if v not in allowed:
        raise ParamError(name, v, " | ".join(map(str, allowed)))
    return v


def boolean(name, v):
    """true/false, yes/no, on/off, 1/0 in any case (papermill passes "true" as a string)."""
    if isinstance(v, bool):
        return v
    if isinstance(v, int) and v in (0, 1):
        return bool(v)
    if isinstance(v, str):
        t = v.strip().lower()
        if t in _TRUE:
            return True
        if t in _FALSE:
            return False
    raise ParamError(name, v, "true | false (also yes | no, on | off, 1 | 0)")


def optional(v):
    """None for the ways a shell user writes "nothing": None, "none", "null", "" (any case)."""
    if v is None or (isinstance(v, str) and v.strip().lower() in ("", "none", "null", "~")):
        return None
    return v


def listish(v):
    """A list as typed on a shell: "[25, 50]", "25,50", "25 50" (a single "25" stays a scalar).
    Items are read as YAML scalars (numbers become numbers). Anything else is returned as is."""
    if isinstance(v, str):
        import yaml
        t = v.strip()
        if t.startswith("["):
            try:
                return yaml.safe_load(t)
            except yaml.YAMLError:
                return v
        parts = [x for x in re.split(r"[,\s]+", t) if x]
        if len(parts) > 1:
            out = []
            for x in parts:
                try:
                    out.append(yaml.safe_load(x))
                except yaml.YAMLError:
                    out.append(x)
            return out
    return v



#: The seed's percentile columns: p50, p90, p95, p99 and max.
DEFAULT_PERCENTILES: Tuple[Union[float, str], ...] = (50, 90, 95, 99, "max")


def percentiles(v: Any, name: str = "percentiles") -> Tuple[Union[float, str], ...]:
    """Percentiles as a user gives them: ``[50, 99.9, "max"]``, ``"50,99,max"``, ``"50 99"``;
    each a number in (0, 100) or ``max``."""
    if v is None:
        return DEFAULT_PERCENTILES
    raw = listish(v)
    if not isinstance(raw, (list, tuple)):
        raw = [raw]
    out: List[Union[float, str]] = []
    for x in raw:
        if isinstance(x, str) and x.strip().lower() in ("max", "p100", "100"):
            out.append("max")
            continue
        q = number(x.lstrip("pP") if isinstance(x, str) else x)
        if q == 100:
            out.append("max")
            continue
        if q is None or not 0 < q < 100:
            raise ParamError(name, v, "a list of percentiles from 0 to 100 or max (e.g. 50,90,95,99,max)")
        out.append(float(q))
    if not out:
        raise ParamError(name, v, "a list of percentiles from 0 to 100 or max (e.g. 50,90,95,99,max)")
    return tuple(dict.fromkeys(out))


def levels_or_bool(v: Any, name: str = "fail_on_slo") -> Union[bool, List[float]]:
    """``false``/``true`` (any spelling :func:`boolean` takes) or a list of levels (e.g. ``25,50``)."""
    try:
        return boolean(name, v)
    except ParamError:
        pass
    lv = listish(v)
    if not isinstance(lv, (list, tuple)):
        lv = [lv]
    try:
        out = [num(name, x) for x in lv]
    except ParamError:
        out = []
    if not out:
        raise ParamError(name, v, "true | false, or the levels that must meet the SLO (e.g. 25,50)")
    return out
