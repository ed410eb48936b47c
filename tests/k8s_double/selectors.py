"""Label and field selectors, as the apiserver parses them.

Label: ``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``, ``a notin (x,y)``, ``a``, ``!a``,
comma-separated (AND). Field: ``path=v``, ``path==v``, ``path!=v`` over dotted paths.
"""
from __future__ import annotations

import re
from typing import Callable, Dict, List, Optional, Tuple


class SelectorError(ValueError):
    pass


def _split_top(s: str) -> List[str]:
    """Split on commas outside parentheses."""
    out, depth, cur = [], 0, ""
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise SelectorError(f"unbalanced ')' in {s!r}")
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    if depth:
        raise SelectorError(f"unbalanced '(' in {s!r}")
    out.append(cur)
    return [p.strip() for p in out if p.strip()]


_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
_SET = re.compile(rf"^({_KEY})\s+(in|notin)\s*\(([^)]*)\)$")
_EQ = re.compile(rf"^({_KEY})\s*(==|=|!=)\s*([-A-Za-z0-9_.]*)$")
_EXISTS = re.compile(rf"^(!?)\s*({_KEY})$")

Requirement = Callable[[Dict[str, str]], bool]


def parse_label_selector(s: Optional[str]) -> Requirement:
    if not s:
        return lambda labels: True
    reqs: List[Requirement] = []
    for part in _split_top(s):
        m = _SET.match(part)
        if m:
            key, op, vals = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",") if v.strip()}
            if op == "in":
                reqs.append(lambda l, k=key, vs=vals: k in l and l[k] in vs)
            else:
                reqs.append(lambda l, k=key, vs=vals: k not in l or l[k] not in vs)
            continue
        m = _EQ.match(part)
        if m:
            key, op, val = m.groups()
            if op == "!=":
                reqs.append(lambda l, k=key, v=val: l.get(k) != v)
            else:
                reqs.append(lambda l, k=key, v=val: l.get(k) == v)
            continue
        m = _EXISTS.match(part)
        if m:
            neg, key = m.groups()
            reqs.append((lambda l, k=key: k not in l) if neg else (lambda l, k=key: k in l))
            continue
        raise SelectorError(f"unable to parse requirement: {part!r}")
    return lambda labels: all(r(labels or {}) for r in reqs)


def _get_path(obj: dict, path: str):
    cur = obj
    for p in path.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(p)
    return cur


def parse_field_selector(s: Optional[str], allowed: Optional[Tuple[str, ...]] = None) -> Callable[[dict], bool]:
    if not s:
        return lambda obj: True
    reqs = []
    for part in _split_top(s):
        m = re.match(r"^([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*)$", part)
        if not m:
            raise SelectorError(f"invalid field selector: {part!r}")
        path, op, val = m.groups()
        if allowed is not None and path not in allowed:
            raise SelectorError(f'field label not supported: {path}')
        if op == "!=":
            reqs.append(lambda o, p=path, v=val: str(_get_path(o, p) or "") != v)
        else:
            reqs.append(lambda o, p=path, v=val: str(_get_path(o, p) or "") == v)
    return lambda obj: all(r(obj) for r in reqs)
