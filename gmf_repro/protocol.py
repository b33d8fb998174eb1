"""The protocol record of a run (results.json ``protocol``): each choice the paper states or we infer, our value
beside the paper's, and where the paper's comes from (docs/report.md, "Protocol").

Declarative: ``PROTOCOLS`` maps the paper table a run fills (``report.table``) and its role (``unimodal``: the
audio or video baseline, else ``fuser``) to a ``Protocol``, a list of ``Entry``: what the choice is, where our value
sits, the paper's value in our config's terms and its source (a section or table of the paper, with
docs/paper.md's section, or "inferred: <reason>"). Where our value sits:

- a config path (``data.label_by``, ``task.optimizer.lr``);
- ``run.<key>``: what the run resolved (``run.precision``: ``trainer.precision=auto`` becomes 16-mixed on a GPU);
- ``store.<modality>.<key>``: what a frozen run's feature store recorded (its ``meta.json``: the labels the
  unimodal run learned, its extractor, whether its BatchNorm statistics were recomputed).

An entry whose place the run does not have (``fuser.absent_logits`` of a fuser other than UAVM, the media keys
of the embedded data) is left out. Status per entry: ``same``, ``differs``, or ``open`` (the paper does not say;
ours is recorded). The report lists, per table, the entries that differ (report/protocol.py).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf


class _Open:
    """The paper's value where the paper does not say (``None`` is a value: ``data.fps: null``)."""

    def __repr__(self) -> str:
        return "OPEN"


OPEN: Any = _Open()


@dataclass(frozen=True)
class Entry:
    what: str  # the choice, as a reader reads it
    path: str  # where our value sits (module docstring)
    paper: Any = OPEN  # the paper's value in our config's terms; OPEN where the paper does not say
    source: str = ""  # "paper Table 5; docs/paper.md §4", or "inferred: <reason>"
    # the paper's value depends on another choice of the run: value at ``paper_by`` -> the paper's (missing: OPEN)
    paper_by: str | None = None
    shown: Mapping[Any, str] = field(default_factory=dict)  # value -> words ({None: "the first 3 s"})


@dataclass(frozen=True)
class Protocol:
    follows: str  # what the paper's protocol is, with its source
    dataset: str  # the paper's dataset ("" for none)
    data: tuple[str, ...]  # results.json ``data`` names that are that dataset
    entries: tuple[Entry, ...]


# ------------------------------------------------------------------------------ entries, by topic
_EXT = "gmf_repro.models.extractors."
_T5 = "paper Table 5; docs/paper.md §4"
_T6_VGG = "paper Table 6, App. G.2; docs/paper.md §4"
_T6_FAKE = "paper Table 6, App. G.2; docs/paper.md §4"
_STEP = "inferred: a patience of 1000 (50) only fires counted in iterations (docs/decisions.md, Plateau scheduler)"

COMMON = (
    Entry("precision", "run.precision", "16-mixed", "paper App. G.1: apex at opt level O1; docs/paper.md §4"),
    Entry("an absent modality's input", "eval.missing", "zero",
          "paper §5.3, Table 7's caption: the other modality's input is 0; docs/paper.md §2.6"),
)


def _training(src: str, optimizer: str, lr: float, batch: int, epochs: int, factor: float, patience: int,
              **more: Any) -> tuple[Entry, ...]:
    """Optimiser, scheduler, epochs and batch of one of the paper's training settings (``more``: extra
    ``task.optimizer`` / ``task.scheduler`` keys, e.g. ``optimizer_betas``)."""
    extra = tuple(Entry(f"{k.replace('_', ' ')}", f"task.{k.split('_', 1)[0]}.{k.split('_', 1)[1]}", v, src)
                  for k, v in more.items())
    return (
        Entry("optimiser", "task.optimizer._target_", optimizer, src),
        Entry("learning rate", "task.optimizer.lr", lr, src),
        *extra,
        Entry("plateau factor", "task.scheduler.factor", factor, src),
        Entry("plateau patience", "task.scheduler.patience", patience, src),
        Entry("plateau stepped per", "task.scheduler.interval", "step", _STEP),
        Entry("epochs", "trainer.max_epochs", epochs, src),
        Entry("batch size", "data.batch_size", batch, src),
    )


