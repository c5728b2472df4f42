"""webcam.py: the live page shows run_model.py's boxes and captions of the picture the camera shows.

A tiny model trained on two one-shape scenes (conftest.two_scene_model) tells them apart; the camera plays
them scaled up 4x (a camera's picture is larger than the model's input). WEBCAM_SCREENSHOT=path also saves a
screenshot of the page (densecap/webcam.png).
"""
import io
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from common import browser, video
from common.cli import UserError, parse
from common.webcam import LiveServer
from densecap import run_model
from densecap import webcam as dc_webcam

DENSECAP = Path(__file__).resolve().parents[1]
SIDE = 256  # the camera's picture: a 64 x 64 scene scaled 4x
FLAGS = ["-image_size", "64", "-num_proposals", "10", "-gpu", "-1"]


def big(rgb):
    return np.asarray(Image.fromarray(rgb).resize((SIDE, SIDE), Image.NEAREST))


@pytest.fixture(scope="module")
def offline(two_scene_model, tmp_path_factory):
    """run_model.py (its command-line path) on the two camera pictures saved as files: {name: result}."""
    ck, scenes = two_scene_model
    d = tmp_path_factory.mktemp("camera")
    for k, (rgb, _) in enumerate(scenes):
        Image.fromarray(big(rgb)).save(d / f"{k}.png")
    results = run_model.main(parse(run_model.RunOptions, ["-checkpoint", str(ck), "-input_dir", str(d),
                                                          "-output_vis_dir", str(d / "vis"), *FLAGS,
                                                          "-precision", "fp32"]))  # the live path's (fp32)
    return sorted(results, key=lambda r: r["img_name"])


def live_model(ck, *extra):
    """The model as webcam.py loads it (once, channels-last, -precision fp32)."""
    opt = parse(dc_webcam.WebcamOptions, ["-checkpoint", str(ck), *FLAGS, "-precision", "fp32", *extra])
    model, itos, _ = dc_webcam.load_live_model(opt, torch.device("cpu"))
    return dc_webcam.LiveDenseCap(model, itos, opt)


def test_model_path_gives_run_model_results(two_scene_model, offline):
    """LiveDenseCap on a frame == run_model.py on the frame saved as a file (boxes scaled from -image_size
    back to the frame); the trained model's top caption is each scene's phrase; also through POST /frame."""
    ck, scenes = two_scene_model
    live = live_model(ck, "-boxes_to_show", "3")
    for (rgb, phrase), res in zip(scenes, offline):
        r = live.describe(big(rgb))
        assert r["captions"] == res["captions"] and r["captions"][0] == phrase
        np.testing.assert_allclose(np.array(r["boxes"]), np.array(res["boxes"]) * SIDE / 64, atol=2e-3)
        np.testing.assert_allclose(r["scores"], res["scores"], atol=1e-5)
    buf = io.BytesIO()
    Image.fromarray(big(scenes[1][0])).save(buf, "PNG")
    with LiveServer(live, port=0) as s:
        req = urllib.request.Request(s.url + "frame", data=buf.getvalue(), method="POST")
        r = json.loads(urllib.request.urlopen(req, timeout=20).read())
    assert r["captions"] == offline[1]["captions"][:3] and len(r["boxes"]) == 3
    assert (r["width"], r["height"]) == (SIDE, SIDE)


def test_bf16_gives_the_fp32_top_captions(two_scene_model, offline):
    """-precision bf16 (what auto picks on an AVX512-BF16/AMX CPU; emulated, slowly, on others) answers each
    camera picture with run_model.py's fp32 top caption and nearly its boxes; fp32 is run_model.py's exactly."""
    ck, scenes = two_scene_model
    for precision in ("fp32", "bf16"):
        opt = parse(dc_webcam.WebcamOptions, ["-checkpoint", str(ck), *FLAGS, "-precision", precision])
        model, itos, ran = dc_webcam.load_live_model(opt, torch.device("cpu"))
        assert ran == precision and model.precision == precision
        live = dc_webcam.LiveDenseCap(model, itos, opt)
        for (rgb, phrase), res in zip(scenes, offline):
            r = live.describe(big(rgb))
            assert r["captions"][0] == res["captions"][0] == phrase
            np.testing.assert_allclose(r["boxes"][0], np.array(res["boxes"][0]) * SIDE / 64,
                                       atol=2e-3 if precision == "fp32" else 0.05 * SIDE)


