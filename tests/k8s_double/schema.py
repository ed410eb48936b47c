"""The double's own schema handling: JSON Schemas built from the installed ``kserve`` SDK.

Nothing here comes from mmslib (mmslib has its own CRD converter for the user's
side); a bug in one cannot pass both. The field names and types are those of
the SDK's generated models (``kserve.models.V1beta1InferenceService`` ...,
``openapi_types`` + ``attribute_map``, generated from KServe's OpenAPI spec,
the same Go types the CRDs are generated from), with the Kubernetes types they
refer to from ``kubernetes.client.models``. Required fields are the ones whose
generated setter refuses ``None`` ("must not be `None`").

What the API server does with a custom resource of a structural schema, and
so what :class:`ObjectValidator` does:

- fields the schema does not declare are *pruned* (apiextensions-apiserver
  ``pkg/apiserver/schema/pruning``); with ``fieldValidation=Warn`` (the
  default since Kubernetes 1.27) each one is reported as a ``Warning`` header
  ``unknown field "spec.x"``; with ``fieldValidation=Strict`` the request is
  refused with 400 ``strict decoding error: unknown field "spec.x"``;
- wrong types and missing required fields are 422 Invalid;
- ``metadata`` is validated by the generic registry (names, labels), not by
  the CRD schema.

Only when KServe's CRD files are present (``$MMSLIB_KSERVE_CRDS``, or the
``shared/kserve-crds`` folder some checkouts have beside the repository) do
the tests use them, as an extra check; nothing here reads them.
"""
from __future__ import annotations

import functools
import re
from typing import Any, Dict, List, Optional, Tuple

# Free-form types in the SDK: any JSON value.
_ANY = {"IntOrString", "object"}
# resource.Quantity: an int-or-string matching apimachinery's quantity syntax (the pattern its OpenAPI carries).
_QUANTITY_SCHEMA = {"anyOf": [{"type": "integer"}, {"type": "number"}, {
    "type": "string", "pattern": r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
                                r"([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"}]}
_PRIMITIVE = {"str": {"type": "string"}, "int": {"type": "integer"}, "float": {"type": "number"},
              "bool": {"type": "boolean"}, "datetime": {"type": "string"}, "date": {"type": "string"}}
_LIST = re.compile(r"^(?:list|List)\[(.+)\]$")
_DICT = re.compile(r"^(?:dict|Dict)\((?:str|\s)*,\s*(.+)\)$|^Dict\[str,\s*(.+)\]$")


@functools.lru_cache(maxsize=1)
def _kserve_models() -> Dict[str, Tuple[Dict[str, str], Dict[str, str], Tuple[str, ...]]]:
    """{class name: (openapi_types, attribute_map, required attributes)} read from the installed SDK's
    generated model files (parsed, not imported: importing ``kserve`` starts its whole server stack)."""
    import ast
    import importlib.util
    from pathlib import Path
    spec = importlib.util.find_spec("kserve")
    if spec is None or not spec.submodule_search_locations:
        raise LookupError("the kserve SDK is not installed (pip install kserve)")
    out = {}
    for f in sorted(Path(list(spec.submodule_search_locations)[0], "models").glob("*.py")):
        text = f.read_text()
        cls = re.search(r"^class (\w+)\(object\):", text, re.M)
        types = re.search(r"^    openapi_types = (\{.*?^    \})", text, re.M | re.S)
        amap = re.search(r"^    attribute_map = (\{.*?^    \})", text, re.M | re.S)
        if not (cls and types and amap):
            continue
        req = tuple(re.findall(r"Invalid value for `(\w+)`, must not be `None`", text))
        out[cls.group(1)] = (ast.literal_eval(types.group(1)), ast.literal_eval(amap.group(1)), req)
    return out


def _model_info(name: str) -> Optional[Tuple[Dict[str, str], Dict[str, str], Tuple[str, ...]]]:
    info = _kserve_models().get(name)
    if info is not None:
        return info
    import kubernetes.client.models as kc
    cls = getattr(kc, name, None)
    if cls is None or not hasattr(cls, "openapi_types"):
        return None
    return cls.openapi_types, cls.attribute_map, ()


def _model_class(name: str):
    return _model_info(name)


@functools.lru_cache(maxsize=None)
def _schema_for_type(t: str) -> Dict[str, Any]:
    t = t.strip()
    if t in _PRIMITIVE:
        return dict(_PRIMITIVE[t])
    if t in _ANY:
        return {}
    if t == "ResourceQuantity":
        return dict(_QUANTITY_SCHEMA)
    m = _LIST.match(t)
    if m:
        return {"type": "array", "items": {"$ref": m.group(1).strip()} if _model_class(m.group(1).strip())
                else _schema_for_type(m.group(1))}
    m = _DICT.match(t)
    if m:
        inner = (m.group(1) or m.group(2)).strip()
        return {"type": "object", "additionalProperties": {"$ref": inner} if _model_class(inner)
                else _schema_for_type(inner)}
    if _model_class(t) is not None:
        return {"$ref": t}
    return {}                          # a type the SDK does not define: accept anything


