"""Rendered Kubernetes manifests back to objects for the policies' ``objects``, built only as far as a rule reads.

Every ``.yaml`` file of a target's ``kubernetes/`` folder (its ``kustomization.yaml`` aside) holds one or more
documents; each document that is a mapping is one object, in file-name order. A rule such as
``objects.exists(o, o.kind == "PodDisruptionBudget")`` reads only each object's ``kind``: the documents are
still parsed whole (libyaml, so every syntax error is found as before), but the Python objects are built only for
the parts the rule reads (:mod:`.cel_reads`) — most of the cost of ``yaml.load_all`` is building them. The
result is exactly ``project(objects, reads)`` of the whole objects; anything other than plain mappings and
lists (other tags, merge keys ``<<``) is built whole and then cut down, as :func:`.cel_reads.project` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from .cel_reads import Reads, project

__all__ = ["manifest_texts", "kubernetes_objects", "read_objects"]

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MAP = "tag:yaml.org,2002:map"
_SEQUENCE = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"


def manifest_texts(files: Mapping[str, str]) -> list[str]:
    """The texts of a target's Kubernetes manifests, in file-name order."""
    return [files[path] for path in sorted(files)
            if "/kubernetes/" in path and path.endswith(".yaml") and not path.endswith("kustomization.yaml")]


def kubernetes_objects(files: Mapping[str, str]) -> list[dict[str, Any]]:
    """Every object of a target's manifests, whole."""
    return [o for text in manifest_texts(files) for o in yaml.load_all(text, Loader=_LOADER) if isinstance(o, dict)]


def read_objects(files: Mapping[str, str], reads: Reads) -> Any:
    """``project(kubernetes_objects(files), reads)``, building only what ``reads`` keeps."""
    element = reads.each
    if reads.whole or reads.fields or element is None:  # the list is kept whole (see project)
        return project(kubernetes_objects(files), reads)
    out: list[Any] = []
    for text in manifest_texts(files):
        loader = _LOADER(text)
        try:
            while loader.check_node():
                node = loader.get_node()
                if isinstance(node, yaml.MappingNode) and node.tag == _MAP:
                    out.append(_built(loader, node, element))
                else:  # whatever it builds to (a mapping under another tag is not a dict either way)
                    document = loader.construct_document(node)
                    if isinstance(document, dict):
                        out.append(project(document, element))
                _forget(loader)
        finally:
            loader.dispose()
    return out


def _whole(loader: Any, node: yaml.Node) -> Any:
    return loader.construct_object(node, deep=True)


def _built(loader: Any, node: yaml.Node, reads: Reads) -> Any:
    """The value of ``node`` cut down to ``reads``, building only what they keep."""
    if reads.whole or (reads.fields and reads.each is not None) or not (reads.fields or reads.each is not None):
        return _whole(loader, node)
    if reads.each is not None:
        if isinstance(node, yaml.SequenceNode) and node.tag == _SEQUENCE:
            return [_built(loader, child, reads.each) for child in node.value]
        return project(_whole(loader, node), reads)
    if not (isinstance(node, yaml.MappingNode) and node.tag == _MAP) or any(key.tag == _MERGE for key, _ in node.value):
        return project(_whole(loader, node), reads)
    chosen: dict[Any, yaml.Node] = {}
    for key_node, value_node in node.value:
        key = _whole(loader, key_node)
        if isinstance(key, str) and key in reads.fields:
            chosen[key] = value_node  # a repeated key: the last one, as in the whole mapping
    return {name: _built(loader, chosen[name], inner) for name, inner in reads.fields.items() if name in chosen}


def _forget(loader: Any) -> None:
    """What ``construct_document`` clears after each document."""
    loader.constructed_objects = {}
    loader.recursive_objects = {}
    loader.state_generators = []
    loader.deep_construct = False
