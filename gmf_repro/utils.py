"""Small helpers shared by the entry points."""
from __future__ import annotations

from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from .errors import UserError


def build(node: DictConfig | dict, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` of a resolved node; a constructor's own error for the user is raised as itself."""
    container = OmegaConf.to_container(node, resolve=True) if isinstance(node, (DictConfig, ListConfig)) else node
    try:
        return instantiate(container, **kwargs)
    except InstantiationException as err:
        # a constructor's own one-line message for the user, not Hydra's wrapper around it
        if isinstance(err.__cause__, (UserError, FileNotFoundError)):
            raise err.__cause__ from None
        raise


def labels_of(cfg: DictConfig) -> dict[str, str]:
    """``{"fuser": ..., "data": ..., "task": ...}``: the run's labels in results.json (``cfg.labels``,
    from the options chosen in each group)."""
    return {key: str(cfg.labels[key]) for key in ("fuser", "data", "task")}


def report_place(cfg: DictConfig) -> dict[str, str | None]:
    """``{"table": ..., "row": ...}``: where the report puts the run (``cfg.report``; docs/report.md)."""
    place = cfg.get("report") or {}
    table, row = place.get("table"), place.get("row")
    return {"table": None if table is None else str(table), "row": None if row is None else str(row)}