@functools.lru_cache(maxsize=None)
def model_schema(name: str) -> Dict[str, Any]:
    """{"type": "object", "properties": {jsonName: schema}, "required": [...], "x-known": True} for a model."""
    info = _model_info(name)
    if info is None:
        return {}
    types, amap, req = info
    props = {amap[a]: _schema_for_type(t) for a, t in types.items()}
    return {"type": "object", "properties": props, "required": [amap[a] for a in req]}


class _Resolver:
    """Resolves ``{"$ref": ModelName}`` lazily (the Kubernetes type graph is large and recursive)."""

    def get(self, s: Dict[str, Any]) -> Dict[str, Any]:
        ref = s.get("$ref")
        return model_schema(ref) if ref else s


_R = _Resolver()


def prune(obj: Any, schema: Dict[str, Any], path: str, unknown: List[str]) -> Any:
    """Drop the fields ``schema`` does not declare (in place), listing their paths in ``unknown``."""
    s = _R.get(schema)
    if isinstance(obj, dict) and s.get("type") == "object" and "properties" in s:
        props = s["properties"]
        for k in list(obj):
            if k not in props:
                unknown.append(f"{path}.{k}" if path else k)
                del obj[k]
            else:
                prune(obj[k], props[k], f"{path}.{k}" if path else k, unknown)
    elif isinstance(obj, dict) and s.get("type") == "object" and "additionalProperties" in s:
        for k, v in obj.items():
            prune(v, s["additionalProperties"], f"{path}[{k}]", unknown)
    elif isinstance(obj, list) and s.get("type") == "array":
        for i, v in enumerate(obj):
            prune(v, s.get("items", {}), f"{path}[{i}]", unknown)
    return obj


def _expand(schema: Dict[str, Any], obj: Any, depth: int = 0) -> Dict[str, Any]:
    """A plain JSON Schema for ``obj``'s shape: $refs expanded only where the object has data."""
    s = _R.get(schema)
    out = {k: v for k, v in s.items() if k not in ("properties", "items", "additionalProperties", "$ref")}
    if depth > 40:
        return out
    if "properties" in s:
        out["properties"] = {k: _expand(sub, obj.get(k) if isinstance(obj, dict) else None, depth + 1)
                             for k, sub in s["properties"].items() if isinstance(obj, dict) and k in obj}
    if "additionalProperties" in s:
        vals = list(obj.values()) if isinstance(obj, dict) else []
        out["additionalProperties"] = _expand(s["additionalProperties"], vals[0] if vals else None, depth + 1) \
            if vals and all(type(v) is type(vals[0]) for v in vals) else {}
        if vals and isinstance(vals[0], dict):   # objects of one type: validate each against the same schema
            out["additionalProperties"] = _expand(s["additionalProperties"], _merge(vals), depth + 1)
    if "items" in s:
        vals = obj if isinstance(obj, list) else []
        out["items"] = _expand(s["items"], _merge(vals) if vals and all(isinstance(v, dict) for v in vals)
                               else (vals[0] if vals else None), depth + 1)
    return out


def _merge(dicts: List[dict]) -> dict:
    m: Dict[str, Any] = {}
    for d in dicts:
        for k, v in d.items():
            m.setdefault(k, v)
    return m


def _dotted(path) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


class ObjectValidator:
    """Prune-then-validate for one kind, as the API server does for a custom resource."""

    def __init__(self, model: str):
        self.model = model
        if not model_schema(model):
            raise LookupError(f"the kserve SDK has no model {model}")

    def admit(self, obj: dict) -> Tuple[List[str], List[Tuple[str, str]]]:
        """Prune unknown fields (in place); returns (unknown field paths, [(field, message)] errors)."""
        import jsonschema
        top = model_schema(self.model)
        unknown: List[str] = []
        for k in list(obj):
            if k in ("apiVersion", "kind", "metadata"):
                continue
            if k not in top["properties"]:
                unknown.append(k)
                del obj[k]
            else:
                prune(obj[k], top["properties"][k], k, unknown)
        body = {k: v for k, v in obj.items() if k not in ("metadata", "status")}
        schema = _expand({"type": "object", "properties": {k: v for k, v in top["properties"].items()
                                                             if k not in ("metadata", "status")},
                          "required": [r for r in top["required"] if r not in ("metadata", "status")]}, body)
        errors = []
        for e in sorted(jsonschema.Draft7Validator(schema).iter_errors(body), key=lambda e: list(e.path)):
            field = _dotted(e.path)
            if e.validator == "required":
                missing = re.findall(r"'([^']+)' is a required property", e.message)
                field = ".".join(x for x in (field, missing[0] if missing else "") if x)
                errors.append((field, "Required value"))
            elif e.validator == "type":
                errors.append((field, f"Invalid value: {e.instance!r}: {field} in body must be of type "
                                      f"{e.validator_value}"))
            elif e.validator == "anyOf":
                errors.append((field, f"Invalid value: {e.instance!r}: {field} in body should match the quantity "
                                      "syntax (e.g. 1Mi, 500m)"))
            else:
                errors.append((field, e.message))
        return unknown, errors


@functools.lru_cache(maxsize=None)
def validator(model: str) -> Optional[ObjectValidator]:
    try:
        return ObjectValidator(model)
    except LookupError:
        return None
