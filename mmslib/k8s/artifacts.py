"""Per-model Triton artifacts for KServe: one model directory per model, its configured name its own.

Why: KServe's model agent downloads each TrainedModel to ``/mnt/models/<TrainedModel name>`` and asks
Triton to load ``<TrainedModel name>`` (kserve/kserve pkg/agent/downloader.go
``Downloader.DownloadModel``, puller.go); Triton refuses a model whose ``config.pbtxt`` ``name`` differs
from its directory ("The TrainModel resource name must be the same as the model name specified in
triton model configuration", docs/samples/multimodelserving/triton/README.md). KServe's public
``simple_string`` says ``name: "simple_string"``, which no Kubernetes object can be named, so every
TrainedModel pointing at it is Ready and never loads. A traditional InferenceService's storageUri is a
Triton *repository*: every model directory under it is downloaded and loaded, so it must hold exactly
one model (``gs://kfserving-examples/models/triton`` also holds bert and others).

Layout written here (upload it as is, e.g. ``gsutil -m cp -r OUT/* gs://BUCKET/mmslib/``)::

    OUT/<model>/<model>/config.pbtxt      name: "<model>" (the source's config, name rewritten)
    OUT/<model>/<model>/1/...             the source model's version directories, copied

Then ``storage_uri: gs://BUCKET/mmslib/{model}/{model}``: a TrainedModel's storageUri is the model
directory, a traditional InferenceService's the folder above it (a repository with exactly one model).

``python -m mmslib.k8s artifacts --source DIR --out OUT --models N`` (``DIR``: a Triton model
directory, e.g. ``gsutil cp -r gs://kfserving-examples/models/triton/simple_string .``).

Your own repository (``workload: repository``): ``--repository DIR`` instead of ``--source`` writes
the same layout from ``DIR``'s models, round-robin as a run serves them (``OUT/m00000/m00000`` copies
your first model, ``m00001`` the next, ...; :func:`write_repository_artifacts`), each copy's declared
name (Triton's config.pbtxt, MLServer's model-settings.json) set to its replica's. Pointing the
replicas at your models' own directories (``storage_uri .../{source_model}``) cannot load on Triton,
nor as TrainedModels on MLServer: both find a model by the name its directory declares, and KServe
asks them for the TrainedModel's.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Iterable, List, Optional

from ..errors import ParamError

__all__ = ["CONFIG_FILE", "configured_name", "write_triton_artifacts", "write_repository_artifacts",
           "per_model_layout_problem"]

CONFIG_FILE = "config.pbtxt"
_NAME = re.compile(r'^\s*name\s*:\s*"([^"]*)"\s*$', re.M)


def configured_name(config_text: str) -> Optional[str]:
    """The top-level ``name: "..."`` of a config.pbtxt (None when absent: Triton then uses the directory)."""
    depth = 0
    for line in config_text.splitlines():
        if depth == 0:
            m = _NAME.match(line)
            if m:
                return m.group(1)
        depth += line.count("{") + line.count("[") - line.count("}") - line.count("]")
    return None


def _renamed(config_text: str, name: str) -> str:
    if configured_name(config_text) is None:
        return f'name: "{name}"\n' + config_text
    out, depth, done = [], 0, False
    for line in config_text.splitlines(keepends=True):
        if depth == 0 and not done and _NAME.match(line.rstrip("\n")):
            line, done = f'name: "{name}"\n', True
        depth += line.count("{") + line.count("[") - line.count("}") - line.count("]")
        out.append(line)
    return "".join(out)


def write_triton_artifacts(source: Path, out: Path, models: Iterable[str]) -> List[Path]:
    """Copy the Triton model directory ``source`` once per model into ``out/<model>/<model>`` with its
    config.pbtxt's name set to the model's; returns the model directories."""
    source, out = Path(source), Path(out)
    cfg = source / CONFIG_FILE
    if not cfg.is_file():
        raise ParamError("source", str(source), f"a Triton model directory with a {CONFIG_FILE} (e.g. gsutil cp -r "
                                                "gs://kfserving-examples/models/triton/simple_string .)")
    text = cfg.read_text()
    written = []
    for m in models:
        d = out / m / m
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        for child in source.iterdir():
            if child.name == CONFIG_FILE:
                continue
            (shutil.copytree if child.is_dir() else shutil.copy2)(child, d / child.name)
        (d / CONFIG_FILE).write_text(_renamed(text, m))     # last: a complete model or none
        written.append(d)
    return written


def write_repository_artifacts(repository: Path, out: Path, models: Iterable[str]) -> List[Path]:
    """Copy the models of the user's repository ``repository`` (Triton, MLServer or plain-file layout,
    :func:`mmslib.repository.scan`) once per replica into ``out/<model>/<model>``, replica ``mNNNNN``
    copying model ``NNNNN mod k`` as the repository workload serves them, its declared name set to the
    replica's (a plain file is copied as it is); returns the model directories."""
    from .. import repository as repo
    from ..workloads.repository import copy_native, replica_index
    found = repo.scan(repository)
    out = Path(out)
    written = []
    for name in models:
        m = found[replica_index(name) % len(found)]
        if m.layout == "plain":
            d = out / name / name
            if d.exists():
                shutil.rmtree(d)
            d.mkdir(parents=True)
            shutil.copy2(m.path, d / m.path.name)
        else:
            d = copy_native(m, out / name, name)
        written.append(d)
    return written


def per_model_layout_problem(template: str) -> str:
    """Why ``template`` (storage_uri with ``{model}``, maybe ``{source_model}``) cannot give Triton one
    loadable model per InferenceService and per TrainedModel; "" when it can (``.../{model}/{model}``)."""
    t = template.rstrip("/")
    parent, _, last = t.rpartition("/")
    if "{source_model}" in last:
        return ("the model directory is your model's, its config.pbtxt naming your model, but KServe's agent "
                "downloads a TrainedModel to /mnt/models/<its name> (m00000, ...) and asks Triton to load that "
                "name, and Triton refuses a config.pbtxt naming another model than its directory: no replica "
                "would ever load, however many models you deploy")
    if "{model}" not in t:
        return ("every model would point at the same artifact: a TrainedModel loads under its own name, and Triton "
                "refuses a config.pbtxt whose name differs (an InferenceService name cannot be simple_string)")
    if last != "{model}":
        return (f"the model directory's last part is {last!r}: the TrainedModel's name must be the directory "
                "name Triton's config.pbtxt declares, so end it with /{model}")
    if "{model}" not in parent:
        return (f"a traditional InferenceService loads every model under {parent or '/'} (the folder above the "
                "model directory): put {model} in it too, e.g. gs://BUCKET/mmslib/{model}/{model}")
    return ""
