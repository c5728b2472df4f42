"""Video files in and out with PyAV (FFmpeg's maintained binding, pinned in requirements.txt).

    info = video.probe("in.mp4")                      # fps, size, frame count, audio or not
    with video.Writer("out.mp4", info.fps, audio_from="in.mp4") as w:
        for rgb in video.frames("in.mp4", progress="colorize"):   # H x W x 3 uint8, one at a time
            w.write(f(rgb))

Frames stream: one decoded frame is held at a time, so memory does not grow with the video's length.
The writer encodes into a hidden temporary file beside the output and, on close, muxes the source's
audio stream into it (copied as is when the container takes the codec, else re-encoded) and renames it
over the output: a failure or Ctrl-C leaves no half-written video, and never touches the input.
"""
import os
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from tqdm import tqdm

from common.cli import UserError

VIDEO_EXTS = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v"}
# output extension -> (video codec, pixel format, audio codec used when the source's cannot be copied)
CODECS = {".mp4": ("libx264", "yuv420p", "aac"), ".m4v": ("libx264", "yuv420p", "aac"),
          ".mov": ("libx264", "yuv420p", "aac"), ".mkv": ("libx264", "yuv420p", "aac"),
          ".avi": ("mpeg4", "yuv420p", "aac"), ".webm": ("libvpx", "yuv420p", "libopus")}


def is_video_name(path):
    return Path(path).suffix.lower() in VIDEO_EXTS


@dataclass
class Info:
    fps: Fraction
    width: int
    height: int
    frames: int        # from the container header; 0 when it does not say
    has_audio: bool
    duration: float    # seconds, 0 when unknown


def _open(path):
    import av

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such video file")
    if os.path.getsize(path) == 0:
        raise UserError(f"{path}: empty file, not a video")
    try:
        c = av.open(path)
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as e:
        raise UserError(f"{path}: not a video this program can read ({str(e).splitlines()[0][:80]})") from None
    if not c.streams.video:
        c.close()
        raise UserError(f"{path}: has no video stream")
    return c


def probe(path):
    """-> Info of the first video stream; a UserError line for a missing or undecodable file."""
    with _open(path) as c:
        s = c.streams.video[0]
        fps = s.average_rate or s.guessed_rate or Fraction(25)
        dur = float(c.duration / 1e6) if c.duration else 0.0
        frames = int(s.frames or 0) or (int(round(dur * fps)) if dur else 0)
        return Info(Fraction(fps), s.codec_context.width, s.codec_context.height, frames, bool(c.streams.audio), dur)


def progress(iterable, total=None, desc="", file=None, unit="frame"):
    """tqdm on stderr when it is a terminal (a pipe or a log gets no bar)."""
    file = file or sys.stderr
    return tqdm(iterable, total=total or None, desc=desc, unit=unit, file=file, disable=not file.isatty(),
                dynamic_ncols=True)


def frames(path, progress_desc=None, file=None, max_frames=-1):
    """Yield the video's frames as H x W x 3 uint8 RGB arrays, decoded one at a time.

    A damaged stretch ends the video with a warning (the frames before it were yielded)."""
    import av

    c = _open(path)
    try:
        total = probe(path).frames
        if max_frames >= 0:
            total = min(total, max_frames) if total else max_frames
        it = c.decode(video=0)
        bar = progress(range(total or 0), total, progress_desc, file) if progress_desc is not None else None
        n = 0
        while max_frames < 0 or n < max_frames:
            try:
                frame = next(it)
            except StopIteration:
                break
            except av.error.FFmpegError as e:
                print(f"warning: {path}: decoding stopped at frame {n} ({str(e).splitlines()[0][:80]})",
                      file=file or sys.stderr)
                break
            yield frame.to_ndarray(format="rgb24")
            n += 1
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        if n == 0:
            raise UserError(f"{path}: no decodable video frames")
    finally:
        c.close()


