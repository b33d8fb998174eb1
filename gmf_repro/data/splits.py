"""Train / val / test splits made from a seed, stratified by class, for data that comes without them."""
from __future__ import annotations

import numpy as np


def stratified_split(labels: np.ndarray, seed: int, test_fraction: float, val_fraction: float = 0.0) -> np.ndarray:
    """Split name (``train``, ``val``, ``test``) per row.

    Within each class the rows are shuffled with ``seed``; ``round(test_fraction * n)`` go to test and
    ``round(val_fraction * n)`` to val, but at least one row of every class stays in train, so no
    test or val label is unseen in train. The same (labels, seed, fractions) give the same split.
    """
    if not (0 <= test_fraction < 1 and 0 <= val_fraction < 1 and test_fraction + val_fraction < 1):
        raise ValueError(f"test_fraction={test_fraction}, val_fraction={val_fraction}: each in [0, 1), sum < 1")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    out = np.full(len(labels), "train", dtype=object)
    for cls in np.unique(labels):
        rows = np.flatnonzero(labels == cls)
        rows = rows[rng.permutation(len(rows))]
        n = len(rows)
        n_test = min(int(round(test_fraction * n)), n - 1)
        n_val = min(int(round(val_fraction * n)), n - 1 - n_test)
        out[rows[:n_test]] = "test"
        out[rows[n_test:n_test + n_val]] = "val"
    return out.astype(str)
