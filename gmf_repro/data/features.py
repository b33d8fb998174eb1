"""Your own features (``data=features``): one array per modality plus labels, from files you already have.

``data.path`` is one of

- a ``.npz`` file or a ``.pt`` file (``torch.save`` of a dict of tensors / arrays): one array per
  modality, ``[N, ...]``, and the labels ``[N]`` (key ``data.label_key``, default ``label``);
- a folder of ``.npy`` files, one per modality plus ``label.npy``;
- a folder of per-split sets: ``train`` and ``test`` (and optionally ``val``), each a ``.npz``, a
  ``.pt`` or a folder of ``.npy`` files, e.g. ``train.npz``, ``test.npz``.

Without given splits, train / test (and val, with ``data.val_fraction``) are made from ``data.seed``,
stratified by class (data/splits.py). Modalities and their condition letters come from the config
(``data.modalities={text: T, image: I, audio: A}``), so ``eval.conditions=[TIA,TI,A]`` needs no code.
Labels are integers or strings; the classes are those of the train split. Batches hold the raw
arrays (as float32); each modality is standardised with its train statistics on the device, after a
missing-modality condition has zeroed the raw input (data/standardize.py).

Every problem with a file is a one-line ``UserError`` naming the file and the fix.
"""
from __future__ import annotations

import os
import re
import zipfile
import zlib
from pathlib import Path
from typing import Any, BinaryIO, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from ..errors import UserError
from .splits import check_fractions, empty_split_message, stratified_split, train_classes
from .standardize import Standardizer
from .tensors import TensorDataModule, TensorDictDataset

SPLITS = ("train", "val", "test")
ARRAY_SUFFIXES = (".npz", ".pt", ".pth")
RESERVED = ("label", "index")  # the batch keys of the labels and of each row's index (data/tensors.py)
_LETTERS = {"audio": "A", "video": "V", "image": "I", "text": "T"}
SAVE_HINT = "save one array per modality plus the labels, e.g. numpy.savez(path, text=X_text, label=y)"


def _open(path: Path) -> BinaryIO:
    """``path`` opened for reading, or a one-line error naming the OS's reason (permissions, a folder, ...)."""
    try:
        return open(path, "rb")
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror or err}; {_os_fix(err)}") from None


def _os_fix(err: OSError) -> str:
    if isinstance(err, PermissionError):
        return "give the user running this read access (e.g. chmod u+r) or copy the file somewhere readable"
    return "check that the path names a readable file"


def _load_npz(path: Path) -> dict[str, Any]:
    with _open(path) as fh:
        head = fh.read(6)
        fh.seek(0)
        if not head:
            raise UserError(f"{path} is empty (0 bytes); write it again: {SAVE_HINT}")
        if head.startswith(b"\x93NUMPY"):  # an .npy saved under a .npz name
            raise UserError(f"{path} holds a single array (an .npy), not named arrays; {SAVE_HINT}")
        if not head.startswith(b"PK"):
            kind = "a pickle, which is never read" if head[:1] == b"\x80" else "not a zip of .npy files"
            raise UserError(f"{path} is not a readable .npz of arrays ({kind}); {SAVE_HINT}")
        try:
            f = np.load(fh, allow_pickle=False)
        except (ValueError, OSError, zipfile.BadZipFile, EOFError) as err:
            raise UserError(f"{path} is not a readable .npz of arrays ({_reason(err)}); {SAVE_HINT}") from None
        with f:
            if not f.files:
                raise UserError(f"{path} holds no arrays; {SAVE_HINT}")
            out = {}
            for k in f.files:
                try:
                    out[k] = f[k]
                except ValueError as err:
                    if "allow_pickle" in str(err):
                        raise UserError(f"{path}: array '{k}' holds Python objects, which are never read (they would "
                                        f"be unpickled); store numbers or strings, e.g. numpy.asarray(x, dtype=float)"
                                        ) from None
                    raise UserError(f"{path}: array '{k}' is damaged ({_reason(err)}); save the file again") from None
                except (OSError, zipfile.BadZipFile, zlib.error, EOFError) as err:
                    raise UserError(f"{path}: array '{k}' is damaged ({_reason(err)}); save the file again") from None
            return out


def _reason(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:200]}" if text else type(err).__name__


