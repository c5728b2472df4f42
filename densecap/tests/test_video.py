"""run_model.py -input_video: one JSON line per frame (the model's answer for that decoded frame, at its time),
the frames drawn into -output_video with the audio kept, memory flat in the video's length."""
import io
import json
import weakref

import numpy as np
import pytest
from PIL import Image

from common import video
from common.cli import UserError, parse
from densecap import frames, run_model
from densecap.checkpoints import load_model

SIDE = 256
FLAGS = ["-image_size", "64", "-num_proposals", "10", "-gpu", "-1", "-num_to_draw", "3", "-precision", "fp32"]  # as describe()


def big(rgb):
    return np.asarray(Image.fromarray(rgb).resize((SIDE, SIDE), Image.NEAREST))


def clip_of(scenes, path, n_each, audio=False):
    """Scene A for n_each frames, then scene B, at 10 frames/s."""
    a, b = (big(rgb) for rgb, _ in scenes)
    return video.make_clip(path, lambda k: a if k < n_each else b, 2 * n_each, fps=10, audio=audio)


def run(ck, *args):
    return run_model.main(parse(run_model.RunOptions, ["-checkpoint", str(ck), *FLAGS, *[str(a) for a in args]]))


def test_per_frame_json_and_drawn_video_with_audio(two_scene_model, tmp_path):
    ck, scenes = two_scene_model
    clip = clip_of(scenes, tmp_path / "in.mp4", 5, audio=True)
    n = run(ck, "-input_video", clip, "-output_json", tmp_path / "f.jsonl", "-output_video", tmp_path / "out.mp4")
    rows = [json.loads(line) for line in (tmp_path / "f.jsonl").read_text().splitlines()]
    assert n == len(rows) == 10 and [r["frame"] for r in rows] == list(range(10))
    np.testing.assert_allclose([r["time"] for r in rows], np.arange(10) / 10)
    # each row is the model's answer (as the live page and run_model.py on a file give it) for that frame
    model, itos, _ = load_model(ck)
    for r, rgb in zip(rows, video.frames(clip)):
        want = frames.describe(model, rgb, itos, 64, 0.7, 0.3, 10)
        assert r["captions"] == want["captions"]
        np.testing.assert_allclose(r["boxes"], want["boxes"], atol=0.01)
    # after H.264 the model still names scene A in A's frames and B in B's
    assert [r["captions"][0] for r in rows] == [scenes[0][1]] * 5 + [scenes[1][1]] * 5
    info = video.probe(tmp_path / "out.mp4")
    assert (info.width, info.height, info.has_audio) == (SIDE, SIDE, True)
    drawn = list(video.frames(tmp_path / "out.mp4"))
    assert len(drawn) == 10
    # the drawn video is the input with the top box's outline on it: along its top edge the pixels change
    src = list(video.frames(clip))
    for r, d, s in zip(rows, drawn, src):
        x, y, w, h = (int(round(v)) for v in r["boxes"][0])
        y = min(max(y, 0), SIDE - 1)
        edge = slice(max(x + 4, 0), min(x + w - 4, SIDE))
        assert np.abs(d[y, edge].astype(int) - s[y, edge].astype(int)).mean() > 30
        assert np.abs(d[-8:, -8:].astype(int) - s[-8:, -8:].astype(int)).mean() < 6 or h + y >= SIDE - 8


def test_memory_is_flat_in_the_videos_length(two_scene_model, tmp_path, monkeypatch):
    """Frames are decoded, run, written and dropped one at a time: however long the video, at most two
    decoded frames are alive at once (each decoded frame is watched with a weak reference)."""
    ck, scenes = two_scene_model
    model, itos, _ = load_model(ck)
    opt = parse(run_model.RunOptions, FLAGS)
    real, alive, most = video.frames, [0], []

    def watched(*a, **kw):
        for rgb in real(*a, **kw):
            alive[0] += 1
            weakref.finalize(rgb, lambda: alive.__setitem__(0, alive[0] - 1))
            most[-1] = max(most[-1], alive[0])
            yield rgb
            del rgb

    monkeypatch.setattr(frames.video, "frames", watched)
    for n_each in (4, 16):
        clip = clip_of(scenes, tmp_path / f"in{n_each}.mp4", n_each)
        most.append(0)
        n = frames.run_video(model, itos, clip, str(tmp_path / f"{n_each}.jsonl"), str(tmp_path / f"o{n_each}.mp4"),
                             opt)
        assert n == 2 * n_each
    assert max(most) <= 2, most


def test_bad_video_arguments_are_one_line(two_scene_model, tmp_path):
    ck, _ = two_scene_model
    with pytest.raises(UserError, match="no such video"):
        run(ck, "-input_video", tmp_path / "none.mp4")
    (tmp_path / "not.mp4").write_text("hello")
    with pytest.raises(UserError, match="not a video"):
        run(ck, "-input_video", tmp_path / "not.mp4")
    clip = video.make_clip(tmp_path / "c.mp4", lambda k: np.zeros((64, 64, 3), np.uint8), 2)
    with pytest.raises(UserError, match="unknown video format"):
        run(ck, "-input_video", clip, "-output_video", tmp_path / "out.txt")
    with pytest.raises(UserError, match="does not exist"):
        run(ck, "-input_video", clip, "-output_json", tmp_path / "no" / "f.jsonl")
    with pytest.raises(UserError, match="differ from the input"):
        run(ck, "-input_video", clip, "-output_video", clip)
    assert not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob(".tmp-*"))


def test_progress_bar_on_a_terminal(two_scene_model, tmp_path):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    ck, scenes = two_scene_model
    model, itos, _ = load_model(ck)
    clip, err = clip_of(scenes, tmp_path / "in.mp4", 2), Terminal()
    frames.run_video(model, itos, clip, str(tmp_path / "f.jsonl"), opt=parse(run_model.RunOptions, FLAGS), err=err)
    assert "densecap" in err.getvalue() and "4/4" in err.getvalue()


def test_precision_reaches_the_video_path(two_scene_model, tmp_path, monkeypatch):
    """-precision applies to -input_video as to images: bf16 runs the trunk and fc6/fc7 in bf16 (emulated on
    CPUs without it), and still names each scene as fp32 does."""
    ck, scenes = two_scene_model
    clip = clip_of(scenes, tmp_path / "in.mp4", 1)
    seen = []
    from densecap.model import DenseCapModel

    def spy(self, precision="fp32"):
        seen.append(precision)
        return original(self, precision)
    original = DenseCapModel.to_inference
    monkeypatch.setattr(DenseCapModel, "to_inference", spy)
    caps = {}
    for p in ("fp32", "bf16"):
        run(ck, "-input_video", clip, "-output_json", tmp_path / f"{p}.jsonl", "-precision", p)
        caps[p] = [json.loads(line)["captions"][0] for line in (tmp_path / f"{p}.jsonl").read_text().splitlines()]
    assert seen == ["fp32", "bf16"]
    assert caps["bf16"] == caps["fp32"] == [scenes[0][1], scenes[1][1]]
