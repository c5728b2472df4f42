"""Colorize a video: `python colorize/colorize.py in.mp4 out.mp4` (the same flags as for a photo, plus
-smooth, -smooth_window, -scene_cut, -max_frames).

Per-frame colorization flickers: the network sees each frame on its own, and small changes (sensor noise,
compression, a passing hand) move its chroma. Within a shot the chroma is steadied by a centred temporal
average over a bounded window:
  - each frame's chroma (the network's half-resolution ab map, from the frame's own global features) is the
    weighted mean of the chroma of the frames up to -smooth_window before and after it in the same shot;
    a frame d steps away weighs -smooth^d x exp(-|delta Y| / 0.05) pixel by pixel against the frame itself
    (weight 1): where the luminance is the same the colour is averaged, where something moved the frame's own
    prediction wins (no colour ghosts behind moving edges);
  - a scene cut (mean |delta Y| of 32x32 thumbnails above -scene_cut) starts a new shot: no frame of another
    shot is averaged in.
Why centred and why only the chroma: on a steady shot the truth does not change, so averaging the per-frame
chroma cannot raise its mean squared error (convexity), and a centred window gives the first frames of a shot
as much averaging as the rest, where a running (causal) average gives them little. Averaging the global
features as well moves the network's output nonlinearly, by an amount and sign that depend on the model (the
previous default, causal averages of both, measured -0.04 to +0.008 dB PSNR on static clips; BENCHMARKS.md).
-smooth 0 colorizes each frame on its own, exactly as colorize.py colorizes that frame saved as a photo.
Frames are decoded, colorized and encoded in order, each written -smooth_window (N) frames after it is read; held
are the full-resolution luminance of at most N + 1 frames and the chroma-size maps of 2N + 1: memory does not grow
with the video's length (common/video.py, PyAV); the input's audio is kept.
"""
import sys
from collections import deque
from dataclasses import dataclass

import numpy as np
import torch

from colorize import imageops, pipeline
from common.cli import UserError
from common.video import Writer, check_output, frames, probe

MOTION = 0.05   # |delta Y| (0..1) at which a pixel keeps only 1/e of a neighbouring frame's share of chroma
THUMB = 32      # side of the thumbnails compared for scene cuts


def luminance(rgb):
    """H x W x 3 uint8 -> Y in [0, 1] as pipeline.read_image computes it for a photo (image.rgb2y)."""
    return rgb.astype(np.float32) @ (np.array([0.299, 0.587, 0.114], np.float32) / 255)


@dataclass
class Frame:
    index: int
    shot: int
    y: np.ndarray      # full-resolution luminance (H x W in [0, 1]), recombined with the chroma; None once written
    ab: np.ndarray     # the network's own chroma of this frame (2 x h x w in [0, 1])
    y_ab: np.ndarray   # the luminance at the chroma's size (h x w), for the motion gate