FUSER_TRAINING = _training(_T5, "torch.optim.SGD", 0.01, 64, 20, 0.1, 1000, optimizer_momentum=0.9,
                           optimizer_weight_decay=1e-4)
VGGSOUND_BASELINE_TRAINING = _training(_T6_VGG, "torch.optim.SGD", 0.01, 64, 20, 0.1, 1000, optimizer_momentum=0.9,
                                       optimizer_weight_decay=1e-4)
FAKEAVCELEB_BASELINE_TRAINING = _training(_T6_FAKE, "torch.optim.Adam", 0.005, 16, 5, 0.5, 50,
                                          optimizer_betas=[0.5, 0.9], scheduler_min_lr=1e-8)

FROZEN = (
    Entry("frozen features standardised", "data.standardize", False,
          "paper §5.1 (1), §5.3: the features as extracted, the absent one 0; docs/paper.md §2.6"),
    Entry("UAVM with one modality", "fuser.absent_logits", "drop",
          "inferred: Table 2's UAVM A/V sit at its unimodal baselines, as scoring one branch alone gives "
          "(UAVM's release does); docs/paper.md §2.6"),
)
BN = (Entry("BatchNorm statistics recomputed after fitting", "callbacks.bn_recalibration.enabled", OPEN,
            "not in the paper; ours: docs/decisions.md, BatchNorm statistics; docs/paper.md §7.4"),)

_G2 = "paper App. G.2; docs/paper.md §2.2"
VGGSOUND_MEDIA = (
    Entry("frames", "data.num_frames", 15, "paper Table 6 [15,128,96,3]; docs/paper.md §2.2"),
    Entry("frame rate", "data.fps", 5, _G2),
    Entry("frame size [h, w]", "data.frame_size", [96, 128],
          "inferred: Table 6's 128 x 96 read as width x height, half of the 192 x 256 landscape frame; "
          "docs/paper.md §2.2"),
    Entry("the 15 frames' time span", "data.frame_span_s", 9,
          "paper App. G.2 keeps the first 9 s and the audio covers them; which 15 of its 45 frames is not said "
          "(docs/paper.md §2.2)",
          shown={None: "the first 3 s (15 consecutive frames at 5 fps) while the audio covers 9 s",
                 9: "the first 9 s, which the audio covers"}),
    Entry("frame values", "data.video_scale", OPEN, "paper App. G.2: frames enter 'without any preprocess'; "
          "the scale is not said (docs/paper.md §2.2)"),
    Entry("audio sample rate", "data.sample_rate", 16000, _G2),
    Entry("audio samples (first 9 s)", "data.audio_samples", 144000, _G2),
    Entry("audio transform", "data.spectrogram.kind", "mel_rows", "paper App. G.2: 9 rows of 1 s, MelSpectrogram "
          "each; docs/paper.md §2.2"),
    Entry("mel bins", "data.spectrogram.n_mels", 192, _G2),
    Entry("STFT size", "data.spectrogram.n_fft", 400, _G2),
    Entry("STFT window", "data.spectrogram.win_length", 400, _G2),
    Entry("STFT hop", "data.spectrogram.hop_length", 160, _G2),
    Entry("log of the mel power", "data.spectrogram.log", False, "paper App. G.2 names no logarithm; "
          "docs/paper.md §2.2"),
)

_G2F = "paper App. G.2, Table 6; docs/paper.md §2.3"
_NON_MAE = ("null", "slstm", "convnext_b")  # feature sets whose audio is the log-STFT (Audio-MAE reads fbank)
FAKEAVCELEB_MEDIA = (
    Entry("frames", "data.num_frames", 8, _G2F),
    Entry("frame rate", "data.fps", None, "paper App. G.2: the first 8 frames, at the clip's own rate; "
          "docs/paper.md §2.3", shown={None: "the clip's own"}),
    Entry("frame size [h, w]", "data.frame_size", [224, 224], _G2F),
    Entry("frame values", "data.video_scale", OPEN, VGGSOUND_MEDIA[4].source),
    Entry("audio sample rate", "data.sample_rate", 48000, "inferred: 60 STFT frames at hop 256 are 15,360 samples, "
          "8 frames at 25 fps at 48 kHz (docs/paper.md §2.3; docs/decisions.md)"),
    Entry("audio samples", "data.audio_samples", 15360, "inferred: the audio of the first 8 frames, "
          "docs/paper.md §2.3"),
    Entry("audio transform", "data.spectrogram.kind", {k: "log_stft" for k in _NON_MAE},
          "paper App. G.2: log|STFT| + 1e-8, blackman window; docs/paper.md §2.3", paper_by="feature_set"),
    Entry("STFT size", "data.spectrogram.n_fft", 1024, _G2F),
    Entry("STFT window", "data.spectrogram.win_length", 1024, _G2F),
    Entry("STFT hop", "data.spectrogram.hop_length", 256, _G2F),
    Entry("spectrogram frames", "data.spectrogram.frames", 60, "paper Table 6 [1,1,513,60]; docs/paper.md §2.3"),
    Entry("split: sort key of each category", "data.sort_key", "path", "inferred: 'sort each class' as a sorted "
          "file list; docs/paper.md §2.4, docs/decisions.md"),
    Entry("split: share of each category to train", "data.train_fraction", 0.7, "paper App. G.2; docs/paper.md §2.4"),
)