def check_output(path, input_path=None):
    """UserError unless `path` is a writable video name that is not the input."""
    path = Path(path)
    if path.suffix.lower() not in CODECS:
        raise UserError(f"{path}: unknown video format {path.suffix or '(no extension)'}; use "
                        f"{', '.join(sorted(CODECS))}")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise UserError(f"{path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UserError(f"{path}: cannot write there (permission denied)")
    if input_path is not None and path.exists() and os.path.samefile(path, input_path):
        raise UserError(f"{path}: the output must differ from the input video (it would overwrite it)")


class Writer:
    """Encode RGB frames into `path` (codec from the extension); `audio_from` = a video whose audio to keep.

    Odd widths/heights are padded by one edge pixel (4:2:0 needs even sizes) and cropped away on decode
    by no player, so sizes stay as given when they are even."""

    def __init__(self, path, fps, audio_from=None, crf=20):
        check_output(path, audio_from)
        self.path, self.fps, self.audio_from, self.crf = Path(path), Fraction(fps).limit_denominator(100000), \
            audio_from, crf
        self.tmp = self.path.with_name(f".tmp-{os.getpid()}-video-{self.path.name}")
        self.container = self.stream = None
        self.count = 0

    def __enter__(self):
        return self

    def _start(self, h, w):
        import av

        vcodec, pix, _ = CODECS[self.path.suffix.lower()]
        self.container = av.open(os.fspath(self.tmp), "w")
        s = self.container.add_stream(vcodec, rate=self.fps)
        s.width, s.height, s.pix_fmt = w + w % 2, h + h % 2, pix
        if vcodec == "libx264":
            s.options = {"crf": str(self.crf), "preset": "veryfast"}
        elif vcodec == "libvpx":
            s.options = {"crf": "10", "b": "2M", "deadline": "realtime", "cpu-used": "8"}
        else:
            s.bit_rate = 4_000_000
        self.stream, self.size = s, (h, w)

    def write(self, rgb):
        import av

        rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
        if self.container is None:
            self._start(*rgb.shape[:2])
        if rgb.shape[:2] != self.size:
            raise ValueError(f"frame {self.count} is {rgb.shape[:2]}, the video is {self.size}")
        h, w = self.size
        if h % 2 or w % 2:
            rgb = np.pad(rgb, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts = self.count
        frame.time_base = 1 / self.fps
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.count += 1

    def close(self, ok=True):
        try:
            if self.container is not None:
                for packet in self.stream.encode():
                    self.container.mux(packet)
                self.container.close()
                self.container = None
            if not ok:
                return
            if self.count == 0:
                raise UserError(f"{self.path}: no frames to write")
            if self.audio_from is not None and probe(self.audio_from).has_audio:
                final = self.path.with_name(f".tmp-{os.getpid()}-mux-{self.path.name}")
                try:
                    mux_audio(self.tmp, self.audio_from, final)
                    os.replace(final, self.path)
                finally:
                    final.unlink(missing_ok=True)
            else:
                os.replace(self.tmp, self.path)
        finally:
            self.tmp.unlink(missing_ok=True)

    def __exit__(self, exc_type, exc, tb):
        self.close(ok=exc_type is None)
        return False


def mux_audio(video_path, audio_src, out_path):
    """out = video_path's video packets + audio_src's first audio stream (copied, or re-encoded when the
    output container does not take its codec). Packets are copied one at a time (memory flat)."""
    import av

    _, _, fallback = CODECS[Path(out_path).suffix.lower()]
    with av.open(os.fspath(video_path)) as vin, av.open(os.fspath(audio_src)) as ain:
        a_in = ain.streams.audio[0]
        try:
            _mux(vin, ain, a_in, out_path, copy=True, fallback=fallback)
        except (av.error.FFmpegError, ValueError):
            vin.seek(0)
            ain.seek(0)
            _mux(vin, ain, a_in, out_path, copy=False, fallback=fallback)


def _mux(vin, ain, a_in, out_path, copy, fallback):
    import av

    with av.open(os.fspath(out_path), "w") as out:
        v_out = out.add_stream_from_template(vin.streams.video[0])
        if copy:
            a_out = out.add_stream_from_template(a_in)
            resampler = None
        else:
            rate = 48000 if fallback == "libopus" else (a_in.rate or 44100)
            a_out = out.add_stream(fallback, rate=rate)
            a_out.layout = "stereo" if fallback == "libopus" else (a_in.layout.name if a_in.layout else "stereo")
            resampler = av.AudioResampler(format=a_out.codec_context.codec.audio_formats[0].name,
                                          layout=a_out.layout.name, rate=rate)
        # video first, then audio: muxers interleave by timestamp within their buffers
        for packet in vin.demux(vin.streams.video[0]):
            if packet.dts is None and packet.pts is None:  # the demuxer's empty flush packet; Matroska's video
                continue                                   # packets come with a pts only, and are kept
            packet.stream = v_out
            out.mux(packet)
        if copy:
            for packet in ain.demux(a_in):
                if packet.dts is None and packet.pts is None:
                    continue
                packet.stream = a_out
                out.mux(packet)
        else:
            for frame in ain.decode(a_in):
                frame.pts = None
                for rf in resampler.resample(frame):
                    out.mux(a_out.encode(rf))
            for rf in resampler.resample(None):
                out.mux(a_out.encode(rf))
            out.mux(a_out.encode(None))


def make_clip(path, frame_fn, n_frames, fps=10, audio=False):
    """Write a test/demo clip: frame_fn(k) -> H x W x 3 uint8; audio=True adds a 440 Hz AAC tone."""
    import av

    path = Path(path)
    vcodec, pix, acodec = CODECS[path.suffix.lower()]
    with av.open(os.fspath(path), "w") as c:
        first = np.asarray(frame_fn(0), np.uint8)
        s = c.add_stream(vcodec, rate=fps)
        h, w = first.shape[:2]
        s.height, s.width, s.pix_fmt = h + h % 2, w + w % 2, pix
        even = lambda a: np.pad(a, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")  # noqa: E731
        if vcodec == "libx264":
            s.options = {"crf": "18", "preset": "veryfast"}
        a = None
        if audio:
            a = c.add_stream(acodec, rate=48000)
            a.layout = "stereo"
        for k in range(n_frames):
            rgb = first if k == 0 else np.asarray(frame_fn(k), np.uint8)
            fr = av.VideoFrame.from_ndarray(even(rgb), format="rgb24")
            fr.pts = k
            fr.time_base = Fraction(1, fps)
            for p in s.encode(fr):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
        if a is not None:
            n = 1024 if acodec == "aac" else 960
            total = int(48000 * n_frames / fps)
            fmt = a.codec_context.codec.audio_formats[0].name
            for start in range(0, total, n):
                t = (np.arange(start, start + n) / 48000.0)
                tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
                data = np.stack([tone, tone])
                if not fmt.endswith("p"):
                    data = data.T.reshape(1, -1)
                af = av.AudioFrame.from_ndarray(data, format=fmt, layout="stereo")
                af.sample_rate, af.pts = 48000, start
                for p in a.encode(af):
                    c.mux(p)
            for p in a.encode():
                c.mux(p)
    return path


def write_y4m(path, frames, fps=10):
    """Write RGB frames (H x W x 3 uint8, even sizes) as an uncompressed YUV4MPEG2 4:2:0 file: what
    Chromium's fake camera plays (`--use-file-for-fake-video-capture`). BT.601 video (limited) range,
    as FFmpeg and Chromium read y4m."""
    frames = [np.asarray(f, np.uint8) for f in frames]
    h, w = frames[0].shape[:2]
    if h % 2 or w % 2:
        raise ValueError(f"y4m 4:2:0 needs even sizes, got {w}x{h}")
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{int(fps)}:1 Ip A1:1 C420jpeg\n".encode())
        for rgb in frames:
            r, g, b = (rgb[..., i].astype(np.float32) for i in range(3))
            y = 16 + 0.257 * r + 0.504 * g + 0.098 * b
            u = 128 - 0.148 * r - 0.291 * g + 0.439 * b
            v = 128 + 0.439 * r - 0.368 * g - 0.071 * b
            sub = lambda c: c.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))  # noqa: E731
            f.write(b"FRAME\n")
            for plane in (y, sub(u), sub(v)):
                f.write(np.clip(np.rint(plane), 0, 255).astype(np.uint8).tobytes())
    return path
