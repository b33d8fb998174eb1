"""Read released feature pickles without running code from them, and convert them to .npz once.

A pickle names the functions that rebuild its objects, and loading it calls them: a file from the web
can run anything. ``load_pickle`` admits only what a file of numpy arrays needs (numpy's array, dtype and
scalar rebuilders; lists, dicts, tuples, numbers, strings) and refuses any other name before it is
called, in one line naming the file and the name. ``convert_pickles`` writes each pickle's array as a
``.npz`` (read with ``allow_pickle=False``), which ``load_array`` then prefers: after one conversion no
run unpickles anything (docs/data.md, "ActivityNet").
"""
from __future__ import annotations

import pickle
import zipfile
from _compat_pickle import IMPORT_MAPPING, NAME_MAPPING
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write
from ..errors import UserError

# (module, name) a pickle of numpy arrays may ask for; numpy 1.x writes numpy.core.*, numpy 2.x numpy._core.*
ALLOWED = frozenset({
    *((core, name) for core in ("numpy.core.multiarray", "numpy._core.multiarray")
      for name in ("_reconstruct", "scalar")),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),  # protocol 5 arrays
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("_codecs", "encode"),  # bytes in a protocol-2 pickle written by Python 3 (torch admits it too)
    ("builtins", "complex"), ("builtins", "bytearray"), ("collections", "OrderedDict"),
})
# numpy 2's own names for the 1.x modules (importing numpy.core warns there)
_NUMPY2 = {"numpy.core.multiarray": "numpy._core.multiarray", "numpy.core.numeric": "numpy._core.numeric"}


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle asked for a function or class outside ``ALLOWED``."""


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        # Python 2 names (__builtin__, copy_reg) as pickle itself maps them; no Python 3 module has those names
        module, name = NAME_MAPPING.get((module, name), (IMPORT_MAPPING.get(module, module), name))
        if (module, name) not in ALLOWED:
            raise RefusedGlobal(f"{module}.{name}")
        if hasattr(np, "_core"):
            module = _NUMPY2.get(module, module)
        return super().find_class(module, name)


def load_pickle(path: str | Path, encoding: str = "latin1") -> Any:
    """The object in ``path``, rebuilt from numpy arrays, lists, dicts, tuples, numbers and strings only.

    ``encoding="latin1"`` reads Python 2 pickles of numpy arrays, as their releases are read.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return _RestrictedUnpickler(f, encoding=encoding).load()
    except RefusedGlobal as err:
        raise UserError(
            f"refused to load {path}: it asks for {err}, which a file of feature arrays never needs and which "
            f"could run code; nothing from it was run. Get the file again from its source (only numpy arrays, "
            f"lists, dicts, numbers and strings are read)"
        ) from None
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror or err}") from None
    except Exception as err:  # noqa: BLE001 - a truncated or foreign file: what and where, in one line
        raise UserError(f"{path} is not a readable pickle ({type(err).__name__}: {_first_line(err)}); get the "
                        f"file again from its source") from None


def load_array(path: str | Path) -> Any:
    """``path``'s content: its ``.npz`` twin (``convert_pickles``) when there is one, else the pickle itself."""
    path = Path(path)
    twin = npz_twin(path)
    if twin.is_file():
        try:
            with np.load(twin, allow_pickle=False) as z:
                return z["x"]
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as err:
            raise UserError(f"{twin} is not a readable conversion of {path.name} ({type(err).__name__}: "
                            f"{_first_line(err)}); delete it and convert again (scripts/convert_activitynet.py)"
                            ) from None
    return load_pickle(path)


def npz_twin(path: Path) -> Path:
    """Where ``convert_pickles`` puts ``path``'s array: ``train_v.pkl`` -> ``train_v.npz`` beside it."""
    return path.with_suffix(".npz")


def convert_pickles(paths: Iterable[str | Path], overwrite: bool = False) -> list[Path]:
    """Write each pickle's content as ``<name>.npz`` (one array ``x``) beside it; the paths written.

    Each pickle is read with ``load_pickle`` (so nothing in it runs) and must hold one array (or a list of
    numbers); each ``.npz`` appears whole or not at all, so an interrupted conversion leaves no half file
    that a run would read. An existing ``.npz`` is kept unless ``overwrite``.
    """
    written = []
    for path in map(Path, paths):
        twin = npz_twin(path)
        if twin.exists() and not overwrite:
            continue
        array = np.asarray(load_pickle(path))
        if array.dtype.hasobject:
            raise UserError(f"{path} holds Python objects, not one numeric array (dtype {array.dtype}); it cannot "
                            f"be stored as .npz without pickling")
        with atomic_write(twin) as f:
            np.savez(f, x=array)
        written.append(twin)
    return written


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:200] if text else ""


def convert_activitynet(root: str | Path, splits: Iterable[str] = ("train", "test"),
                        overwrite: bool = False) -> list[Path]:
    """``convert_pickles`` over ActivityNet's release (``{split}_{v,i,label}.pkl`` in ``root``, data/activitynet.py)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise UserError(f"{root} is not a folder; give the folder with ActivityNet's {{split}}_v.pkl files")
    paths = [root / f"{split}_{kind}.pkl" for split in splits for kind in ("v", "i", "label")]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise UserError(f"{root} lacks {', '.join(missing)}; give the folder with ActivityNet's feature pickles "
                        f"(and --splits when its splits have other names)")
    return convert_pickles(paths, overwrite=overwrite)
