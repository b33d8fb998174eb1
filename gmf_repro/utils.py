"""Small helpers shared by the entry points."""
from __future__ import annotations

from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf


def _drop_names(node: Any) -> Any:
    if isinstance(node, dict):
        has_target = "_target_" in node
        return {k: _drop_names(v) for k, v in node.items() if not (has_target and k == "name")}
    if isinstance(node, list):
        return [_drop_names(v) for v in node]
    return node


def build(node: DictConfig | dict, **kwargs: Any) -> Any:
    """Instantiate a config node whose ``name:`` is a label for results, not a constructor argument.

    ``name`` is dropped from every node that has a ``_target_``, at any depth; ``kwargs`` are passed through.
    """
    container = OmegaConf.to_container(node, resolve=True) if isinstance(node, (DictConfig, ListConfig)) else node
    return instantiate(_drop_names(container), **kwargs)


def component_name(node: DictConfig | dict | None, default: str = "none") -> str:
    """The ``name`` label of a config node, else the last part of its ``_target_``."""
    if not node:
        return default
    if node.get("name"):
        return str(node["name"])
    target = node.get("_target_")
    return str(target).rsplit(".", 1)[-1].lower() if target else default