_LABELS = "inferred from Table 7's Baseline and §5.3's per-stream ratios; docs/paper.md §2.7"
_BY_SET = ("paper §5.3, Table 7's extractor column: the Baseline and most rows R(2+1)D-18 video, ResNet-18 audio "
           "(Table 6 lists R(2+1)D-18 for audio too); MISA sLSTM, UAVM ConvNeXt-B, GMF-MAE MAE + Audio-MAE; "
           "docs/paper.md §3.1")
_SCRATCH = "paper §5.1, §5.2: no pre-trained parameters on FakeAVCeleb; docs/paper.md §2.5"


_METHOD_EXTRACTORS = {"slstm": "gmf_repro.models.slstm.SLSTM", "convnext_b": "gmf_repro.models.convnext.ConvNeXtB"}


def _fake_baseline(modality: str, fake: str, extractor: str, mae: str) -> tuple[Entry, ...]:
    """Table 6's FakeAVCeleb baseline of one modality: its own stream's labels, its row's extractor (by the feature
    set it writes), from scratch."""
    return (
        Entry("labels learned", "data.label_by", modality, _LABELS,
              shown={modality: f"the {modality}'s (fake: {fake})"}),
        Entry(f"{modality} extractor", f"extractors.{modality}._target_",
              {"null": _EXT + extractor, **_METHOD_EXTRACTORS, "mae": mae}, _BY_SET, paper_by="feature_set"),
        Entry(f"{modality} extractor's initial weights", f"extractors.{modality}.weights", {"null": None}, _SCRATCH,
              paper_by="feature_set", shown={None: "none (from scratch)"}),
    )


FAKEAVCELEB_AUDIO = _fake_baseline("audio", "B, D", "ResNet18Audio", "gmf_repro.models.vit_mae.AudioMAEViT")
FAKEAVCELEB_VIDEO = _fake_baseline("video", "C, D", "R2Plus1D18", "gmf_repro.models.vit_mae.MAEViTVideo")
STORE_BN = tuple(Entry(f"stored {m} features' BatchNorm recomputed", f"store.{m}.bn_recalibrated", OPEN, BN[0].source)
                 for m in ("audio", "video"))
FAKEAVCELEB_FUSER = (
    Entry("labels learned", "data.label_by", "clip", _LABELS, shown={"clip": "the clip's (fake: B, C, D)"}),
    *(Entry(f"labels the stored {m} features learned", f"store.{m}.label_by", m, _LABELS) for m in ("audio", "video")),
    *STORE_BN,
)
_KINETICS = "paper App. G.2: the VGGSound baseline starts from Kinetics-400; docs/paper.md §2.5"
VGGSOUND_AUDIO = (
    Entry("audio extractor", "extractors.audio._target_", _EXT + "ResNet18Audio",
          "paper §5.3 (Table 6 lists R(2+1)D-18 for audio); docs/paper.md §3.1"),
    Entry("audio extractor's initial weights", "extractors.audio.weights",
          {_EXT + "ResNet18Audio": None, _EXT + "R2Plus1D18Audio": "KINETICS400_V1"},
          _KINETICS + " (a video network's weights); §5.2: no other pre-training",
          paper_by="extractors.audio._target_", shown={None: "none (from scratch)"}),
)
VGGSOUND_VIDEO = (
    Entry("video extractor", "extractors.video._target_", _EXT + "R2Plus1D18", "paper §5.3; docs/paper.md §3.1"),
    Entry("video extractor's initial weights", "extractors.video.weights", "KINETICS400_V1", _KINETICS),
)
_TRAINABLE_WEIGHTS = "paper App. G.2 names Kinetics-400 for the VGGSound baseline only; docs/paper.md §2.5"

