"""Small helpers shared by the entry points."""
from __future__ import annotations

from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from .errors import UserError


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
    try:
        return instantiate(_drop_names(container), **kwargs)
    except InstantiationException as err:
        # a constructor's own one-line message for the user, not Hydra's wrapper around it
        if isinstance(err.__cause__, (UserError, FileNotFoundError)):
            raise err.__cause__ from None
        raise


def component_name(node: DictConfig | dict | None, default: str = "none") -> str:
    """The ``name`` label of a config node, else the last part of its ``_target_``."""
    if not node:
        return default
    if node.get("name"):
        return str(node["name"])
    target = node.get("_target_")
    return str(target).rsplit(".", 1)[-1].lower() if target else default
