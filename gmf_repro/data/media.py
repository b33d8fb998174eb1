"""Decode one mp4 into fixed-shape arrays with PyAV (torchvision >= 0.28 has no video reader).

One pass over the container gives both streams: video frames resampled to a target frame rate
(or the first frames at the native rate) and resized with swscale, and audio resampled to mono at
a target rate. Every result is trimmed or padded to an exact length so a cache can store it in
fixed-shape arrays. Containers are always closed (``with av.open``).

Stereo -> mono rule: the mean of the channels, ``(L + R) / 2`` (librosa's rule). ffmpeg's own
downmix (``-ac 1``) differs from it by a constant gain (docs/paper.md §7); we resample each channel with
PyAV and average them ourselves so the rule does not depend on the ffmpeg build.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

# Reasons a clip is dropped; the manifest counts them in this order.
MISSING = "missing"
CORRUPT = "corrupt"
NO_AUDIO = "no_audio"
NO_VIDEO = "no_video"
DROP_REASONS = (MISSING, CORRUPT, NO_AUDIO, NO_VIDEO)


class ClipError(Exception):
    """A clip that cannot be used; ``reason`` is one of ``DROP_REASONS``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class MediaSpec:
    """What to take from each clip: the decode-time half of docs/paper.md §2's preprocessing.

    ``fps=None`` takes the first ``num_frames`` frames at the native rate (FakeAVCeleb);
    a number resamples to that rate by taking, for each target time k/fps, the first frame
    whose timestamp reaches it (VGGSound, 5 fps). ``span_s`` spreads the ``num_frames`` target
    times evenly over the first ``span_s`` seconds instead (k * span_s / num_frames), e.g. 15 frames
    over 9 s = every third frame of the 5 fps stream; None = consecutive frames at ``fps``.
    ``frame_size`` is (height, width); frames are resized to it without keeping the aspect ratio.
    """

    num_frames: int
    frame_size: tuple[int, int]
    fps: float | None
    sample_rate: int
    audio_samples: int
    start_s: float = 0.0
    span_s: float | None = None

    def __post_init__(self) -> None:
        if self.span_s is not None and (self.fps is None or self.span_s <= 0):
            raise ValueError(f"data.frame_span_s={self.span_s} needs data.fps set and a span > 0 "
                             f"(null takes consecutive frames at data.fps)")

    @property
    def frame_step_s(self) -> float | None:
        """Seconds between two target frame times (None: native rate)."""
        if self.fps is None:
            return None
        return self.span_s / self.num_frames if self.span_s is not None else 1.0 / self.fps

    def video_shape(self) -> tuple[int, int, int, int]:
        return (self.num_frames, self.frame_size[0], self.frame_size[1], 3)

    def audio_shape(self) -> tuple[int]:
        return (self.audio_samples,)


def _frame_time(frame: av.VideoFrame, stream: av.video.stream.VideoStream, fallback_index: int) -> float:
    if frame.pts is not None and stream.time_base is not None:
        return float(frame.pts * stream.time_base)
    rate = float(stream.average_rate or 25)
    return fallback_index / rate


def decode_clip(path: str | os.PathLike, spec: MediaSpec, need_audio: bool = True,
                need_video: bool = True, report: dict | None = None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Decode ``path`` into (video uint8 [T,H,W,3], audio int16 [S]); raise ``ClipError`` if unusable.

    A clip shorter than the spec is padded (video: the last frame repeated; audio: zeros), as the
    paper keeps clips that are not exactly 10 s long; ``report`` (if given) receives
    ``video_padded`` / ``audio_padded`` so the cache can count them.
    """
    path = Path(path)
    if not path.is_file():
        raise ClipError(MISSING, f"{path}: file not found")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise ClipError(CORRUPT, f"{path}: cannot open ({exc})") from exc
    with container:
        if not container.streams.video and not container.streams.audio:  # cut off before its stream headers
            raise ClipError(CORRUPT, f"{path}: no streams (truncated or not a media file)")
        vstream = container.streams.video[0] if container.streams.video else None
        astream = container.streams.audio[0] if container.streams.audio else None
        if need_video and vstream is None:
            raise ClipError(NO_VIDEO, f"{path}: no video stream")
        if need_audio and astream is None:
            raise ClipError(NO_AUDIO, f"{path}: no audio stream")
        streams = [s for s, need in ((vstream, need_video), (astream, need_audio)) if need]
        for s in streams:
            s.thread_type = "AUTO"
        frames: list[np.ndarray] = []
        chunks: list[np.ndarray] = []
        n_audio = 0
        # trim the start in the decoded domain so both streams stay aligned to the same clock
        audio_skip = int(round(spec.start_s * spec.sample_rate))
        want_audio = spec.audio_samples + audio_skip
        # keep the source layout (every channel resampled), then average the channels ourselves
        resampler = av.AudioResampler(format="fltp", rate=spec.sample_rate) if need_audio else None
        next_t = spec.start_s
        video_done = not need_video
        audio_done = not need_audio
        n_seen = 0
        t_first: float | None = None  # times count from the first frame: some files start at pts > 0
        h, w = spec.frame_size
        try:
            for packet in container.demux(streams):
                if video_done and audio_done:
                    break
                if packet.stream is vstream and not video_done:
                    for frame in packet.decode():
                        t = _frame_time(frame, vstream, n_seen)
                        t_first = t if t_first is None else t_first
                        t -= t_first
                        n_seen += 1
                        if spec.fps is None:
                            if t + 1e-6 < spec.start_s:
                                continue
                            take = 1
                        else:
                            take = 0  # one decoded frame may fill several slots of a higher target rate
                            while t + 1e-6 >= next_t and len(frames) + take < spec.num_frames:
                                take += 1
                                next_t = spec.start_s + (len(frames) + take) * spec.frame_step_s
                        if take:
                            rgb = frame.reformat(width=w, height=h, format="rgb24").to_ndarray()
                            frames.extend([rgb] * take)
                        if len(frames) >= spec.num_frames:
                            video_done = True
                            break
                elif packet.stream is astream and not audio_done:
                    for frame in packet.decode():
                        for out in resampler.resample(frame):
                            arr = out.to_ndarray()  # fltp: [channels, samples]
                            chunks.append(arr.mean(axis=0, dtype=np.float32))
                            n_audio += arr.shape[1]
                        if n_audio >= want_audio:
                            audio_done = True
                            break
            if need_audio and not audio_done:
                for out in resampler.resample(None):  # flush the resampler's tail
                    arr = out.to_ndarray()
                    chunks.append(arr.mean(axis=0, dtype=np.float32))
        except (av.error.FFmpegError, ValueError, EOFError) as exc:
            raise ClipError(CORRUPT, f"{path}: decode failed ({exc})") from exc
    video = audio = None
    if need_video:
        if not frames:
            raise ClipError(CORRUPT, f"{path}: no decodable video frame")
        frames = frames[: spec.num_frames]
        if report is not None:
            report["video_padded"] = len(frames) < spec.num_frames
        frames += [frames[-1]] * (spec.num_frames - len(frames))
        video = np.stack(frames)
    if need_audio:
        wave = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
        if wave.size == 0:
            raise ClipError(CORRUPT, f"{path}: no decodable audio samples")
        wave = wave[audio_skip: audio_skip + spec.audio_samples]
        if report is not None:
            report["audio_padded"] = wave.size < spec.audio_samples
        wave = np.pad(wave, (0, spec.audio_samples - wave.size))
        audio = np.round(np.clip(wave, -1.0, 32767 / 32768) * 32768).astype(np.int16)
    return video, audio
