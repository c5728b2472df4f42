"""Pictures already in memory (camera frames, video frames) through the model, as run_model.py runs files.

    out = describe(model, rgb, idx_to_token, image_size=480, num_proposals=50)
    out["boxes"]     # xywh in rgb's own pixels, best first
    out["captions"]  # one per box

`describe` prepares the array exactly as run_model.py prepares an image file (loader.load_image: image.scale
of the longest side to -image_size, BGR minus the VGG mean), so a frame's captions are run_model.py's
captions of the same frame saved as a PNG; its boxes are run_model.py's, scaled from the -image_size picture
back to the frame (as the original's webcam/daemon.lua did). `run_video` runs a video file frame by frame.
"""
import contextlib
import json
import os
import sys

import numpy as np
import torch
from PIL import Image, ImageDraw

from common import video
from common.cli import UserError
from densecap import box_utils
from densecap.checkpoints import captions_of
from densecap.loader import lua_scale, to_input

COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
          "#7f7f7f", "#bcbd22", "#17becf"]


@torch.inference_mode()
def describe(model, rgb, idx_to_token, image_size=720, rpn_nms_thresh=0.7, final_nms_thresh=0.3,
             num_proposals=1000, device="cpu"):
    """H x W x 3 uint8 -> {"boxes": [[x, y, w, h], ...] in rgb's pixels, "scores": [...], "captions": [...]},
    sorted by score; final boxes unclipped, as run_model.lua."""
    rgb = np.ascontiguousarray(rgb, np.uint8)
    x = lua_scale(rgb, image_size)
    (h, w), (h0, w0) = x.shape[:2], rgb.shape[:2]
    x = to_input(x).to(device).contiguous(memory_format=torch.channels_last)  # oneDNN's faster layout
    boxes, scores, seqs = model.forward_test(x, rpn_nms_thresh, final_nms_thresh,
                                             num_proposals, clip_final_boxes=False)
    xywh = box_utils.xcycwh_to_xywh(boxes.float().cpu()) * torch.tensor([w0 / w, h0 / h] * 2)
    return {"boxes": xywh.tolist(), "scores": scores.float().cpu().tolist(),
            "captions": captions_of(seqs.cpu(), idx_to_token)}


def draw(rgb, boxes, captions, num_to_draw=10, text_size=2, box_width=2):
    """A copy of the frame with the top boxes and their captions (as run_model.py -output_dir draws)."""
    img = Image.fromarray(rgb)
    g = ImageDraw.Draw(img)
    for k, ((x, y, w, h), cap) in enumerate(list(zip(boxes, captions))[:num_to_draw]):
        color = COLORS[k % len(COLORS)]
        g.rectangle([x, y, x + w, y + h], outline=color, width=box_width)
        g.text((x + 3, y + 3), cap, fill=color, font_size=6 * text_size + 2)
    return np.asarray(img)


def run_video(model, idx_to_token, path, output_json, output_video="", opt=None, device="cpu", err=None):
    """Every frame of `path` through `describe`: one JSON line per frame ({"frame", "time", "boxes", "scores",
    "captions"}) in `output_json`, and with `output_video` the frames drawn (audio kept). Frames stream one at
    a time: memory does not grow with the video. -> number of frames."""
    err = err or sys.stderr
    info = video.probe(path)
    if output_video:
        video.check_output(output_video, path)
    folder = os.path.dirname(os.path.abspath(output_json))
    if not os.path.isdir(folder):
        raise UserError(f"{output_json}: folder {folder} does not exist")
    kw = dict(image_size=opt.image_size, rpn_nms_thresh=opt.rpn_nms_thresh, final_nms_thresh=opt.final_nms_thresh,
              num_proposals=opt.num_proposals, device=device)
    tmp = output_json + ".partial"
    n = 0
    try:
        with open(tmp, "w") as out, (video.Writer(output_video, info.fps, audio_from=path) if output_video
                                     else contextlib.nullcontext()) as writer:
            for n, rgb in enumerate(video.frames(path, "densecap", err, opt.max_frames), 1):
                r = describe(model, rgb, idx_to_token, **kw)
                out.write(json.dumps({"frame": n - 1, "time": round((n - 1) / float(info.fps), 4),
                                      "boxes": [[round(v, 2) for v in b] for b in r["boxes"]],
                                      "scores": [round(s, 5) for s in r["scores"]],
                                      "captions": r["captions"]}) + "\n")
                if writer is not None:
                    writer.write(draw(rgb, r["boxes"], r["captions"], opt.num_to_draw, opt.text_size, opt.box_width))
        os.replace(tmp, output_json)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return n