_VGG, _FAKE = ("vggsound", "vggsound_features"), ("fakeavceleb", "fakeavceleb_features")
_VGG_BASELINE = Protocol("Table 6's VGGSound unimodal baseline (paper App. G.2; docs/paper.md §4)", "VGGSound", _VGG,
                         (*VGGSOUND_MEDIA, *VGGSOUND_BASELINE_TRAINING, *COMMON, *BN))
_VGG_AUDIO = Protocol(_VGG_BASELINE.follows.replace("baseline", "audio baseline"), "VGGSound", _VGG,
                      (*VGGSOUND_AUDIO, *_VGG_BASELINE.entries))
_VGG_VIDEO = Protocol(_VGG_BASELINE.follows.replace("baseline", "video baseline"), "VGGSound", _VGG,
                      (*VGGSOUND_VIDEO, *_VGG_BASELINE.entries))
_FAKE_FUSERS = Protocol("Tables 4 and 7: fusers on the frozen unimodal features (paper Table 5, §5.3; docs/paper.md "
                        "§5.3, §5.4)", "FakeAVCeleb", _FAKE,
                        (*FAKEAVCELEB_FUSER, *FROZEN, *FAKEAVCELEB_MEDIA, *FUSER_TRAINING, *COMMON))
_FAKE_AUDIO = Protocol("Table 6's FakeAVCeleb audio baseline (paper App. G.2; docs/paper.md §4)", "FakeAVCeleb", _FAKE,
                       (*FAKEAVCELEB_AUDIO, *FAKEAVCELEB_MEDIA, *FAKEAVCELEB_BASELINE_TRAINING, *COMMON, *BN))
_FAKE_VIDEO = Protocol("Table 6's FakeAVCeleb video baseline (paper App. G.2; docs/paper.md §4)", "FakeAVCeleb", _FAKE,
                       (*FAKEAVCELEB_VIDEO, *FAKEAVCELEB_MEDIA, *FAKEAVCELEB_BASELINE_TRAINING, *COMMON, *BN))
_FUSER_ONLY = Protocol("the paper's fuser training (paper Table 5, §5.1; docs/paper.md §4)", "", (),
                       (*FUSER_TRAINING, *COMMON, FROZEN[1]))

#: (report.table, role) -> the paper's protocol; role: the unimodal baseline's modality (``unimodal``), else fuser
PROTOCOLS: dict[tuple[str | None, str], Protocol] = {
    ("table2_frozen", "fuser"): Protocol(
        "Table 2, frozen: fusers on the unimodal baselines' features (paper Table 5, §5.1 (1); docs/paper.md §5.1)",
        "VGGSound", _VGG, (*FROZEN, *STORE_BN, *VGGSOUND_MEDIA, *FUSER_TRAINING, *COMMON)),
    ("table2_frozen", "audio"): _VGG_AUDIO,
    ("table2_frozen", "video"): _VGG_VIDEO,
    ("table2_trainable", "audio"): _VGG_AUDIO,
    ("table2_trainable", "video"): _VGG_VIDEO,
    ("table2_trainable", "fuser"): Protocol(
        "Table 2, trainable: extractors and fuser trained together (paper Table 5, §5.1 (2); docs/paper.md §5.1)",
        "VGGSound", _VGG,
        (VGGSOUND_AUDIO[0], VGGSOUND_VIDEO[0],
         Entry("audio extractor's initial weights", "extractors.audio.weights", OPEN, _TRAINABLE_WEIGHTS),
         Entry("video extractor's initial weights", "extractors.video.weights", OPEN, _TRAINABLE_WEIGHTS),
         *VGGSOUND_MEDIA, *FUSER_TRAINING, *COMMON, FROZEN[1], *BN)),
    ("table3", "fuser"): Protocol(
        "Table 3: retrieval on AP-IVR's ActivityNet features (paper Table 5, §5.3; docs/paper.md §5.2)",
        "ActivityNet", ("activitynet",),
        (Entry("proposal features per video", "data.proposals", 64, "AP-IVR's release; docs/paper.md §7.2"),
         *FUSER_TRAINING, *COMMON)),
    ("table4", "fuser"): _FAKE_FUSERS,
    ("table7", "fuser"): _FAKE_FUSERS,
    ("table7", "audio"): _FAKE_AUDIO,
    ("table7", "video"): _FAKE_VIDEO,
    ("table4", "audio"): _FAKE_AUDIO,
    ("table4", "video"): _FAKE_VIDEO,
    (None, "fuser"): _FUSER_ONLY,
}