def test_page_with_a_fake_camera_shows_the_captions(two_scene_model, offline, tmp_path):
    """The camera plays scene A for 2 s, then B (looped). Wait (deadline 60 s) until the page has shown
    run_model.py's top caption of each scene; the page only ever shows what the model answered for a frame
    the server received, and it draws the boxes."""
    browser.require_chromium()
    ck, ((a, cap_a), (b, cap_b)) = two_scene_model
    clip = video.write_y4m(tmp_path / "clip.y4m", [big(a)] * 20 + [big(b)] * 20, fps=10)
    live, answers = live_model(ck), []

    def recording(rgb):
        out = live(rgb)
        answers.append(out["captions"])
        return out

    with LiveServer(recording, title="densecap", port=0, send_side=64) as s, \
            browser.headless_chromium(extra_args=browser.fake_camera_args(clip)) as d:
        d.get(s.url)
        shown, deadline, state = [], time.time() + 60, {}
        while time.time() < deadline:   # a fast machine answers many frames of A before B is on; a slow
            state = d.execute_script("return window.liveState") or {}   # one few: wait for what is needed
            if state.get("captions") and (not shown or shown[-1] != state["captions"]):
                shown.append(state["captions"])
            if {c[0] for c in shown} >= {cap_a, cap_b} or state.get("error"):
                break
            time.sleep(0.05)
        assert state.get("error") is None
        assert {c[0] for c in shown} >= {cap_a, cap_b}, shown
        assert "frames/s" in d.find_element("id", "status").text
        drawn = d.execute_script("const c = document.getElementById('overlay');"
                                 "return [c.width, c.getContext('2d').getImageData(0, 0, c.width, c.height)"
                                 ".data.filter((v, i) => i % 4 == 3 && v > 0).length]")
        assert drawn[0] == SIDE and drawn[1] > 100   # the boxes are on the overlay, at the video's size
        shot = os.environ.get("WEBCAM_SCREENSHOT")
        if shot:
            d.set_window_size(560, 640)
            d.save_screenshot(shot)
    assert all(c in answers for c in shown)   # the page showed only the model's answers
    # the camera's frames (YUV 4:2:0, the page's 64-px JPEG) give the model run_model.py's top caption
    assert offline[0]["captions"][0] == cap_a and offline[1]["captions"][0] == cap_b
    assert sum(c[0] in (cap_a, cap_b) for c in answers) >= 0.8 * len(answers)


def test_command_serves_the_page_on_loopback(two_scene_model):
    """python densecap/webcam.py -checkpoint X -port 0: prints the address, serves, Ctrl-C stops it cleanly."""
    ck, _ = two_scene_model
    env = dict(os.environ, PYTHONPATH=str(DENSECAP.parent), OMP_NUM_THREADS="1")
    p = subprocess.Popen([sys.executable, str(DENSECAP / "webcam.py"), "-checkpoint", str(ck), "-port", "0",
                          "-gpu", "-1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
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


def test_bad_arguments_are_one_line(tmp_path):
    with pytest.raises(UserError, match="give -checkpoint"):
        dc_webcam.main(parse(dc_webcam.WebcamOptions, ["-gpu", "-1"]))
    with pytest.raises(UserError):
        dc_webcam.main(parse(dc_webcam.WebcamOptions, ["-checkpoint", str(tmp_path / "none.pt"), "-gpu", "-1"]))
    for bad in (["-port", "70000"], ["-num_proposals", "0"], ["-image_size", "8"]):
        with pytest.raises(SystemExit):
            parse(dc_webcam.WebcamOptions, bad)
