"""The paper's numbers (docs/paper.md §5, Tables 2, 3, 4, 7), keyed by our fuser names.

One module so the report, the complexity CLI and the tests all read the same figures. Values are
copied as printed: accuracy, ACC and AUC in %, mAP as a fraction, CPU latency in seconds (paper:
Ryzen 9 5900X). A "-" in the paper is ``None``. Parameter counts and FLOPs are integers expanded
from the printed "M"/"G" (so "5.25M" -> 5_250_000: the paper rounds, our exact count may differ).

FLOPs: the paper does not say whether its "G" means GFLOPs or GMACs (torchvision's docs call
GMACs "GFLOPS"; ``torch.utils.flop_counter`` counts FLOPs = 2 x MACs), so a factor-2 mismatch
against our measurement is within the paper's ambiguity.
"""
from __future__ import annotations

Number = float | None

# ---------------------------------------------------------------- Table 2 (VGGSound, accuracy %)
TABLE2_FROZEN_COLUMNS: tuple[str, ...] = ("A", "V", "AV")
TABLE2_TRAINABLE_COLUMNS: tuple[str, ...] = ("A(uni)", "A", "V(uni)", "V", "AV")

# "Frozen Extractor" block: A, V, AV.
TABLE2_FROZEN: dict[str, dict[str, Number]] = {
    "concat": {"A": 23.31, "V": 25.14, "AV": 28.56},
    "avoid_df": {"A": 16.56, "V": 18.33, "AV": 31.61},
    "misa": {"A": 20.88, "V": 21.67, "AV": 32.85},
    "uavm": {"A": 23.28, "V": 24.98, "AV": 26.15},
    "drfuse": {"A": 20.45, "V": 21.92, "AV": 32.79},
    "mbt": {"A": 18.87, "V": 20.01, "AV": 31.88},
    "perceiver": {"A": 17.98, "V": 18.31, "AV": 33.41},
    "gmf": {"A": 22.01, "V": 24.32, "AV": 31.64},
    "g_mbt": {"A": 21.67, "V": 22.98, "AV": 34.28},
    "g_perceiver": {"A": 20.13, "V": 21.66, "AV": 34.73},
}

# "Training Extractor" block: A(uni)/V(uni) are linear probes on the jointly trained extractor.
TABLE2_TRAINABLE: dict[str, dict[str, Number]] = {
    "concat": {"A(uni)": 23.31, "A": None, "V(uni)": 25.14, "V": None, "AV": 28.56},
    "avoid_df": {"A(uni)": 15.32, "A": 10.81, "V(uni)": 17.71, "V": 13.44, "AV": 30.05},
    "misa": {"A(uni)": 20.43, "A": 18.65, "V(uni)": 22.65, "V": 20.03, "AV": 33.77},
    "uavm": {"A(uni)": 21.86, "A": None, "V(uni)": 23.37, "V": None, "AV": 30.81},
    "drfuse": {"A(uni)": 20.31, "A": 18.77, "V(uni)": 22.39, "V": 20.31, "AV": 33.23},
    "mbt": {"A(uni)": 18.72, "A": 16.35, "V(uni)": 19.98, "V": 17.44, "AV": 33.95},
    "perceiver": {"A(uni)": 21.45, "A": 15.31, "V(uni)": 23.83, "V": 16.05, "AV": 35.21},
    "gmf": {"A(uni)": 21.83, "A": 21.55, "V(uni)": 23.93, "V": 23.67, "AV": 32.01},
    "g_mbt": {"A(uni)": 19.81, "A": 18.33, "V(uni)": 20.68, "V": 19.25, "AV": 34.97},
    "g_perceiver": {"A(uni)": 21.53, "A": 17.92, "V(uni)": 23.81, "V": 18.17, "AV": 35.85},
}