# ------------------------------------------------------------------------------ the record
_ABSENT = object()


def protocol_of(cfg: DictConfig) -> Protocol:
    """The paper's protocol for this run: by ``report.table`` and role (the unimodal baseline's modality, else
    fuser); a table without an entry for the role takes the fusers', a run outside the tables Table 5's."""
    table = (cfg.get("report") or {}).get("table")
    role = str(cfg.get("unimodal") or "fuser")
    return PROTOCOLS.get((table, role)) or PROTOCOLS.get((table, "fuser")) or PROTOCOLS[(None, "fuser")]


def protocol_record(cfg: DictConfig, trainer: Any = None, datamodule: Any = None) -> dict[str, Any]:
    """results.json's ``protocol``: what the run follows, whether it is on the paper's dataset, and per entry
    (keyed by where our value sits) ``what``, ``ours``, ``paper``, ``status`` (same, differs, open) and ``source``;
    ``ours_text`` / ``paper_text`` where a value has words. ``trainer``: gives ``run.precision``; ``datamodule``:
    a frozen run's ``store_meta`` gives ``store.<modality>.<key>``."""
    protocol = protocol_of(cfg)
    facts = {"run": {} if trainer is None else {"precision": str(trainer.precision)},
             "store": dict(getattr(datamodule, "store_meta", None) or {})}
    entries: dict[str, dict[str, Any]] = {}
    for entry in protocol.entries:
        ours = _value(cfg, facts, entry.path)
        if ours is _ABSENT:
            continue
        paper = entry.paper
        if entry.paper_by is not None:
            by = _value(cfg, facts, entry.paper_by)
            paper = paper.get("null" if by is None or by is _ABSENT else str(by), OPEN)
        status = "open" if paper is OPEN else ("same" if _same(ours, paper) else "differs")
        record: dict[str, Any] = {"what": entry.what, "ours": ours, "paper": None if paper is OPEN else paper,
                                  "status": status, "source": entry.source}
        for side, value in (("ours", ours), ("paper", paper)):
            if paper is not OPEN or side == "ours":
                text = _shown(entry.shown, value)
                if text is not None:
                    record[f"{side}_text"] = text
        entries[entry.path] = record
    data = str((cfg.get("labels") or {}).get("data", ""))
    return {"follows": protocol.follows, "dataset": protocol.dataset or None, "data": data,
            "on_paper_data": data in protocol.data, "entries": entries}


def _value(cfg: DictConfig, facts: Mapping[str, Any], path: str) -> Any:
    head, _, rest = path.partition(".")
    if head in facts:
        node: Any = facts[head]
        for part in rest.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return _ABSENT
            node = node[part]
        return node
    value = OmegaConf.select(cfg, path, default=_ABSENT, throw_on_missing=False)
    return OmegaConf.to_container(value, resolve=True) if isinstance(value, DictConfig | ListConfig) else value


def _same(ours: Any, paper: Any) -> bool:
    if isinstance(ours, list | tuple) and isinstance(paper, list | tuple):
        return len(ours) == len(paper) and all(_same(a, b) for a, b in zip(ours, paper))
    numbers = (int, float)
    if isinstance(ours, numbers) and isinstance(paper, numbers) and not isinstance(ours, bool) \
            and not isinstance(paper, bool):
        return math.isclose(float(ours), float(paper), rel_tol=1e-9, abs_tol=0.0)
    return type(ours) is type(paper) and ours == paper


def _shown(shown: Mapping[Any, str], value: Any) -> str | None:
    try:
        return shown.get(value)
    except TypeError:  # an unhashable value (a list) has no words
        return None