def _numpy_globals() -> list:
    """What a ``torch.save`` of numpy arrays asks the unpickler for: numpy's array, dtype and scalar rebuilders
    (under numpy 1.x and 2.x names) and the dtype classes; nothing that runs code."""
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray
    dtypes = {type(np.dtype(t)) for t in set(np.sctypeDict.values())} - {np.dtype}
    rebuilders = [(f, f"{core}.multiarray.{f.__name__}") for f in (multiarray._reconstruct, multiarray.scalar)
                  for core in ("numpy.core", "numpy._core")]
    return [*rebuilders, np.ndarray, np.dtype, *sorted(dtypes, key=str)]


def _load_pt(path: Path) -> dict[str, Any]:
    hint = "save it with torch.save({'text': X_text, 'label': y}, path) (tensors or numpy arrays)"
    with _open(path) as fh:
        head = fh.read(2)
        fh.seek(0)
        if not head.startswith(b"PK") and head[:1] != b"\x80":  # torch.save writes a zip (or, legacy, a pickle)
            kind = "it is empty (0 bytes)" if not head else "not a torch.save file"
            raise UserError(f"{path} is not a readable .pt file ({kind}); {hint}")
        try:
            with torch.serialization.safe_globals(_numpy_globals()):
                obj = torch.load(fh, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - any unreadable file is the user's to fix
            refused = re.search(r"GLOBAL (\S+) was not an allowed global|but got <class '([^']+)'>", str(err))
            if refused:
                raise UserError(f"refused to load {path}: it asks for {refused.group(1) or refused.group(2)}, which "
                                f"a file of tensors never needs and which could run code; nothing from it was run; "
                                f"{hint}") from None
            raise UserError(f"{path} is not a readable .pt file ({_reason(err)}); {hint}") from None
    if not isinstance(obj, Mapping):
        raise UserError(f"{path} holds a {type(obj).__name__}, not a dict of arrays; {hint}")
    if not obj:
        raise UserError(f"{path} holds an empty dict; {hint}")
    return dict(obj)


def _load_npy_folder(folder: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    try:
        files = sorted(folder.glob("*.npy"))
        os.listdir(folder)  # glob hides an unreadable folder as an empty one
    except OSError as err:
        raise UserError(f"cannot read folder {folder}: {err.strerror or err}; {_os_fix(err)}") from None
    for f in files:
        with _open(f) as fh:
            try:
                out[f.stem] = np.load(fh, allow_pickle=False)
            except (ValueError, OSError, EOFError) as err:
                raise UserError(f"{f} is not a readable .npy array ({_reason(err)}); save it with numpy.save"
                                ) from None
    if not out:
        raise UserError(f"{folder} holds no .npy files; put one <modality>.npy per modality plus label.npy there")
    return out


def load_set(path: Path) -> dict[str, Any]:
    """Name -> array (unchecked) of one ``.npz`` / ``.pt`` file or one folder of ``.npy`` files."""
    if path.is_dir():
        return _load_npy_folder(path)
    if path.suffix == ".npz":
        return _load_npz(path)
    if path.suffix in (".pt", ".pth"):
        return _load_pt(path)
    if path.suffix == ".npy":
        raise UserError(f"{path} is a single .npy array; put one .npy per modality plus label.npy in a folder "
                        f"and set data.path to the folder")
    raise UserError(f"{path}: unknown format '{path.suffix}'; use .npz, .pt or a folder of .npy files "
                    f"(.h5: convert with numpy.savez)")


def find_sets(path: Path) -> dict[str, Path]:
    """Split -> file or folder when ``path`` holds per-split sets (``train.npz``, ``test/``, ...);
    else ``{"all": path}``."""
    if not path.exists():
        raise UserError(f"data.path={path} does not exist; point it at a .npz / .pt file or a folder of them")
    if not path.is_dir():
        return {"all": path}
    found: dict[str, Path] = {}
    for split in SPLITS:
        candidates = [path / split] + [path / f"{split}{s}" for s in ARRAY_SUFFIXES]
        hits = [c for c in candidates if c.exists()]
        if len(hits) > 1:
            raise UserError(f"{path} has {len(hits)} {split} sets ({', '.join(h.name for h in hits)}); keep one")
        if hits:
            found[split] = hits[0]
    if not found:
        return {"all": path}
    if "train" not in found or "test" not in found:
        raise UserError(f"{path} has {sorted(found)} sets but needs both train and test (e.g. train.npz, test.npz); "
                        f"or put every sample in one file and let data.test_fraction split it")
    return found


def _as_numpy(value: Any, where: str, key: str) -> np.ndarray:
    if isinstance(value, Tensor):
        value = value.detach().cpu()
        if value.layout != torch.strided:  # a sparse tensor
            value = value.to_dense()
        if value.dtype == torch.bfloat16:  # numpy has no bfloat16; float32 holds every bfloat16 value
            value = value.float()
        return value.numpy()
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, (list, tuple)):
        try:
            arr = np.asarray(value)
        except ValueError:
            arr = None
        if arr is not None and arr.dtype != object:
            return arr
    raise UserError(f"{where}: '{key}' is a {type(value).__name__}, not an array; store one array per modality "
                    f"(rows = samples) and the labels")


def check_set(arrays: dict[str, Any], where: str, modalities: list[str], label_key: str) -> dict[str, np.ndarray]:
    """The arrays of one set, checked: present, numeric, real, finite, not empty, one row per label.
    Features as float32."""
    names = ", ".join(arrays) or "nothing"
    if label_key not in arrays:
        raise UserError(f"{where} has no '{label_key}' array (has: {names}); name the labels '{label_key}' "
                        f"or set data.label_key")
    shape = np.shape(arrays[label_key])
    column = len(shape) <= 1 or (len(shape) == 2 and shape[1] == 1)  # [N] or [N, 1]
    labels = _as_numpy(arrays[label_key], where, label_key).reshape(-1) if column else None
    if labels is None:
        raise UserError(f"{where}: '{label_key}' has shape {tuple(np.shape(arrays[label_key]))}; "
                        f"give one class label per row, shape [N]")
    if len(labels) == 0:
        raise UserError(f"{where} holds no samples ('{label_key}' has 0 rows); save it again with its samples")
    out = {label_key: labels}
    for m in modalities:
        if m not in arrays:
            raise UserError(f"{where} has no array '{m}' (has: {names}); set data.modalities to names in the file")
        out[m] = check_features(_as_numpy(arrays[m], where, m), where, m, label_key, len(labels))
    return out


def check_features(x: np.ndarray, where: str, m: str, label_key: str, rows: int) -> np.ndarray:
    """One modality's array as float32 [rows, ...]; a one-line error for what no model can read."""
    if x.ndim < 2:
        raise UserError(f"{where}: modality '{m}' has shape {tuple(x.shape)}; give one row per sample, "
                        f"shape [N, dim] (reshape(-1, 1) for a scalar feature)")
    if x.dtype.kind == "c":
        raise UserError(f"{where}: modality '{m}' has dtype {x.dtype} (complex); its imaginary part would be lost: "
                        f"store real features, e.g. numpy.concatenate([x.real, x.imag], axis=1) or numpy.abs(x)")
    if x.dtype.kind not in "biuf":
        raise UserError(f"{where}: modality '{m}' has dtype {x.dtype}, not numbers; store numeric features")
    if len(x) != rows:
        raise UserError(f"{where}: modality '{m}' has {len(x)} rows but '{label_key}' has {rows}; "
                        f"give every modality one row per label, in the same order")
    if 0 in x.shape[1:]:
        raise UserError(f"{where}: modality '{m}' has shape {tuple(x.shape)}: no features per sample; store its "
                        f"features or leave it out of data.modalities")
    if x.dtype.kind == "f":
        _check_finite(x, where, m, "NaN/inf values", "fill them (e.g. numpy.nan_to_num) or drop those rows")
    x = x.astype(np.float32, copy=False)
    _check_finite(x, where, m, f"values beyond float32's range (|x| > {np.finfo(np.float32).max:.3g})",
                  "rescale that modality (features are read as float32)")
    return x


def _check_finite(x: np.ndarray, where: str, m: str, what: str, fix: str) -> None:
    bad = ~np.isfinite(x)
    if bad.any():
        rows = np.flatnonzero(bad.reshape(len(x), -1).any(1))
        raise UserError(f"{where}: modality '{m}' has {int(bad.sum())} {what} in {len(rows)} rows "
                        f"(first: row {rows[0]}); {fix}")


def parse_modalities(modalities: Any, names: list[str], label_key: str, where: str = "the data") -> dict[str, str]:
    """``data.modalities`` -> {modality: letter}. A mapping gives the letters; a list (or null: every array
    but the labels and ``index``) takes A/V/I/T for audio/video/image/text and the first letter, upper-cased,
    otherwise. The labels' name, ``label`` and ``index`` are reserved: batches carry the labels and each row's
    index under those names, so a modality named so would be overwritten or would overwrite them."""
    reserved = [label_key, *(r for r in RESERVED if r != label_key)]
    if modalities is None:
        modalities = [n for n in names if n not in reserved]
    if isinstance(modalities, str):
        modalities = [modalities]
    if isinstance(modalities, Mapping):
        letters = {str(m): str(c) for m, c in modalities.items()}
    elif isinstance(modalities, Sequence):  # a list, or Hydra's ListConfig
        letters = {str(m): _LETTERS.get(str(m), str(m)[:1].upper()) for m in modalities}
    else:
        raise UserError(f"data.modalities={modalities!r}: give a list of array names (data.modalities=[text,audio]) "
                        f"or names and letters (data.modalities={{text:T,audio:A}})")
    clash = [m for m in letters if m in reserved]
    if clash:
        rest = [m for m in letters if m not in reserved] or [n for n in names if n not in reserved][:2] or ["text"]
        example = f"e.g. data.modalities=[{','.join(rest)}]"
        if clash[0] == label_key:
            raise UserError(f"data.modalities names '{clash[0]}', the labels (data.label_key); list only feature "
                            f"arrays, {example}")
        raise UserError(f"data.modalities names '{clash[0]}', a reserved name (batches carry the labels as 'label' "
                        f"and each sample's number as 'index'); rename that array in the file, or list others, "
                        f"{example}")
    if not letters:
        raise UserError(f"{where} has no modality array besides '{label_key}' (has: {', '.join(names) or 'nothing'}); "
                        f"store at least one feature array, or set data.modalities")
    used = list(letters.values())
    if any(len(c) != 1 or not c.isalpha() for c in used) or len(set(used)) != len(used):
        pairs = ",".join(f"{m}:{c}" for m, c in letters.items())
        example = ",".join(f"{m}:{chr(65 + i % 26)}" for i, m in enumerate(letters))
        raise UserError(f"modality letters {{{pairs}}} must be distinct single letters; "
                        f"name them, e.g. data.modalities={{{example}}}")
    return letters


def _label_index(labels: np.ndarray, where: str) -> np.ndarray:
    if labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)) or not np.all(labels == np.round(labels)):
            raise UserError(f"{where}: labels are non-integer floats; give class labels (integers or strings) "
                            f"— regression is not supported")
        labels = labels.astype(np.int64)
    if labels.dtype.kind not in "iubUS":
        raise UserError(f"{where}: labels have dtype {labels.dtype}; give class labels as integers or strings")
    return labels


