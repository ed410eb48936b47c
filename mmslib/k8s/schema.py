"""KServe's CRD schemas (``openAPIV3Schema``) as JSON Schema, with Kubernetes' ``x-kubernetes-*``
extensions honoured (int-or-string, preserve-unknown-fields) and apiserver-style messages.

Where the schemas come from: on a cluster, the installed CRDs read through the API
(:func:`cluster_crds`; and ``dry_run: server`` has the API server itself check every manifest);
offline, KServe's CRD YAML files when ``$MMSLIB_KSERVE_CRDS`` (or an explicit folder) names them.
Nothing beside the repository is looked at.
"""
from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

from ..errors import MmsError
from .names import Res, is_dns1123_subdomain, is_label_key, is_label_value

# -- CRDs and schema validation ---------------------------------------------


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def crd_dir(explicit: Optional[os.PathLike] = None, required: bool = True) -> Optional[Path]:
    """The folder of KServe's CRD YAML files: ``explicit``, else ``$MMSLIB_KSERVE_CRDS``; None (or
    MmsError when ``required``) without one. Nothing beside the repository is looked at."""
    cand = Path(explicit) if explicit else (Path(os.environ["MMSLIB_KSERVE_CRDS"])
                                            if os.environ.get("MMSLIB_KSERVE_CRDS") else None)
    if cand is not None and cand.is_dir() and any(cand.glob("*.yaml")):
        return cand
    if required:
        where = f"{cand} has no CRD YAML files" if cand is not None else "MMSLIB_KSERVE_CRDS is not set"
        raise MmsError(f"KServe CRDs not found ({where}): set MMSLIB_KSERVE_CRDS to a folder with KServe's CRD "
                       "YAML files (kserve/kserve config/crd/full), or validate against a cluster with "
                       "dry_run: server")
    return None


@dataclass
class CrdInfo:
    res: Res
    crd: dict                 # the CustomResourceDefinition object
    schema: dict              # openAPIV3Schema
    status_subresource: bool
    short_names: Tuple[str, ...] = ()
    singular: str = ""
    list_kind: str = ""


def _yaml_docs(f: Path) -> List[Any]:
    """YAML documents of a file, through a JSON cache (parsing the 2 MB InferenceService CRD takes seconds)."""
    import hashlib
    st = f.stat()
    key = hashlib.sha256(f"{f.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:24]
    cache_root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mmslib" / "crds"
    cached = cache_root / f"{f.stem}-{key}.json"
    try:
        return json.loads(cached.read_text())
    except (OSError, ValueError):
        pass
    import yaml
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(f) as fh:
        docs = list(yaml.load_all(fh, Loader=loader))
    try:
        cache_root.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(docs))
        tmp.replace(cached)
    except (OSError, TypeError, ValueError):
        pass
    return docs


def crd_infos(docs: Iterable[Any]) -> Dict[Tuple[str, str], CrdInfo]:
    """{(apiVersion, kind): CrdInfo} for every served version of the CustomResourceDefinitions in ``docs``."""
    out: Dict[Tuple[str, str], CrdInfo] = {}
    for doc in docs:
        if not isinstance(doc, dict) or doc.get("kind", "CustomResourceDefinition") != "CustomResourceDefinition" \
                or not isinstance(doc.get("spec"), dict):
            continue
        spec = doc["spec"]
        names = spec["names"]
        for v in spec.get("versions", []):
            if not v.get("served", True):
                continue
            res = Res(spec["group"], v["name"], names["plural"], names["kind"],
                      spec.get("scope", "Namespaced") == "Namespaced")
            out[(res.api_version, res.kind)] = CrdInfo(
                res, doc, (v.get("schema") or {}).get("openAPIV3Schema", {"type": "object"}),
                "status" in (v.get("subresources") or {}), tuple(names.get("shortNames") or []),
                names.get("singular", ""), names.get("listKind") or names["kind"] + "List")
    return out


@functools.lru_cache(maxsize=8)
def _load_crds(path: str) -> Dict[Tuple[str, str], CrdInfo]:
    return crd_infos(doc for f in sorted(Path(path).glob("*.yaml")) for doc in _yaml_docs(f))


