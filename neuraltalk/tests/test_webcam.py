"""webcam.py: the live caption page gives eval.py's caption of the picture the camera shows.

A small captioner trained on the shapes world; camera frames are shapes test images (scaled up, as a
camera's picture is larger than the CNN's input) whose offline captions caption_folder gives for the same
picture saved as a file. WEBCAM_SCREENSHOT=path also saves a screenshot of the page (neuraltalk/webcam.png).
"""
import io
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image

from common import browser, video
from common.cli import UserError, parse
from common.webcam import LiveServer
from neuraltalk import webcam as nt_webcam
from neuraltalk.captioner import caption_folder, load_checkpoint
from neuraltalk.frames import FrameCaptioner
from neuraltalk.tests.conftest import NEURALTALK

SIDE = 192  # the camera's picture: a 64 x 64 shapes image scaled 3x


@pytest.fixture(scope="module")
def trained(trained_captioner):
    return trained_captioner


def camera_round_trips(rgb, tmp_path):
    """What the server may get from the page: the y4m camera's YUV 4:2:0, the page's JPEG, and the few
    grey levels by which Chromium's colour conversion differs from FFmpeg's (a mean 1.4 here)."""
    (decoded,) = video.frames(video.write_y4m(tmp_path / "one.y4m", [rgb]))
    rng = np.random.default_rng(0)
    for quality, noise in ((90, 0), (60, 0), (90, 3), (90, 3)):
        noisy = np.clip(decoded + rng.normal(0, noise, decoded.shape), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(noisy).save(buf, "JPEG", quality=quality)
        yield np.asarray(Image.open(buf).convert("RGB"))


@pytest.fixture(scope="module")
def camera_pictures(shapes, trained, tmp_path_factory):
    """Two scaled-up shapes images with different offline captions that the camera's round trip keeps
    (a briefly trained model can flip a square to a circle on a few grey levels): [(rgb, caption)], the
    folder of candidates and caption_folder's predictions for it."""
    root, _ = shapes
    folder, scratch = tmp_path_factory.mktemp("camera"), tmp_path_factory.mktemp("scratch")
    for k in range(1, 17):
        im = Image.open(root / "images" / f"{k}.png").convert("RGB").resize((SIDE, SIDE), Image.NEAREST)
        im.save(folder / f"{k:02d}.png")
    ck = load_checkpoint(trained)
    live = FrameCaptioner(ck, beam_size=2)
    preds = caption_folder(live.model, ck["ix_to_word"], str(folder), ck["cnn_info"], "cpu",
                           beam_size=2, sample_max=True, banned=live.sample_kw["banned"])
    picked, seen = [], set()
    for p in preds:
        rgb = np.asarray(Image.open(p["path"]))
        if p["caption"] not in seen and all(live.caption(x) == p["caption"] for x in camera_round_trips(rgb, scratch)):
            seen.add(p["caption"])
            picked.append((rgb, p["caption"]))
    assert len(picked) >= 2, "the trained model should caption shapes images differently"
    return picked[:2], folder, preds


def test_model_path_gives_eval_captions(trained, camera_pictures):
    """FrameCaptioner on an array == caption_folder on the same picture as a file; also through POST /frame."""
    _, folder, preds = camera_pictures
    live = FrameCaptioner(load_checkpoint(trained), beam_size=2)
    for p in preds:
        assert live.caption(np.asarray(Image.open(p["path"]))) == p["caption"]
    rgb, cap = camera_pictures[0][0]
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    with LiveServer(live, port=0) as s:
        req = urllib.request.Request(s.url + "frame", data=buf.getvalue(), method="POST")
        r = json.loads(urllib.request.urlopen(req, timeout=20).read())
    assert r["captions"] == [cap] and r["boxes"] == [] and (r["width"], r["height"]) == (SIDE, SIDE)


def nearest(received, a, b):
    """(mean distance, 0 for A / 1 for B) of each received frame to the nearer of the two pictures."""
    return [min((np.abs(rgb.astype(int) - ref.astype(int)).mean(), k) for k, ref in ((0, a), (1, b)))
            for rgb, _ in list(received)]


def test_page_with_a_fake_camera_shows_the_captions(trained, camera_pictures, tmp_path):
    """The camera plays picture A for 2 s, then B (looped): the server receives those pictures and the page
    shows the model's captions of the frames it received (its offline captions, but for the few frames whose
    camera colour conversion flips this briefly trained model's answer)."""
    browser.require_chromium()
    (a, cap_a), (b, cap_b) = camera_pictures[0]
    clip = video.write_y4m(tmp_path / "clip.y4m", [a] * 20 + [b] * 20, fps=10)
    live = FrameCaptioner(load_checkpoint(trained), beam_size=2)
    received = []

    def recording(rgb):
        answer = live(rgb)
        received.append((rgb, answer["captions"][0]))
        return answer

    with LiveServer(recording, title="neuraltalk", port=0) as s, \
            browser.headless_chromium(extra_args=browser.fake_camera_args(clip)) as d:
        d.get(s.url)
        shown, deadline, state = set(), time.time() + 60, {}
        while time.time() < deadline:   # until both pictures reached the server (a fast machine does 20
            state = d.execute_script("return window.liveState") or {}   # frames within A's 2 s)
            shown.update(state.get("captions") or [])
            if state.get("frames", 0) >= 20 and {k for d_, k in nearest(received, a, b) if d_ < 12} == {0, 1}:
                break
            time.sleep(0.1)
        assert state["error"] is None and state["frames"] >= 20
        assert "frames/s" in d.find_element("id", "status").text
        now, text = d.execute_script("return [window.liveState.captions, "
                                     "document.getElementById('captions').textContent]")  # one moment
        assert text == " | ".join(now)
        shot = os.environ.get("WEBCAM_SCREENSHOT")
        if shot:
            d.set_window_size(640, 640)
            d.save_screenshot(shot)
    # what the server got is the camera's picture A or B (through YUV 4:2:0 and the page's JPEG)
    near = nearest(received, a, b)
    # (a camera's first frame or two may still be black)
    assert sum(d < 12 for d, _ in near) >= 0.8 * len(near) and {k for d, k in near if d < 12} == {0, 1}
    # the page showed only what the model answered for those frames, and the offline captions dominate
    assert shown <= {c for _, c in received}
    by_picture = [[c for (_, c), (d, k) in zip(received, near) if k == j and d < 12] for j in (0, 1)]
    assert by_picture[0].count(cap_a) > len(by_picture[0]) / 2 or by_picture[1].count(cap_b) > len(by_picture[1]) / 2


def test_bf16_gives_the_fp32_captions_of_neuraltalk2():
    """-precision bf16 (auto on an AVX512-BF16/AMX CPU; emulated, slowly, on others): the live path captions
    the three frames of the Lua-written neuraltalk2 fixture (a trained CNN) as fp32 does, which is what
    neuraltalk2's own code computed; auto keeps fp32 for a random-weight CNN, as eval.py."""
    from common import t7
    from neuraltalk.frames import live_precision
    fix = NEURALTALK / "tests" / "lua" / "fixtures"
    lua = t7.load(fix / "lua_outputs.t7")
    ck = load_checkpoint(fix / "model_id1-501-1448236541.t7_cpu.t7")
    frames = [np.asarray(Image.open(fix / "images" / n.decode()).convert("RGB")) for n in lua[b"files"]]
    caps = {}
    for precision in ("fp32", "bf16"):
        live = FrameCaptioner(ck, beam_size=1, suppress_UNK=False, precision=precision)
        assert live.model.precision == precision
        caps[precision] = [live.caption(rgb) for rgb in frames]
    assert caps["bf16"] == caps["fp32"] == [c.decode() for c in lua[b"cpu"][b"greedy_captions"]]
    random_cnn = {"cnn_info": {"cnn_weights": ""}}
    assert live_precision("auto", random_cnn, "cpu") == "fp32" and live_precision("bf16", random_cnn, "cpu") == "bf16"


def test_command_serves_the_page_on_loopback(trained):
    """python neuraltalk/webcam.py -model X -port 0: prints the address, serves, Ctrl-C stops it cleanly."""
    env = dict(os.environ, PYTHONPATH=str(NEURALTALK.parent), OMP_NUM_THREADS="1")
    p = subprocess.Popen([sys.executable, str(NEURALTALK / "webcam.py"), "-model", str(trained), "-port", "0",
                          "-gpuid", "-1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # Ctrl-C works even
    try:  # when the suite runs in the background (which starts with SIGINT ignored)
        line = p.stdout.readline()
        assert "open http://127.0.0.1:" in line, (line, p.stderr.read() if p.poll() is not None else "")
        url = line.split("open ")[1].split()[0]
        assert b"getUserMedia" in urllib.request.urlopen(url, timeout=10).read()
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=20)
        assert p.returncode == 0 and "warning" not in err and "Traceback" not in err
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_missing_model_is_one_line():
    with pytest.raises(UserError, match="give -model"):
        nt_webcam.main(parse(nt_webcam.WebcamOptions, ["-gpuid", "-1"]))
    with pytest.raises(SystemExit):
        parse(nt_webcam.WebcamOptions, ["-port", "70000"])
