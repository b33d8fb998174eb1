"""Runs named by their settings: ``GMF n=2``, ``GMF n=4 beta=0.5``, never by a digest a person must decode.

Two places name a run. A job knows only its own command line, so its label (the per-job summary line,
the W&B run name) is its fuser plus the overrides of the fuser's own settings (``fuser.n=2`` ->
``gmf n=2``) and the table row it chose when that is not the fuser (``claims_row=gmf_init``). The
report sees every run, so a row's label is its fuser plus the settings that differ between that fuser's
rows in the same table, read from each run folder's ``.hydra/overrides.yaml`` (what the person typed), a
key overridden in one setting and not another filled in from that run's composed config
(``.hydra/config.yaml``, or the group choice in ``.hydra/hydra.yaml``).

Overrides of what the setting digest leaves out (the seed, output paths, checkpoints, the logger's run
labels, the report's place) name no setting and are never shown.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..naming import is_setting, parse_override, shown


# ------------------------------------------------------------------ the report: what sets a row apart
def _show(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), default=str)


class RunFolder:
    """What a run folder's ``.hydra/`` says about the job: its overrides and, on demand, its config values."""

    def __init__(self, results_path: str | Path | None) -> None:
        self.hydra = Path(results_path).parent / ".hydra" if results_path else None
        self._config: Any = None
        self._choices: dict[str, Any] | None = None

    def overrides(self) -> dict[str, str] | None:
        """Setting overrides as typed, key -> value; None when the folder has no readable overrides.yaml."""
        import yaml

        try:
            listed = yaml.safe_load((self.hydra / "overrides.yaml").read_text()) if self.hydra else None
        except (OSError, ValueError, yaml.YAMLError):
            return None
        if not isinstance(listed, list):
            return None
        parsed = [parse_override(o) for o in listed]
        return {k: v for k, v in parsed if is_setting(k)}

    def value(self, key: str) -> str | None:
        """The composed value of ``key`` (a group's choice for a group key), None when it cannot be read."""
        from omegaconf import OmegaConf

        if self._choices is None:
            self._choices = {}
            try:
                hydra_cfg = OmegaConf.load(self.hydra / "hydra.yaml")
                self._choices = OmegaConf.to_container(hydra_cfg.hydra.runtime.choices, resolve=False) or {}
            except Exception:  # noqa: BLE001 - no folder, no file or not YAML: no group choices known
                pass
            try:
                self._config = OmegaConf.load(self.hydra / "config.yaml")
            except Exception:  # noqa: BLE001 - as above: no config values known
                pass
        if key in self._choices:
            return _show(self._choices[key])
        if self._config is None:
            return None
        try:
            found = OmegaConf.select(self._config, key, default=None, throw_on_resolution_failure=False)
        except Exception:  # noqa: BLE001 - a key path OmegaConf refuses
            return None
        if OmegaConf.is_config(found):
            found = OmegaConf.to_container(found, resolve=False)
        return None if found is None else _show(found)


def setting_variants(settings: Mapping[str, Sequence[Mapping[str, Any]]]) -> tuple[dict[str, str], bool]:
    """setting -> the overrides that set it apart from the fuser's other settings (``"n=2"``), and whether
    every setting could be named so (``False``: some are told apart by their order alone, ``"setting 2"``).

    ``settings`` maps each setting (digest) of one row to its runs (results.json records with ``_path``).
    One setting needs no name: ``{digest: ""}``.
    """
    if len(settings) <= 1:
        return {s: "" for s in settings}, True
    folders: dict[str, RunFolder] = {}
    typed: dict[str, dict[str, str] | None] = {}
    for setting, runs in settings.items():
        found = None
        for res in runs:
            folder = RunFolder(res.get("_path"))
            found = folder.overrides()
            if found is not None:
                folders[setting] = folder
                break
        typed[setting] = found
    known = {s: o for s, o in typed.items() if o is not None}
    keys = list(dict.fromkeys(k for o in known.values() for k in o))
    values = {s: {k: o.get(k) if k in o else folders[s].value(k) for k in keys} for s, o in known.items()}
    differing = [k for k in keys if len({values[s][k] for s in values}) > 1]
    names = {s: " ".join(shown([(k, "?" if values[s][k] is None else values[s][k]) for k in differing]))
             for s in values}
    clear = len(known) == len(settings) and len(set(names.values())) == len(names) and all(names.values())
    if clear:
        return names, True
    order = {s: i for i, s in enumerate(settings, 1)}
    return {s: (f"{names[s]} (setting {order[s]})" if names.get(s) else f"setting {order[s]}")
            for s in settings}, False