class FeatureFilesDataModule(TensorDataModule):
    """Classification (any number of classes) over per-modality feature arrays; see the module docstring.

    ``letters`` (modality -> condition letter) names the conditions' letters; ``train_mean`` gives
    ``eval.missing=mean`` its fill; ``val_dataloader`` is non-empty when there is a val split (``has_val``).
    """

    name = "features"

    def __init__(self, path: str, modalities: Any = None, label_key: str = "label", test_fraction: float = 0.2,
                 val_fraction: float = 0.0, standardize: bool = True, batch_size: int = 64, num_workers: int = 0,
                 seed: int = 1) -> None:
        super().__init__(batch_size, num_workers, seed)
        if path in (None, "", "???"):
            raise UserError("data=features needs data.path=<.npz | .pt | folder of .npy | folder of per-split sets>")
        self.path = Path(os.path.expanduser(str(path)))
        self.label_key, self.standardize = str(label_key), bool(standardize)
        self.test_fraction, self.val_fraction = check_fractions(test_fraction, val_fraction)
        self.scaler = Standardizer()
        self._load(modalities)

    def _load(self, modalities: Any) -> None:
        sets = find_sets(self.path)
        raw = {split: load_set(p) for split, p in sets.items()}
        first = next(iter(sets))
        self.letters = parse_modalities(modalities, list(raw[first]), self.label_key, str(sets[first]))
        self.modalities = list(self.letters)
        checked = {s: check_set(raw[s], str(sets[s]), self.modalities, self.label_key) for s in sets}
        if "all" in checked:
            data = checked.pop("all")
            where = {s: str(sets["all"]) for s in SPLITS}
            labels = _label_index(data[self.label_key], where["train"])
            if self.test_fraction == 0:
                raise UserError(f"data.test_fraction=0 with one set in {self.path}: nothing to test on; "
                                f"set data.test_fraction (e.g. 0.2) or give train and test files")
            split = self._split(labels, self.test_fraction, self.val_fraction, where["train"], "or give train and "
                                "test files")
            checked = {s: {k: v[split == s] for k, v in data.items()} for s in SPLITS if (split == s).any()}
        else:
            where = {s: str(p) for s, p in sets.items()}
            if self.val_fraction > 0 and "val" in checked:
                raise UserError(f"{self.path} has a val set and data.val_fraction={self.val_fraction}; "
                                f"use one: data.val_fraction=0 or remove the val file")
            if self.val_fraction > 0:
                train = checked["train"]
                split = self._split(_label_index(train[self.label_key], where["train"]), 0.0, self.val_fraction,
                                    where["train"], "or give a val file")
                checked["train"], checked["val"] = ({k: v[split == s] for k, v in train.items()}
                                                    for s in ("train", "val"))
                where["val"] = where["train"]
        for s in checked:
            checked[s][self.label_key] = _label_index(checked[s][self.label_key], where[s])
        for m in self.modalities:
            shapes = {s: checked[s][m].shape[1:] for s in checked}
            if len(set(shapes.values())) != 1:
                per_set = ", ".join(f"{s} {list(shape)}" for s, shape in shapes.items())
                raise UserError(f"{self.path}: modality '{m}' has other feature dims per set ({per_set}); "
                                f"give every set the same feature dims")
        self.classes = train_classes({s: arrays[self.label_key] for s, arrays in checked.items()}, where,
                                     "samples")
        self.num_classes = len(self.classes)
        index = {c: i for i, c in enumerate(self.classes)}
        datasets: dict[str, TensorDictDataset] = {}
        for s, arrays in checked.items():
            y = torch.tensor([index[c] for c in arrays[self.label_key].tolist()], dtype=torch.int64)
            tensors = {m: torch.from_numpy(np.ascontiguousarray(arrays[m])) for m in self.modalities}
            datasets[s] = TensorDictDataset({**tensors, "label": y})
        self.train_set, self.val_set, self.test_set = datasets["train"], datasets.get("val"), datasets["test"]
        for m in self.modalities:
            self.scaler.fit(m, self.train_set.tensors[m])
        self.input_shapes = {m: tuple(checked["train"][m].shape[1:]) for m in self.modalities}
        self.sizes = {s: len(d) for s, d in datasets.items()}
        shapes = ", ".join(f"{m} {list(self.input_shapes[m])} ({c})" for m, c in self.letters.items())
        sizes = ", ".join(f"{s} {n}" for s, n in self.sizes.items())
        named = ", ".join(map(str, self.classes[:5])) + (", ..." if self.num_classes > 5 else "")
        print(f"features: {self.path}: {shapes}; {self.num_classes} classes ({named}); {sizes}")

    def _split(self, labels: np.ndarray, test_fraction: float, val_fraction: float, where: str,
               alternative: str) -> np.ndarray:
        """``stratified_split`` with a one-line error when a split asked for stays empty (too few samples)."""
        split = stratified_split(labels, self.seed, test_fraction, val_fraction)
        for name, fraction in (("test", test_fraction), ("val", val_fraction)):
            if fraction > 0 and not (split == name).any():
                raise UserError(f"{where}: {empty_split_message(labels, name, fraction)}, {alternative}")
        return split

    def setup(self, stage: str | None = None) -> None:
        """The arrays are loaded and checked in ``__init__``, so a bad file fails before anything is built."""

    def train_mean(self, modality: str) -> Tensor:
        """Train-split mean of one modality's raw features (``eval.missing=mean``)."""
        return self.scaler.mean(modality)

    def transform(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Standardise with train statistics on the device, after a condition replaced the raw input."""
        return self.scaler.apply(batch) if self.standardize else batch
