"""Pictures already in memory (camera frames, video frames) captioned as eval.py captions image files.

    captioner = FrameCaptioner(load_checkpoint("model.pt"), beam_size=2)
    captioner.caption(rgb)                                   # H x W x 3 uint8 -> "a red circle ..."
    caption_video(captioner, "in.mp4", "in.jsonl", "out.mp4")  # one JSON line per frame, captions drawn

Each frame is prepared as caption_folder prepares a file of -image_folder (squashed to the CNN's image size,
centre crop; neuraltalk2 checkpoints: image.scale and its crop), so a frame's caption is eval.py's caption
of the same frame saved as a file.
"""
import contextlib
import json
import os
import sys

import numpy as np
import torch
from PIL import Image, ImageDraw

from common import video
from common.captions import decode_batch
from common.cli import UserError
from neuraltalk import engine
from neuraltalk.captioner import build_captioner
from neuraltalk.cnn import to_tensor_batch
from neuraltalk.data import center_crop


def prepare_frame(rgb, info):
    """H x W x 3 uint8 -> (3, crop, crop) uint8 tensor, as caption_folder prepares an image file."""
    size, crop = int(info.get("image_size", 256)), int(info.get("crop_size", 224))
    if info.get("resize") == "torch_image_bilinear":  # neuraltalk2: image.scale, crop at 0-based offset
        from neuraltalk.lua_checkpoint import prepro_crop_offset, torch_image_scale
        o = prepro_crop_offset(size, crop)
        return to_tensor_batch([torch_image_scale(rgb, size, size)])[0, :, o:o + crop, o:o + crop]
    img = np.asarray(Image.fromarray(rgb).resize((size, size), Image.BICUBIC))  # data.load_rgb's squash
    return center_crop(to_tensor_batch([img]), crop)[0]


def live_precision(flag, ck, device, err=None):
    """-precision auto|fp32|bf16 -> what the CNN runs in, as eval.py decides it (auto: bf16 where native, but
    fp32 for a random-weight CNN, whose few-percent feature variation bf16 rounding can swamp)."""
    from common.device import native_bf16, resolve_precision
    precision = resolve_precision(flag, torch.device(device))
    if precision == "bf16" and torch.device(device).type == "cpu" and not native_bf16():
        print("note: this CPU has no native bf16: -precision bf16 is emulated, far slower than fp32; "
              "-precision auto picks fp32 here", file=err or sys.stderr)
    if flag == "auto" and ck["cnn_info"].get("cnn_weights") == "":
        precision = "fp32"
    return precision


class FrameCaptioner:
    """A checkpoint loaded once; `caption(rgb)` -> the sentence, `__call__(rgb)` -> the live page's answer.
    precision: the CNN's arithmetic (fp32 | bf16 | fp16, see CaptionModel.to_inference); the decoder is float32."""

    def __init__(self, ck, device="cpu", beam_size=2, suppress_UNK=True, sample_max=True, temperature=1.0,
                 precision="fp32"):
        self.model = build_captioner(ck, device).to_inference(precision)
        self.model.cnn.to(memory_format=torch.channels_last)  # as to_inference at bf16; ~15% faster at fp32 too
        self.precision = precision
        self.ix_to_word, self.info, self.device = ck["ix_to_word"], ck["cnn_info"], device
        self.sample_kw = dict(beam_size=beam_size if sample_max else 1, sample_max=bool(sample_max),
                              banned=engine.unk_columns(ck["ix_to_word"], suppress_UNK))
        if not sample_max:
            self.sample_kw["temperature"] = temperature

    @torch.inference_mode()
    def caption(self, rgb):
        x = prepare_frame(np.ascontiguousarray(rgb, np.uint8), self.info)[None].to(self.device)
        x = x.contiguous(memory_format=torch.channels_last)
        fc, att = self.model.features(x)
        seq, _ = self.model(fc, att, mode="sample", **self.sample_kw)
        return decode_batch(seq.cpu().numpy(), self.ix_to_word)[0]

    def __call__(self, rgb):
        return {"captions": [self.caption(rgb)]}


def draw_caption(rgb, caption):
    """A copy of the frame with the caption on a dark band along its bottom."""
    img = Image.fromarray(rgb)
    g = ImageDraw.Draw(img)
    size = max(10, img.height // 16)
    g.rectangle([0, img.height - size - 8, img.width, img.height], fill=(0, 0, 0))
    g.text((6, img.height - size - 5), caption, fill=(255, 255, 255), font_size=size)
    return np.asarray(img)


def caption_video(captioner, path, output_json, output_video="", max_frames=-1, err=None):
    """Caption every frame of `path`: one JSON line per frame ({"frame", "time", "caption"}) in `output_json`,
    and with `output_video` the frames with their captions drawn (audio kept). Frames stream one at a time:
    memory does not grow with the video. -> number of frames."""
    err = err or sys.stderr
    info = video.probe(path)
    if output_video:
        video.check_output(output_video, path)
    folder = os.path.dirname(os.path.abspath(output_json))
    if not os.path.isdir(folder):
        raise UserError(f"{output_json}: folder {folder} does not exist")
    tmp, n = output_json + ".partial", 0
    try:
        with open(tmp, "w") as out, (video.Writer(output_video, info.fps, audio_from=path) if output_video
                                     else contextlib.nullcontext()) as writer:
            for n, rgb in enumerate(video.frames(path, "neuraltalk", err, max_frames), 1):
                cap = captioner.caption(rgb)
                out.write(json.dumps({"frame": n - 1, "time": round((n - 1) / float(info.fps), 4),
                                      "caption": cap}) + "\n")
                if writer is not None:
                    writer.write(draw_caption(rgb, cap))
        os.replace(tmp, output_json)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return n
