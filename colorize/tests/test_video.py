"""colorize.py in.mp4 out.mp4: per-frame colorization equals the photo path, shots split at scene cuts, chroma
smoothed within a shot (less flicker, the same picture), audio kept, bad input one line."""
import numpy as np
import pytest
import skimage.data
from PIL import Image
from skimage.color import lab2rgb

from colorize import colorize, metrics, pipeline
from colorize import video as cvideo
from common import video
from common.cli import UserError, parse

H, W = 96, 128


def scene(name):
    img = getattr(skimage.data, name)()
    return np.asarray(Image.fromarray(img).resize((W, H), Image.BILINEAR))


def noisy(rgb, rng, sigma=3):
    """A static camera: the same scene each frame, with sensor noise."""
    return np.clip(rgb + rng.normal(0, sigma, rgb.shape), 0, 255).astype(np.uint8)


def opts(*args):
    return parse(colorize.ColorizeOptions, [str(a) for a in args])


def test_each_frame_alone_is_the_photo_path(tiny_pt, tmp_path):
    """-smooth 0: every frame is colorized as colorize.py colorizes the same frame saved as a photo."""
    rng = np.random.default_rng(0)
    frames = [noisy(scene("astronaut"), rng) for _ in range(3)]
    col = colorize.Colorizer(opts("x.png", "y.png", "-model", tiny_pt, "-gpu", -1))
    vc = cvideo.VideoColorizer(col.net, col.mean, col.device, col.recombine, precision=col.precision, smooth=0)
    for k, rgb in enumerate(frames):
        Image.fromarray(rgb).save(tmp_path / f"{k}.png")
        col(tmp_path / f"{k}.png", tmp_path / f"{k}_out.png")
        np.testing.assert_array_equal(vc(rgb), np.asarray(Image.open(tmp_path / f"{k}_out.png")))


def test_scene_cuts_start_new_shots():
    rng = np.random.default_rng(0)
    vc = cvideo.VideoColorizer(None, 0.45, "cpu")
    a, b = scene("astronaut"), scene("coffee")
    # (is_cut alone: the thumbnails of noisy frames of one scene differ far less than two scenes')
    cuts = [k for k, rgb in enumerate([noisy(a, rng) for _ in range(5)] + [noisy(b, rng) for _ in range(4)])
            if vc.is_cut(cvideo.luminance(rgb))]
    assert cuts == [0, 5]


def test_smoothing_steadies_the_chroma_and_keeps_the_picture(tiny_pt):
    """On a static-camera clip with noise, and on one with a cut: the network's chroma (ab, Lab units) moves
    less than half as much between frames with -smooth 0.8 (not counting the cut); the output's flicker
    (mean |delta ab| of the RGB frames; here mostly uint8 rounding, this tiny random model's colours are faint)
    does not rise, and PSNR against the colour frames stays within 0.05 dB."""
    net, ck = pipeline.load_model(tiny_pt, "cpu")
    rng = np.random.default_rng(1)
    a, b = scene("astronaut"), scene("coffee")
    for name, truth in {"static": [a] * 8, "cut": [a] * 4 + [b] * 4}.items():
        frames = [noisy(t, rng, 4) for t in truth]
        res = {}
        for smooth in (0, 0.8):
            vc = cvideo.VideoColorizer(net, ck["mean"], "cpu", "lab", smooth=smooth)
            out, moves, prev = [], [], None
            for k, f in enumerate(frames):
                out.append(vc(f))
                ab = (2 * vc.ab - 1) * 100
                if prev is not None and k not in vc.cuts:
                    moves.append(np.abs(ab - prev).mean())
                prev = ab
            assert vc.cuts == ([0] if name == "static" else [0, 4])
            res[smooth] = (np.mean(moves), metrics.flicker(out, vc.cuts),
                           np.mean([metrics.psnr(o, t) for o, t in zip(out, truth)]))
        assert res[0.8][0] < 0.5 * res[0][0], (name, res)
        assert res[0.8][1] <= res[0][1], (name, res)
        assert res[0.8][2] > res[0][2] - 0.05, (name, res)


def test_flicker_is_mean_delta_ab():
    """Two frames of uniform Lab colour (50, 20, 0) and (50, 20, 10): |delta ab| = (0 + 10) / 2 = 5; a cut
    between them leaves no pair."""
    f = [(lab2rgb(np.full((4, 4, 3), lab, float)) * 255 + 0.5).astype(np.uint8) for lab in ((50, 20, 0), (50, 20, 10))]
    assert metrics.flicker(f) == pytest.approx(5, abs=0.6)
    assert metrics.flicker(f, cuts=[0, 1]) == 0
    assert metrics.flicker([f[0], f[0], f[0]]) == 0


def test_command_colorizes_a_video_with_its_audio(tiny_pt, tmp_path, capsys):
    rng = np.random.default_rng(2)
    a, b = scene("astronaut"), scene("coffee")
    src = video.make_clip(tmp_path / "in.mp4", lambda k: noisy(a if k < 5 else b, rng), 10, audio=True)
    n = colorize.main(opts(src, tmp_path / "out.mp4", "-model", tiny_pt, "-gpu", -1))
    assert n == 10 and "2 shot(s), audio kept" in capsys.readouterr().err
    info = video.probe(tmp_path / "out.mp4")
    assert (info.width, info.height, info.frames, info.has_audio) == (W, H, 10, True)
    # the output's luminance is the input's (the 'yuv' recombination keeps Y), its colour the model's
    out, inp = list(video.frames(tmp_path / "out.mp4")), list(video.frames(src))
    for o, i in zip(out, inp):
        assert np.abs(cvideo.luminance(o) - cvideo.luminance(i)).mean() < 0.02
    n = colorize.main(opts(src, tmp_path / "few.mkv", "-model", tiny_pt, "-gpu", -1, "-max_frames", 3))
    assert n == 3 and len(list(video.frames(tmp_path / "few.mkv"))) == 3


def test_bad_video_arguments_are_one_line(tiny_pt, tmp_path):
    src = video.make_clip(tmp_path / "in.mp4", lambda k: scene("astronaut"), 2)
    for args, match in ((["-smooth", 1], "-smooth"), (["-scene_cut", 0], "-scene_cut")):
        with pytest.raises(UserError, match=match):
            colorize.main(opts(src, tmp_path / "o.mp4", "-model", tiny_pt, *args))
    with pytest.raises(UserError, match="unknown video format"):
        colorize.main(opts(src, tmp_path / "o.png", "-model", tiny_pt))
    with pytest.raises(UserError, match="differ from the input"):
        colorize.main(opts(src, src, "-model", tiny_pt))
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    with pytest.raises(UserError, match="not a video"):
        colorize.main(opts(tmp_path / "bad.mp4", tmp_path / "o.mp4", "-model", tiny_pt))
    assert not (tmp_path / "o.mp4").exists()
