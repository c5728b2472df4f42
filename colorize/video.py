"""Colorize a video: `python colorize/colorize.py in.mp4 out.mp4` (the same flags as for a photo, plus
-smooth, -scene_cut, -max_frames).

Per-frame colorization flickers: the network sees each frame on its own, and small changes (sensor noise,
compression, a passing hand) move its global "scene" features and its chroma. Within a shot this keeps both
steady:
  - the global features are an exponential moving average over the shot's frames (weight -smooth on the past);
  - the predicted chroma (the network's half-resolution ab map) is averaged with the previous frame's, pixel by
    pixel, with weight -smooth x exp(-|delta Y| / 0.05): where the luminance did not change the colour is held,
    where something moved the new prediction wins (no colour ghosts behind moving edges);
  - a scene cut (mean |delta Y| of 32x32 thumbnails above -scene_cut) starts a new shot: nothing is carried over.
-smooth 0 colorizes each frame on its own, exactly as colorize.py colorizes that frame saved as a photo.
Frames are decoded, colorized and encoded one at a time (common/video.py, PyAV): memory does not grow with the
video's length; the input's audio is kept.
"""
import sys

import numpy as np
import torch

from colorize import imageops, pipeline
from common.cli import UserError
from common.device import autocast
from common.video import Writer, check_output, frames, probe

MOTION = 0.05   # |delta Y| (0..1) at which a pixel keeps only 1/e of the previous frame's share of chroma
THUMB = 32      # side of the thumbnails compared for scene cuts


def luminance(rgb):
    """H x W x 3 uint8 -> Y in [0, 1] as pipeline.read_image computes it for a photo (image.rgb2y)."""
    return rgb.astype(np.float32) @ (np.array([0.299, 0.587, 0.114], np.float32) / 255)


class VideoColorizer:
    """Frames in order -> colorized frames; holds the shot's running global features and chroma."""

    def __init__(self, net, mean, device, recombine="yuv", max_side=0, precision="fp32", smooth=0.8,
                 scene_cut=0.08, style=None):
        self.net, self.mean, self.device, self.recombine = net, mean, torch.device(device), recombine
        self.max_side, self.precision, self.smooth, self.scene_cut, self.style = \
            max_side, precision, smooth, scene_cut, style
        self.cuts = []       # frame indices that started a new shot (0 included)
        self.count = 0
        self.ab = None      # the network's chroma of the last frame (2 x h x w in [0, 1]), after smoothing
        self._thumb = self._g = self._y_ab = None

    def is_cut(self, y):
        thumb = imageops.scale(y, THUMB, THUMB)
        cut = self._thumb is None or float(np.abs(thumb - self._thumb).mean()) > self.scene_cut
        self._thumb = thumb
        return cut

    @torch.inference_mode()
    def __call__(self, rgb):
        y = luminance(rgb)
        if self.is_cut(y):
            self.cuts.append(self.count)
            self._g = self.ab = None
        self.count += 1
        x2 = pipeline.prepare(y, self.mean, self.max_side)
        g = self.style
        if g is None:
            S, dtype = self.net.config.global_size, next(self.net.parameters()).dtype
            x1 = pipeline._as_input(imageops.scale(x2, S, S), self.net, self.device)  # as predict_ab's X1
            with autocast(self.device, self.precision if dtype == torch.float32 else "fp32"):
                g = self.net.global_features(x1)[0].float()
            if self.smooth > 0 and self._g is not None:
                g = self.smooth * self._g + (1 - self.smooth) * g
            self._g = g
            g = g.to(dtype)
        out = pipeline.predict_ab(self.net, x2, self.device, global_feats=g, precision=self.precision)
        y_ab = imageops.scale(x2, out.shape[2], out.shape[1])
        if self.smooth > 0 and self.ab is not None and self.ab.shape == out.shape:
            w = self.smooth * np.exp(-np.abs(y_ab - self._y_ab) / MOTION, dtype=np.float32)
            out = w * self.ab + (1 - w) * out
        self.ab, self._y_ab = out, y_ab
        return pipeline.compose(out, y, self.recombine)[0]


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
                        colorizer.precision, opt.smooth, opt.scene_cut, colorizer.style)
    with Writer(opt.output, info.fps, audio_from=opt.input) as w:
        for rgb in frames(opt.input, "colorize", err, opt.max_frames):
            w.write(vc(rgb))
    print(f"wrote {opt.output}: {vc.count} frames, {len(vc.cuts)} shot(s)"
          + (", audio kept" if info.has_audio else ""), file=err)
    return vc.count
