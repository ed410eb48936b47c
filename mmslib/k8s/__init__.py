"""Kubernetes helpers for the KServe backend (no notebook or experiment logic), one noun per module:

- :mod:`.names`: KServe's resources, names and the run labels every object carries;
- :mod:`.manifests`: InferenceService / TrainedModel manifests and their quantities;
- :mod:`.schema`: KServe's CRD schemas (from the cluster, or ``$MMSLIB_KSERVE_CRDS``) as JSON Schema;
- :mod:`.client`: the API client, calls with retries, errors, preflight checks;
- :mod:`.cleanup`: clean-up by run id, ``python -m mmslib.k8s cleanup --run-id X --namespace N``;
- :mod:`.status`: an object's conditions and readiness (pure functions on its ``status``);
- :mod:`.artifacts`: per-model Triton artifacts (one model directory per model, named as it);
- :mod:`.watch`: the list + watch threads that keep a resource kind's objects current.

Everything but :mod:`.watch` (imported by the backend that starts watchers) is re-exported here
(``from mmslib import k8s; k8s.isvc_manifest(...)``).
"""
from .names import *  # noqa: F401,F403
from .manifests import *  # noqa: F401,F403
from .manifests import format_memory  # noqa: F401
from .schema import *  # noqa: F401,F403
from .client import *  # noqa: F401,F403
from .cleanup import *  # noqa: F401,F403
from .status import *  # noqa: F401,F403
from .artifacts import *  # noqa: F401,F403