# Table 2's CPU s / Params / FLOPs columns (fusion module, 512/512 inputs). The baseline row is "-".
# flops: the paper's "G" may be GFLOPs or GMACs (not stated) -- see the module docstring.
PAPER_COMPLEXITY: dict[str, dict[str, int | float | None]] = {
    "concat": {"params": None, "flops": None, "cpu_s": None},
    "avoid_df": {"params": 57_450_000, "flops": 110_000_000, "cpu_s": 0.028},
    "misa": {"params": 50_880_000, "flops": 400_000_000, "cpu_s": 0.015},
    "uavm": {"params": 25_700_000, "flops": 50_000_000, "cpu_s": 0.006},
    "drfuse": {"params": 37_330_000, "flops": 310_000_000, "cpu_s": 0.011},
    "mbt": {"params": 37_830_000, "flops": 150_000_000, "cpu_s": 0.013},
    "perceiver": {"params": 45_050_000, "flops": 45_590_000_000, "cpu_s": 0.301},
    "gmf": {"params": 5_250_000, "flops": 10_000_000, "cpu_s": 0.001},
    "g_mbt": {"params": 43_080_000, "flops": 160_000_000, "cpu_s": 0.013},
    "g_perceiver": {"params": 50_310_000, "flops": 45_610_000_000, "cpu_s": 0.301},
}

# ------------------------------------------------- Table 3 (ActivityNet image-to-video retrieval)
# Keyed by setting (image-video feature dims) then fuser; mAP as printed (fractions).
TABLE3_COLUMNS: tuple[str, ...] = ("mAP@10", "mAP@20", "mAP@50", "mAP@100")
TABLE3_SETTINGS: tuple[str, ...] = ("4096", "128", "128-4096")

TABLE3: dict[str, dict[str, dict[str, Number]]] = {
    "4096": {
        "clip": {"mAP@10": 0.235, "mAP@20": 0.221, "mAP@50": 0.213, "mAP@100": 0.205},
        "meter": {"mAP@10": 0.252, "mAP@20": 0.245, "mAP@50": 0.235, "mAP@100": 0.228},
    },
    "128": {
        "perceiver": {"mAP@10": 0.264, "mAP@20": 0.253, "mAP@50": 0.241, "mAP@100": 0.232},
        "map_ivr": {"mAP@10": 0.341, "mAP@20": 0.323, "mAP@50": 0.306, "mAP@100": 0.294},
        "gmf": {"mAP@10": 0.349, "mAP@20": 0.335, "mAP@50": 0.323, "mAP@100": 0.308},
    },
    "128-4096": {
        "apivr": {"mAP@10": 0.264, "mAP@20": 0.255, "mAP@50": 0.249, "mAP@100": 0.232},
        "map_ivr": {"mAP@10": 0.349, "mAP@20": 0.337, "mAP@50": 0.322, "mAP@100": 0.311},
        "gmf": {"mAP@10": 0.355, "mAP@20": 0.341, "mAP@50": 0.327, "mAP@100": 0.315},
    },
}

# Table 3's Params / FLOPs (same "G" ambiguity). CLIP has no parameters ("-" in the paper).
TABLE3_COMPLEXITY: dict[str, dict[str, dict[str, int | None]]] = {
    "4096": {
        "clip": {"params": None, "flops": None},
        "meter": {"params": 62_960_000, "flops": 130_000_000},
    },
    "128": {
        "perceiver": {"params": 44_540_000, "flops": 45_560_000_000},
        "map_ivr": {"params": 3_810_000, "flops": 10_000_000},
        "gmf": {"params": 320_000, "flops": 0},  # printed "0.00G"
    },
    "128-4096": {
        "apivr": {"params": 2_190_000, "flops": 0},  # printed "0.00G"
        "map_ivr": {"params": 11_940_000, "flops": 20_000_000},
        "gmf": {"params": 119_210_000, "flops": 230_000_000},
    },
}

# ------------------------------------------------------------- Table 4 (FakeAVCeleb, AV input, %)
# "gmf_mae" is GMF on MAE (video) + Audio-MAE (audio) extractors, not a separate fuser.
TABLE4_COLUMNS: tuple[str, ...] = ("ACC", "AUC")
TABLE4: dict[str, dict[str, Number]] = {
    "concat": {"ACC": 97.68, "AUC": 69.33},
    "misa": {"ACC": 97.68, "AUC": 79.22},
    "uavm": {"ACC": 78.64, "AUC": 43.92},
    "drfuse": {"ACC": 97.68, "AUC": 78.56},
    "perceiver": {"ACC": 97.68, "AUC": 93.45},
    "gmf": {"ACC": 97.68, "AUC": 91.88},
    "g_perceiver": {"ACC": 98.21, "AUC": 96.71},
    "gmf_mae": {"ACC": 99.99, "AUC": 99.97},
}