class VideoColorizer:
    """Frames in order -> colorized frames in order, each written once the window after it has been read.

        vc = VideoColorizer(net, mean, device)
        for rgb in vc.run(frames):   # or: out = vc.push(rgb) ... out += vc.finish()
            ...
    """

    def __init__(self, net, mean, device, recombine="yuv", max_side=0, precision="fp32", smooth=0.9,
                 scene_cut=0.08, style=None, window=8):
        self.net, self.mean, self.device, self.recombine = net, mean, torch.device(device), recombine
        self.max_side, self.precision, self.smooth, self.scene_cut, self.style = \
            max_side, precision, smooth, scene_cut, style
        self.window = window if smooth > 0 else 0
        self.cuts = []       # frame indices that started a new shot (0 included)
        self.count = 0       # frames read
        self.written = 0     # frames returned
        self.ab = None       # the chroma of the last frame returned (2 x h x w in [0, 1]), after smoothing
        self._buf = deque()  # the frames not yet written and the window's past ones
        self._thumb = None

    def is_cut(self, y):
        thumb = imageops.scale(y, THUMB, THUMB)
        cut = self._thumb is None or float(np.abs(thumb - self._thumb).mean()) > self.scene_cut
        self._thumb = thumb
        return cut

    @torch.inference_mode()
    def _predict(self, y):
        """The network's chroma of one frame on its own, as colorize.py computes it for a photo."""
        x2 = pipeline.prepare(y, self.mean, self.max_side)
        ab = pipeline.predict_ab(self.net, x2, self.device, global_feats=self.style, precision=self.precision)
        return ab, imageops.scale(x2, ab.shape[2], ab.shape[1])

    def push(self, rgb):
        """Read one frame -> the list of frames now ready to write (none while the window fills)."""
        self._read(rgb)
        return list(self._ready(final=False))

    def finish(self):
        """The end of the video -> the frames still held."""
        return list(self._ready(final=True))

    def run(self, frames):
        """Frames in -> colorized frames out, in order (`self.ab` is the chroma of the frame just yielded)."""
        for rgb in frames:
            self._read(rgb)
            yield from self._ready(final=False)
        yield from self._ready(final=True)

    def _read(self, rgb):
        y = luminance(rgb)
        if self.is_cut(y):
            self.cuts.append(self.count)
        ab, y_ab = self._predict(y)
        self._buf.append(Frame(self.count, len(self.cuts), y, ab, y_ab))
        self.count += 1

    def _ready(self, final):
        newest = self._buf[-1] if self._buf else None
        while self.written < self.count:
            cur = self._buf[self.written - self._buf[0].index]
            if not final and newest.shot == cur.shot and newest.index < cur.index + self.window:
                return   # the frames after it in its shot are not all read yet
            rgb = self._blend(cur)
            cur.y = None   # written: only its chroma-size maps stay, for the next frames' windows
            self.written += 1
            while self._buf and self._buf[0].index < self.written - self.window:
                self._buf.popleft()   # no frame still to write needs it
            yield rgb

    def _blend(self, cur):
        """The frame's chroma averaged with its shot's neighbours in the window, gated by motion; -> RGB."""
        num, den = cur.ab.copy(), np.ones_like(cur.y_ab)
        for f in self._buf:
            d = abs(f.index - cur.index)
            if f is cur or f.shot != cur.shot or d > self.window or f.ab.shape != cur.ab.shape:
                continue
            w = np.float32(self.smooth ** d) * np.exp(-np.abs(f.y_ab - cur.y_ab) / MOTION, dtype=np.float32)
            num += w * f.ab
            den += w
        self.ab = num / den if self.window else cur.ab
        return pipeline.compose(self.ab, cur.y, self.recombine)[0]


def check(opt):
    """Bad video flags and output paths as one line, before the model is loaded."""
    if not 0 <= opt.smooth < 1:
        raise UserError(f"-smooth {opt.smooth:g}: must be in [0, 1) (0 = each frame on its own)")
    if not opt.scene_cut > 0:
        raise UserError(f"-scene_cut {opt.scene_cut:g}: must be > 0")
    probe(opt.input)
    check_output(opt.output, opt.input)


def colorize_video(colorizer, opt, err=None):
    """colorize.py in.mp4 out.mp4: every frame through a VideoColorizer, audio kept. -> number of frames."""
    err = err or sys.stderr
    info = probe(opt.input)
    vc = VideoColorizer(colorizer.net, colorizer.mean, colorizer.device, colorizer.recombine, opt.max_side,
                        colorizer.precision, opt.smooth, opt.scene_cut, colorizer.style, opt.smooth_window)
    with Writer(opt.output, info.fps, audio_from=opt.input) as w:
        for rgb in vc.run(frames(opt.input, "colorize", err, opt.max_frames)):
            w.write(rgb)
    print(f"wrote {opt.output}: {vc.count} frames, {len(vc.cuts)} shot(s)"
          + (", audio kept" if info.has_audio else ""), file=err)
    return vc.count
