"""eval.py -input_video: one JSON line per frame with eval.py's caption of that frame (as a file of
-image_folder), the captions drawn into -output_video with the audio kept, memory flat in the video's length."""
import json
import weakref

import numpy as np
import pytest
from PIL import Image

from common import video
from common.cli import UserError, parse
from neuraltalk import eval as nt_eval
from neuraltalk import frames
from neuraltalk.captioner import caption_folder, load_checkpoint

SIDE = 128  # 64 x 64 shapes images scaled 2x


def clip_of(shapes, path, n_each, audio=False):
    """Shapes test image 1 for n_each frames, then image 2, at 10 frames/s."""
    root, _ = shapes
    a, b = (np.asarray(Image.open(root / "images" / f"{k}.png").convert("RGB").resize((SIDE, SIDE), Image.NEAREST))
            for k in (1, 2))
    return video.make_clip(path, lambda k: a if k < n_each else b, 2 * n_each, fps=10, audio=audio)


def run_eval(model, *args):
    return nt_eval.main(parse(nt_eval.EvalOptions, ["-model", str(model), "-gpuid", "-1",
                                                    *[str(a) for a in args]]))


def test_per_frame_captions_and_drawn_video_with_audio(trained_captioner, shapes, tmp_path):
    clip = clip_of(shapes, tmp_path / "in.mp4", 4, audio=True)
    n = run_eval(trained_captioner, "-input_video", clip, "-output_json", tmp_path / "c.jsonl",
                 "-output_video", tmp_path / "out.mp4")
    rows = [json.loads(line) for line in (tmp_path / "c.jsonl").read_text().splitlines()]
    assert n == len(rows) == 8 and [r["frame"] for r in rows] == list(range(8))
    np.testing.assert_allclose([r["time"] for r in rows], np.arange(8) / 10)
    # each caption is eval.py's for that decoded frame saved as an image of -image_folder
    folder = tmp_path / "decoded"
    folder.mkdir()
    for k, rgb in enumerate(video.frames(clip)):
        Image.fromarray(rgb).save(folder / f"{k:03d}.png")
    ck = load_checkpoint(trained_captioner)
    live = frames.FrameCaptioner(ck)
    preds = caption_folder(live.model, ck["ix_to_word"], str(folder), ck["cnn_info"], "cpu", **live.sample_kw)
    assert [r["caption"] for r in rows] == [p["caption"] for p in preds]
    assert all(r["caption"] for r in rows)
    info = video.probe(tmp_path / "out.mp4")
    assert (info.width, info.height, info.has_audio) == (SIDE, SIDE, True)
    drawn, src = list(video.frames(tmp_path / "out.mp4")), list(video.frames(clip))
    assert len(drawn) == 8
    for d, s in zip(drawn, src):  # the caption band: dark along the bottom with white text; the top untouched
        band = d[-SIDE // 16:]
        assert band.mean() < 60 and band.max() > 200 and s[-SIDE // 16:].mean() > 150
        assert np.abs(d[:SIDE // 2].astype(int) - s[:SIDE // 2].astype(int)).mean() < 4


def test_memory_is_flat_in_the_videos_length(trained_captioner, shapes, tmp_path, monkeypatch):
    """However long the video, at most two decoded frames are alive at once (watched with weak references)."""
    captioner = frames.FrameCaptioner(load_checkpoint(trained_captioner))
    real, alive, most = video.frames, [0], []

    def watched(*a, **kw):
        for rgb in real(*a, **kw):
            alive[0] += 1
            weakref.finalize(rgb, lambda: alive.__setitem__(0, alive[0] - 1))
            most[-1] = max(most[-1], alive[0])
            yield rgb
            del rgb

    monkeypatch.setattr(frames.video, "frames", watched)
    for n_each in (3, 12):
        clip = clip_of(shapes, tmp_path / f"in{n_each}.mp4", n_each)
        most.append(0)
        assert frames.caption_video(captioner, clip, str(tmp_path / f"{n_each}.jsonl"),
                                    str(tmp_path / f"o{n_each}.mp4")) == 2 * n_each
    assert max(most) <= 2, most


def test_bad_video_arguments_are_one_line(trained_captioner, shapes, tmp_path):
    with pytest.raises(UserError, match="no such video"):
        run_eval(trained_captioner, "-input_video", tmp_path / "none.mp4")
    clip = clip_of(shapes, tmp_path / "c.mp4", 1)
    with pytest.raises(UserError, match="unknown video format"):
        run_eval(trained_captioner, "-input_video", clip, "-output_video", tmp_path / "out.txt")
    with pytest.raises(UserError, match="does not exist"):
        run_eval(trained_captioner, "-input_video", clip, "-output_json", tmp_path / "no" / "c.jsonl")
    assert not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob(".tmp-*"))


def test_precision_reaches_the_video_path(trained_captioner, shapes, tmp_path, monkeypatch):
    """-precision applies to -input_video as to -image_folder (auto = fp32 for this random-CNN model)."""
    clip = clip_of(shapes, tmp_path / "in.mp4", 1)
    seen = []

    class Spy(frames.FrameCaptioner):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            seen.append(self.precision)
    monkeypatch.setattr(frames, "FrameCaptioner", Spy)
    caps = {}
    for p in ("auto", "bf16"):
        run_eval(trained_captioner, "-input_video", clip, "-output_json", tmp_path / f"{p}.jsonl", "-precision", p)
        caps[p] = [json.loads(line)["caption"] for line in (tmp_path / f"{p}.jsonl").read_text().splitlines()]
    assert seen == ["fp32", "bf16"]
    assert len(caps["auto"]) == 2 and all(caps["auto"])