# ------------------------------------------ Table 7 (FakeAVCeleb, missing modalities, ACC/AUC %)
# The paper's "GMF-Perceiver" row is our g_perceiver (its AV numbers equal Table 4's G-Perceiver).
TABLE7_COLUMNS: tuple[str, ...] = ("ACC A", "ACC V", "ACC AV", "AUC A", "AUC V", "AUC AV")
TABLE7_EXTRACTORS: dict[str, str] = {
    "concat": "R(2+1)D-18",
    "misa": "sLSTM",
    "uavm": "ConvNeXT-B",
    "drfuse": "R(2+1)D-18",
    "perceiver": "R(2+1)D-18",
    "gmf": "R(2+1)D-18",
    "g_perceiver": "R(2+1)D-18",
    "gmf_mae": "MAE + Audio-MAE",
}
TABLE7: dict[str, dict[str, Number]] = {
    "concat": {"ACC A": 98.76, "ACC V": 95.36, "ACC AV": 97.68, "AUC A": 99.73, "AUC V": 54.38, "AUC AV": 69.33},
    "misa": {"ACC A": 61.75, "ACC V": 71.66, "ACC AV": 97.68, "AUC A": 58.98, "AUC V": 64.76, "AUC AV": 79.22},
    "uavm": {"ACC A": 86.59, "ACC V": 73.05, "ACC AV": 78.64, "AUC A": 83.98, "AUC V": 69.38, "AUC AV": 43.92},
    "drfuse": {"ACC A": 66.83, "ACC V": 75.35, "ACC AV": 97.68, "AUC A": 62.86, "AUC V": 69.33, "AUC AV": 78.56},
    "perceiver": {"ACC A": 56.81, "ACC V": 78.84, "ACC AV": 97.68, "AUC A": 51.36, "AUC V": 58.20, "AUC AV": 93.45},
    "gmf": {"ACC A": 71.25, "ACC V": 85.33, "ACC AV": 97.68, "AUC A": 67.32, "AUC V": 64.91, "AUC AV": 91.88},
    "g_perceiver": {"ACC A": 64.01, "ACC V": 82.15, "ACC AV": 98.21, "AUC A": 66.53, "AUC V": 62.42, "AUC AV": 96.71},
    "gmf_mae": {"ACC A": 99.79, "ACC V": 97.74, "ACC AV": 99.99, "AUC A": 99.73, "AUC V": 89.82, "AUC AV": 99.97},
}

# Row labels as the paper prints them (used by the report and by the test that checks them against docs/paper.md).
LABELS: dict[str, str] = {
    "concat": "Baseline (concat)",
    "avoid_df": "AVoiD-DF",
    "misa": "MISA",
    "uavm": "UAVM",
    "drfuse": "DrFuse",
    "mbt": "MBT",
    "perceiver": "Perceiver",
    "gmf": "GMF",
    "g_mbt": "G-MBT",
    "g_perceiver": "G-Perceiver",
    "gmf_mae": "GMF-MAE",
    "clip": "CLIP",
    "meter": "METER",
    "map_ivr": "MAP-IVR",
    "apivr": "APIVR",
}


def paper_complexity(name: str, dims: list[int]) -> dict[str, int | float | None]:
    """The paper's params/FLOPs/CPU s for fuser ``name`` at input ``dims``, or {} where it prints none.

    Table 2 covers 512/512 inputs; Table 3 covers 128/128, 128/4096 and 4096/4096 (no CPU s there).
    """
    shape = sorted(int(d) for d in dims)
    if shape == [512, 512]:
        figures = PAPER_COMPLEXITY.get(name, {})
    else:
        setting = {(128, 128): "128", (128, 4096): "128-4096", (4096, 4096): "4096"}.get(tuple(shape))
        figures = {**TABLE3_COMPLEXITY.get(setting, {}).get(name, {}), "cpu_s": None} if setting else {}
    return dict(figures) if any(v is not None for v in figures.values()) else {}
