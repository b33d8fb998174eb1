"""Loading a released checkpoint into an extractor: key mapping, a report, and one-line errors.

Why strict: a checkpoint that half-fits (a renamed key, a different input size) would otherwise
train or extract features from random layers without a word (docs/decisions.md, "Method-specific
extractors"). Keys a feature extractor does not use (an MAE decoder, a classifier) are named in the
report as ignored; anything else that does not fit is an error.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from gmf_repro.errors import UserError


@dataclass
class LoadReport:
    """What a load did: tensors loaded, checkpoint keys ignored on purpose, and what did not fit."""

    path: str
    loaded: int = 0
    ignored: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)

    def line(self) -> str:
        groups = sorted({k.split(".")[0] for k in self.ignored})
        extra = f"; ignored {len(self.ignored)} ({', '.join(groups)})" if self.ignored else ""
        return f"weights: {self.loaded} tensors from {self.path}, 0 missing, 0 unexpected{extra}"


def _read_state_dict(path: Path, what: str) -> dict[str, Tensor]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file gets the same one-line answer
        raise UserError(f"{path} is not a PyTorch checkpoint ({type(err).__name__}); {what}") from None
    for key in ("model", "state_dict"):  # MAE / Audio-MAE keep the ViT under "model"; Lightning under "state_dict"
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, Tensor) for v in obj.values()):
        found = list(obj)[:5] if isinstance(obj, Mapping) else type(obj).__name__
        raise UserError(f"{path} holds no state dict of tensors (found {found}); {what}")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def load_checkpoint(model: nn.Module, path: str | Path, *, what: str, source: str,
                    ignore: Sequence[str] = (), rename: Callable[[dict[str, Tensor]], dict[str, Tensor]] | None = None,
                    verbose: bool = True) -> LoadReport:
    """Load ``path`` into ``model`` strictly, after ``rename`` and dropping keys that start with ``ignore``.

    ``what`` names the expected layout (for messages); ``source`` says where the file comes from.
    Missing file, unreadable file, missing/unexpected keys or a shape mismatch: one ``UserError`` line.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"checkpoint {path} not found; get {what} from {source} and point the extractor's "
                        f"weights= at it, or set weights=null to train from scratch")
    state = _read_state_dict(path, f"expected {what}")
    if rename is not None:
        state = rename(state)
    report = LoadReport(str(path))
    own = model.state_dict()
    kept = {}
    for key, value in state.items():
        if key not in own and key.startswith(tuple(ignore)):
            report.ignored.append(key)
        elif key not in own:
            report.unexpected.append(key)
        elif tuple(value.shape) != tuple(own[key].shape):
            report.mismatched.append(f"{key} {tuple(value.shape)} vs {tuple(own[key].shape)}")
        else:
            kept[key] = value
    report.missing = [k for k in own if k not in state]
    if report.missing or report.unexpected or report.mismatched:
        parts = [f"{len(v)} {name} (e.g. {', '.join(v[:3])})" for name, v in
                 (("shape mismatches, checkpoint vs model", report.mismatched), ("missing", report.missing),
                  ("unexpected", report.unexpected)) if v]
        raise UserError(f"{path} does not fit {type(model).__name__}: {'; '.join(parts)}; expected {what} "
                        f"for this input size and width")
    model.load_state_dict(kept, strict=True)
    report.loaded = len(kept)
    if verbose:
        print(report.line())
    return report