def cluster_crds(api, group: str = "serving.kserve.io") -> Dict[Tuple[str, str], CrdInfo]:
    """The CRDs installed in the cluster for ``group``, read through the API (apiextensions.k8s.io/v1)."""
    from .client import call
    lst = call("list CustomResourceDefinitions", _apiext(api).list_custom_resource_definition, _preload_content=False)
    try:
        items = json.loads(lst.data).get("items", [])
    finally:
        lst.release_conn()
    return crd_infos(d for d in items if (d.get("spec") or {}).get("group") == group)


def _apiext(api):
    from kubernetes import client
    return client.ApiextensionsV1Api(api)


def validate_with(obj: dict, crds: Dict[Tuple[str, str], CrdInfo], strict: bool = True) -> List[str]:
    """Problems with a manifest against given CRDs (e.g. :func:`cluster_crds`), [] when valid."""
    info = crds.get((str(obj.get("apiVersion")), str(obj.get("kind")))) if isinstance(obj, dict) else None
    if info is None:
        return [f"no CRD for apiVersion={obj.get('apiVersion')!r} kind={obj.get('kind')!r}"] \
            if isinstance(obj, dict) else ["not an object"]
    return [str(e) for e in SchemaValidator(info, strict).errors(obj)]


def load_crds(directory: Optional[os.PathLike] = None) -> Dict[Tuple[str, str], CrdInfo]:
    """{(apiVersion, kind): CrdInfo} for every served version in the CRD folder (cached)."""
    return _load_crds(str(crd_dir(directory)))


_DROP = {"description", "default", "example", "externalDocs", "format", "nullable"}


def to_jsonschema(s: Any, strict: bool = True) -> Any:
    """A structural openAPIV3Schema as a JSON Schema (draft 4 keywords).

    ``strict``: objects with declared properties refuse unknown fields (the
    apiserver would prune them, or refuse them with fieldValidation=Strict),
    unless ``x-kubernetes-preserve-unknown-fields`` says otherwise.
    """
    if not isinstance(s, dict):
        return s
    out: Dict[str, Any] = {}
    for k, v in s.items():
        if k in _DROP or k.startswith("x-kubernetes-"):
            continue
        if k == "properties":
            out[k] = {pk: to_jsonschema(pv, strict) for pk, pv in v.items()}
        elif k in ("items", "additionalProperties", "not"):
            out[k] = to_jsonschema(v, strict) if isinstance(v, dict) else v
        elif k in ("anyOf", "allOf", "oneOf"):
            out[k] = [to_jsonschema(x, strict) for x in v]
        else:
            out[k] = v
    if s.get("x-kubernetes-int-or-string") and "anyOf" not in out:
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if s.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if (strict and out.get("type") == "object" and "properties" in out and "additionalProperties" not in out
            and not s.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


@dataclass
class FieldError:
    field: str
    reason: str       # FieldValueInvalid | FieldValueRequired | FieldValueNotSupported | FieldValueForbidden ...
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


def _path(parts: Iterable) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _go_type(v: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", dict: "object",
            list: "array", type(None): "null"}.get(type(v), type(v).__name__)


def _jv(v: Any) -> str:
    return json.dumps(v) if not isinstance(v, (dict, list)) else ("object" if isinstance(v, dict) else "array")


class SchemaValidator:
    """Validates objects of one CRD version like the apiserver's structural schema checks."""

    def __init__(self, info: CrdInfo, strict: bool = True):
        import jsonschema
        self.info = info
        self.strict = strict
        self.schema = to_jsonschema(info.schema, strict)
        self._v = jsonschema.Draft4Validator(self.schema)

    def errors(self, obj: dict) -> List[FieldError]:
        out: List[FieldError] = []
        for e in sorted(self._v.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path))):
            out.extend(self._translate(e))
        out.extend(metadata_errors(obj.get("metadata")))
        return out

    @staticmethod
    def _translate(e) -> List[FieldError]:
        path = _path(e.absolute_path)
        v = e.validator
        if v == "required":
            missing = [r for r in e.validator_value if isinstance(e.instance, dict) and r not in e.instance]
            return [FieldError(_path(list(e.absolute_path) + [m]), "FieldValueRequired", "Required value")
                    for m in missing] or [FieldError(path, "FieldValueRequired", e.message)]
        if v == "additionalProperties" and e.validator_value is False:
            known = set((e.schema.get("properties") or {}).keys())
            extra = [k for k in e.instance if k not in known] if isinstance(e.instance, dict) else []
            return [FieldError(_path(list(e.absolute_path) + [k]), "FieldValueForbidden",
                               "Forbidden: field not declared in schema") for k in extra]
        if v == "type":
            t = e.validator_value
            t = " or ".join(t) if isinstance(t, list) else t
            return [FieldError(path, "FieldValueTypeInvalid",
                               f"Invalid value: {_jv(e.instance)}: {path} in body must be of type {t}: "
                               f"\"{_go_type(e.instance)}\"")]
        if v == "anyOf" and all(isinstance(x, dict) and "type" in x for x in e.validator_value):
            ts = " or ".join(x["type"] for x in e.validator_value)
            return [FieldError(path, "FieldValueTypeInvalid",
                               f"Invalid value: {_jv(e.instance)}: {path} in body must be of type {ts}")]
        if v == "enum":
            allowed = ", ".join(json.dumps(x) for x in e.validator_value)
            return [FieldError(path, "FieldValueNotSupported",
                               f"Unsupported value: {_jv(e.instance)}: supported values: {allowed}")]
        if v == "pattern":
            return [FieldError(path, "FieldValueInvalid",
                               f"Invalid value: {_jv(e.instance)}: {path} in body should match '{e.validator_value}'")]
        return [FieldError(path, "FieldValueInvalid", f"Invalid value: {_jv(e.instance)}: {e.message}")]


