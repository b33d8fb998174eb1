"""Train / val / test splits made from a seed, stratified by class, for data that comes without them."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..errors import UserError


def check_fractions(test_fraction: float, val_fraction: float) -> tuple[float, float]:
    """``data.test_fraction`` and ``data.val_fraction`` as floats, each in [0, 1) and leaving rows for train;
    else a one-line error naming the settings."""
    fractions = {}
    for key, value in (("test_fraction", test_fraction), ("val_fraction", val_fraction)):
        try:
            fractions[key] = float(value)
        except (TypeError, ValueError):
            raise UserError(f"data.{key}={value!r} is not a number; e.g. data.{key}=0.2") from None
        if not 0 <= fractions[key] < 1:
            raise UserError(f"data.{key}={value} is outside [0, 1); e.g. data.{key}=0.2")
    test, val = fractions["test_fraction"], fractions["val_fraction"]
    if test + val >= 1:
        raise UserError(f"data.test_fraction={test} + data.val_fraction={val} = {test + val:g} leaves no sample for "
                        f"train; make the sum below 1, e.g. data.test_fraction=0.2 data.val_fraction=0.1")
    return test, val


def stratified_split(labels: np.ndarray, seed: int, test_fraction: float, val_fraction: float = 0.0) -> np.ndarray:
    """Split name (``train``, ``val``, ``test``) per row.

    Within each class the rows are shuffled with ``seed``; ``round(test_fraction * n)`` go to test and
    ``round(val_fraction * n)`` to val, but at least one row of every class stays in train, so no
    test or val label is unseen in train. A split asked for (fraction > 0) that this leaves empty, as in a
    small set, takes one row of the class with the most rows left in train, if that class has two or
    more; else it stays empty and the caller says so. The same (labels, seed, fractions) give the same split.
    """
    if not (0 <= test_fraction < 1 and 0 <= val_fraction < 1 and test_fraction + val_fraction < 1):
        raise ValueError(f"test_fraction={test_fraction}, val_fraction={val_fraction}: each in [0, 1), sum < 1")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    out = np.full(len(labels), "train", dtype=object)
    left: list[np.ndarray] = []  # per class: its shuffled rows still in train
    for cls in np.unique(labels):
        rows = np.flatnonzero(labels == cls)
        rows = rows[rng.permutation(len(rows))]
        n = len(rows)
        n_test = min(int(round(test_fraction * n)), n - 1)
        n_val = min(int(round(val_fraction * n)), n - 1 - n_test)
        out[rows[:n_test]] = "test"
        out[rows[n_test:n_test + n_val]] = "val"
        left.append(rows[n_test + n_val:])
    for name, fraction in (("test", test_fraction), ("val", val_fraction)):
        if fraction > 0 and left and not (out == name).any():
            k = max(range(len(left)), key=lambda i: len(left[i]))  # the first such class on ties
            if len(left[k]) >= 2:
                out[left[k][0]] = name
                left[k] = left[k][1:]
    return out.astype(str)


def empty_split_message(labels: np.ndarray, split: str, fraction: float) -> str:
    """Why ``stratified_split`` left ``split`` empty and what gives it a sample, for the caller's one-line error."""
    _, counts = np.unique(np.asarray(labels), return_counts=True)
    most = int(counts.max()) if len(counts) else 0
    return (f"{len(labels)} samples in {len(counts)} classes (at most {most} per class): data.{split}_fraction="
            f"{fraction} puts no sample in {split}, since every class keeps one in train; give more samples per "
            f"class (a class of one can only train)")


def train_classes(labels: Mapping[str, np.ndarray], where: Mapping[str, str], samples: str) -> list:
    """The classes a classifier learns: those of the train split, sorted. A label found only outside train (a class
    the model never sees) or fewer than two classes is a one-line error naming the file (``where[split]``);
    ``samples`` is what the data calls a sample (clips, samples)."""
    classes = np.unique(labels.get("train", np.array([]))).tolist()
    for split, y in labels.items():
        unseen = sorted(set(np.unique(y).tolist()) - set(classes))
        if unseen:
            raise UserError(f"{where[split]}: {split} labels {unseen[:5]} never occur in train; give every class "
                            f"train {samples} or drop those rows")
    if len(classes) < 2:
        raise UserError(f"{where['train']}: the train {samples} have {len(classes)} label; classification needs "
                        f"at least 2")
    return classes
