"""Tiny real mp4 files (H.264 + AAC, written with PyAV) in VGGSound's and FakeAVCeleb's layouts.

They exercise the real decode path: some clips carry 44.1 kHz stereo audio (as VGGSound's
originals do), some 16 kHz mono; the lists also name one missing file, one truncated file and one
clip without an audio stream, so the drop counts of the manifest can be checked.

The content is learnable and needs both modalities. VGGSound: class ``k`` of ``n_audio * n_video``
classes plays tone ``k // n_video`` and shows colour ``k % n_video``; so audio alone can at best tell
the tone, video alone the colour, and audio + video the class. FakeAVCeleb: talking heads whose fake
audio and fake video each carry an artefact of their own stream (``make_fakeavceleb``).

Not in ``data/``: nothing a run builds reads this module; it writes datasets for the tests and for
``scripts/make_fixtures.py`` (a smoke run on a larger fixture), so it stays importable from the
installed package but outside the datamodules' folder.
"""
from __future__ import annotations

import csv
import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

TONES_HZ = (220.0, 440.0, 880.0, 1760.0, 330.0, 660.0)
COLOURS = ((220, 40, 40), (40, 200, 40), (40, 60, 220), (220, 220, 40), (200, 40, 200), (40, 200, 200))


def write_clip(path: Path, *, seconds: float, tone_hz: float | None, colour: tuple[int, int, int],
               fps: int = 10, size: tuple[int, int] = (48, 64), sample_rate: int = 44100,
               stereo: bool = True, seed: int = 0, harmonics: int = 1, hiss_hz: tuple[float, float] | None = None,
               face: tuple[int, int, int] | None = None, blocky: bool = False) -> None:
    """Write one H.264 (+ AAC unless ``tone_hz`` is None) mp4 of ``seconds`` length.

    ``colour`` fills the frame and ``tone_hz`` (with ``harmonics`` overtones at 1/k amplitude) is the sound. A
    talking-head stand-in adds ``face``, a box of that colour in the frame's centre; the FakeAVCeleb fixture's
    artefacts are ``blocky`` (the face box in 4-pixel blocks of alternating brightness, as a badly blended swap)
    and ``hiss_hz`` (a vocoder-like hiss: noise in that band of frequencies, Hz)."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = size
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.options = {"preset": "ultrafast", "tune": "zerolatency"}
        as_ = None
        if tone_hz is not None:
            as_ = out.add_stream("aac", rate=sample_rate, layout="stereo" if stereo else "mono")
        n_frames = int(round(seconds * fps))
        base = np.empty((h, w, 3), np.uint8)
        base[:] = colour
        if face is not None:
            top, left = h // 4, w // 4
            box = base[top:h - top, left:w - left]
            box[:] = face
            if blocky:
                yy, xx = np.indices(box.shape[:2])
                shade = np.where((yy // 4 + xx // 4) % 2 == 0, 45, -45)[..., None]
                box[:] = np.clip(box.astype(np.int16) + shade, 0, 255).astype(np.uint8)
        for i in range(n_frames):
            img = base.copy()
            # a moving bright square so frames differ; its position carries no class information
            y, x = (i * 3) % max(1, h - 8), (i * 5 + int(rng.integers(0, w))) % max(1, w - 8)
            img[y:y + 8, x:x + 8] = 255
            img = np.clip(img.astype(np.int16) + rng.integers(-20, 21, img.shape), 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            for pkt in vs.encode(frame):
                out.mux(pkt)
        for pkt in vs.encode(None):
            out.mux(pkt)
        if as_ is not None:
            n = int(round(seconds * sample_rate))
            t = np.arange(n) / sample_rate
            voice = sum(np.sin(2 * math.pi * k * tone_hz * t) / k for k in range(1, harmonics + 1))
            wave = 0.3 * voice / sum(1 / k for k in range(1, harmonics + 1)) + 0.05 * rng.standard_normal(n)
            if hiss_hz is not None:  # white noise kept between the band's edges (an FFT mask)
                spectrum = np.fft.rfft(rng.standard_normal(n))
                freqs = np.fft.rfftfreq(n, 1 / sample_rate)
                spectrum[(freqs < hiss_hz[0]) | (freqs > hiss_hz[1])] = 0
                band = np.fft.irfft(spectrum, n)
                wave = wave + 0.1 * band / band.std()
            chans = 2 if stereo else 1
            data = np.tile(wave.astype(np.float32), (chans, 1))
            if stereo:
                data[1] *= 0.5  # unequal channels, so the stereo -> mono rule matters
            step = 1024
            for start in range(0, n, step):
                chunk = np.ascontiguousarray(data[:, start:start + step])
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo" if stereo else "mono")
                frame.sample_rate = sample_rate
                frame.pts = start
                for pkt in as_.encode(frame):
                    out.mux(pkt)
            for pkt in as_.encode(None):
                out.mux(pkt)


def _class_content(k: int, n_video: int) -> tuple[float, tuple[int, int, int]]:
    return TONES_HZ[k // n_video], COLOURS[k % n_video]


def _damage(path: Path, kind: str) -> None:
    if kind == "missing":
        path.unlink(missing_ok=True)
    elif kind == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) * 2 // 5])


def make_vggsound(root: str | Path, n_clips: int = 12, *, n_audio: int = 2, n_video: int = 2,
                  seconds: float = 2.0, size: tuple[int, int] = (48, 64), fps: int = 10,
                  test_fraction: float = 0.25, template: str = "{ytid}_{start:06d}.mp4",
                  clips_dir: str = "video", damaged: bool = True, seed: int = 0) -> Path:
    """Write a VGGSound-layout folder: ``vggsound.csv`` (no header) + ``video/<template>``.

    With ``damaged`` the last three listed clips are: one missing file, one truncated file and
    one clip without an audio stream.
    """
    root = Path(root)
    (root / clips_dir).mkdir(parents=True, exist_ok=True)
    n_cls = n_audio * n_video
    rows = []
    for i in range(n_clips):
        k = i % n_cls
        ytid = f"fx{seed:02d}-{i:06d}"[:11].ljust(11, "_")
        start = (i * 7) % 300
        split = "test" if (i // n_cls) % round(1 / test_fraction) == 0 else "train"
        label = f"tone{k // n_video} colour{k % n_video}"
        rows.append((ytid, start, label, split))
        tone, colour = _class_content(k, n_video)
        name = template.format(ytid=ytid, start=start, end=start + 10, split=split, label=label)
        stereo = (i // n_cls) % 2 == 0  # independent of the class: the format must not leak the label
        no_audio = damaged and i == n_clips - 1
        write_clip(root / clips_dir / name, seconds=seconds, tone_hz=None if no_audio else tone, colour=colour,
                   fps=fps, size=size, sample_rate=44100 if stereo else 16000, stereo=stereo, seed=seed * 100003 + i)
        if damaged and i == n_clips - 3:
            _damage(root / clips_dir / name, "missing")
        if damaged and i == n_clips - 2:
            _damage(root / clips_dir / name, "truncated")
    with open(root / "vggsound.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return root


FAKEAVCELEB_CATEGORIES = (
    ("A", "RealVideo-RealAudio", "real"),
    ("B", "RealVideo-FakeAudio", "rtvc"),
    ("C", "FakeVideo-RealAudio", "faceswap"),
    ("D", "FakeVideo-FakeAudio", "faceswap-wav2lip"),
)


# talking-head stand-ins: a voice pitch and a face / background colour per identity, none of them tied to a label
VOICES_HZ = (110.0, 130.0, 150.0, 175.0, 200.0, 225.0, 250.0)
FACES = ((224, 172, 140), (198, 134, 96), (141, 85, 36), (241, 194, 125), (170, 120, 90))
BACKGROUNDS = ((60, 60, 70), (90, 80, 60), (40, 70, 90))
FAKE_HISS_HZ = (2500.0, 5000.0)  # the fake audio's band (below 16 kHz sources' 8 kHz Nyquist)


def make_fakeavceleb(root: str | Path, per_category: int = 4, *, counts: dict[str, int] | None = None,
                     seconds: float = 1.5, size: tuple[int, int] = (48, 64), fps: int = 25, damaged: bool = True,
                     seed: int = 0) -> Path:
    """Write a FakeAVCeleb v1.2-layout folder: ``<category>/<race>/<gender>/id#####/*.mp4`` + ``meta_data.csv``.

    ``counts``: clips per category letter (A-D), default ``per_category`` each; FakeAVCeleb v1.2 has 500, 500,
    9,709 and 10,857 (audio fake:real about 1:1, video 1:19, docs/paper.md §2.7), e.g. ``{"A": 6, "B": 6, "C": 54,
    "D": 54}`` at small size. Content: each clip is a talking head of its identity (voice pitch, face and
    background colours vary with the identity, not the label); a fake stream carries an artefact of its own
    stream only: fake audio a vocoder-like hiss at 2.5-5 kHz, fake video a blocky face (``write_clip``). So
    each stream's label can be learned from that stream, and the clip's (fake if either is) needs both.
    ``meta_data.csv`` follows v1.2: the ``path`` column holds the file name and the last, unnamed column its
    folder, prefixed with ``FakeAVCeleb/``.
    """
    root = Path(root)
    rows = []
    i = 0
    for letter, category, method in FAKEAVCELEB_CATEGORIES:
        fake_audio = "FakeAudio" in category
        fake_video = "FakeVideo" in category
        for j in range((counts or {}).get(letter, per_category)):
            race, gender = ("African", "men") if j % 2 == 0 else ("Asian (East)", "women")
            ident = f"id{(j * 37 + 11) % 100000:05d}"
            folder = Path(category) / race / gender / ident
            name = f"{j:05d}.mp4" if letter == "A" else f"{j:05d}_{(j + 1) % 10:05d}_fake.mp4"
            stereo = (j // 2) % 2 == 0  # both formats in each race folder, so in train and in test
            write_clip(root / folder / name, seconds=seconds, tone_hz=VOICES_HZ[j % len(VOICES_HZ)], harmonics=4,
                       hiss_hz=FAKE_HISS_HZ if fake_audio else None,
                       colour=BACKGROUNDS[j % len(BACKGROUNDS)], face=FACES[j % len(FACES)], blocky=fake_video,
                       fps=fps, size=size, sample_rate=44100 if stereo else 16000, stereo=stereo,
                       seed=seed * 100003 + i)
            rows.append([ident, "-" if letter == "A" else f"id{j:05d}", "-", method, letter, category, race,
                         gender, name, f"FakeAVCeleb/{folder.as_posix()}"])
            i += 1
    if damaged:  # one of each failure, in the fake-fake category (the largest in the real data)
        letter, category, method = FAKEAVCELEB_CATEGORIES[3]
        folder = Path(category) / "African" / "men" / "id99999"
        damage = (("missing", "90000_fake.mp4"), ("truncated", "90001_fake.mp4"), ("no_audio", "90002_fake.mp4"))
        for kind, name in damage:
            write_clip(root / folder / name, seconds=seconds, tone_hz=None if kind == "no_audio" else VOICES_HZ[0],
                       hiss_hz=FAKE_HISS_HZ, colour=BACKGROUNDS[0], face=FACES[0], blocky=True, fps=fps, size=size,
                       seed=seed * 100003 + i)
            _damage(root / folder / name, kind)
            rows.append(["id99999", "id00001", "-", method, letter, category, "African", "men", name,
                         f"FakeAVCeleb/{folder.as_posix()}"])
            i += 1
    with open(root / "meta_data.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["source", "target1", "target2", "method", "category", "type", "race", "gender", "path", ""])
        w.writerows(rows)
    return root