def metadata_errors(meta: Any) -> List[FieldError]:
    """What the apiserver checks in metadata for a custom object."""
    if meta is None:
        return [FieldError("metadata", "FieldValueRequired", "Required value")]
    if not isinstance(meta, dict):
        return [FieldError("metadata", "FieldValueTypeInvalid", "Invalid value: metadata must be an object")]
    out = []
    name = meta.get("name")
    if name is not None and not is_dns1123_subdomain(name):
        out.append(FieldError("metadata.name", "FieldValueInvalid",
                              f"Invalid value: {json.dumps(name)}: a lowercase RFC 1123 subdomain must consist of "
                              "lower case alphanumeric characters, '-' or '.', and must start and end with an "
                              "alphanumeric character"))
    for key in ("labels", "annotations"):
        m = meta.get(key)
        if m is None:
            continue
        if not isinstance(m, dict):
            out.append(FieldError(f"metadata.{key}", "FieldValueTypeInvalid", "Invalid value: must be a map"))
            continue
        for k, v in m.items():
            if not is_label_key(k):
                out.append(FieldError(f"metadata.{key}", "FieldValueInvalid",
                                      f"Invalid value: {json.dumps(k)}: name part must consist of alphanumeric "
                                      "characters, '-', '_' or '.'"))
            if not isinstance(v, str):
                out.append(FieldError(f"metadata.{key}.{k}", "FieldValueTypeInvalid",
                                      f"Invalid value: {_jv(v)}: must be a string"))
            elif key == "labels" and not is_label_value(v):
                out.append(FieldError(f"metadata.labels", "FieldValueInvalid",
                                      f"Invalid value: {json.dumps(v)}: a valid label must be an empty string or "
                                      "consist of alphanumeric characters, '-', '_' or '.', at most 63 characters"))
    return out


@functools.lru_cache(maxsize=32)
def _validator(path: str, api_version: str, kind: str, strict: bool) -> Optional[SchemaValidator]:
    info = _load_crds(path).get((api_version, kind))
    return SchemaValidator(info, strict) if info else None


def validator_for(api_version: str, kind: str, directory: Optional[os.PathLike] = None,
                  strict: bool = True) -> Optional[SchemaValidator]:
    return _validator(str(crd_dir(directory)), api_version, kind, strict)


def validate_manifest(obj: dict, directory: Optional[os.PathLike] = None, strict: bool = True) -> List[str]:
    """Problems with a manifest against KServe's CRDs ([] when valid)."""
    if not isinstance(obj, dict):
        return ["not an object"]
    v = validator_for(str(obj.get("apiVersion")), str(obj.get("kind")), directory, strict)
    if v is None:
        return [f"no CRD for apiVersion={obj.get('apiVersion')!r} kind={obj.get('kind')!r}"]
    return [str(e) for e in v.errors(obj)]
