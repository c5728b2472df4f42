import io
import json
import threading
import time
import urllib.error
import urllib.request

import numpy as np
from PIL import Image

from common import browser, video
from common.webcam import LiveServer


def jpeg(rgb):
    b = io.BytesIO()
    Image.fromarray(rgb).save(b, "JPEG", quality=95)
    return b.getvalue()


def post(url, data, timeout=20):
    req = urllib.request.Request(url + "frame", data=data, method="POST", headers={"Content-Type": "image/jpeg"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def white_square(rgb):
    """The test's model: the box around the bright pixels and the background's colour name."""
    ys, xs = np.nonzero(rgb.min(axis=2) > 200)
    bg = rgb[0, 0].astype(int)
    name = ["red", "green", "blue"][int(np.argmax(bg))]
    if len(xs) == 0:
        return {"captions": [f"a {name} picture"]}
    return {"captions": [f"a white square on {name}"],
            "boxes": [[xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]]}


def frame(color=(200, 0, 0), box=(40, 30, 24, 16), size=(96, 128)):
    rgb = np.zeros((*size, 3), np.uint8)
    rgb[:] = color
    x, y, w, h = box
    rgb[y:y + h, x:x + w] = 255
    return rgb


def test_answers_a_frame_with_boxes_in_its_pixels():
    with LiveServer(white_square, port=0) as s:
        code, r = post(s.url, jpeg(frame()))
        assert code == 200 and r["captions"] == ["a white square on red"]
        x, y, w, h = r["boxes"][0]
        assert abs(x - 40) <= 1 and abs(y - 30) <= 1 and abs(w - 24) <= 2 and abs(h - 16) <= 2
        assert (r["width"], r["height"]) == (128, 96)
        page = urllib.request.urlopen(s.url, timeout=10).read().decode()
        assert "getUserMedia" in page and "frames/s" in page


def test_large_frames_are_scaled_and_bad_bodies_refused():
    with LiveServer(white_square, port=0, max_side=64, max_bytes=50_000) as s:
        code, r = post(s.url, jpeg(frame(size=(96, 128))))
        assert code == 200 and (r["width"], r["height"]) == (64, 48)   # longest side bounded
        assert abs(r["boxes"][0][0] - 20) <= 1                          # the box in the scaled frame
        assert post(s.url, b"not an image")[0] == 400
        big = np.random.default_rng(0).integers(0, 255, (400, 400, 3), dtype=np.uint8)
        code, r = post(s.url, jpeg(big))
        assert code == 413 and "at most 50000" in r["error"]


def test_a_model_error_is_answered_and_the_server_goes_on():
    calls = []

    def flaky(rgb):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return white_square(rgb)

    with LiveServer(flaky, port=0) as s:
        code, r = post(s.url, jpeg(frame()))
        assert code == 500 and "boom" in r["error"]
        assert post(s.url, jpeg(frame()))[0] == 200


def test_the_newest_frame_wins_when_the_model_is_slow():
    """8 frames arrive at once at a model taking 0.3 s: the ones overtaken are answered `dropped` at once,
    the model sees at most 3 (the one running, then the newest), and the last one sent is answered."""
    seen = []

    def slow(rgb):
        seen.append(int(rgb[0, 0, 1]))
        time.sleep(0.3)
        return {"captions": [str(int(rgb[0, 0, 1]))]}

    with LiveServer(slow, port=0) as s:
        results = {}

        def send(k):
            results[k] = post(s.url, jpeg(frame(color=(0, 20 * k + 20, 0))))

        threads = []
        for k in range(8):
            threads.append(threading.Thread(target=send, args=(k,)))
            threads[-1].start()
            time.sleep(0.02)
        for t in threads:
            t.join(timeout=20)
        answered = [k for k, (code, r) in results.items() if code == 200 and not r.get("dropped")]
        dropped = [k for k, (code, r) in results.items() if r.get("dropped")]
        assert len(results) == 8 and len(answered) + len(dropped) == 8
        # no queue of 8 x 0.3 s: the model ran at most 3 frames, the other 5+ were answered `dropped`
        assert len(seen) <= 3 and len(dropped) >= 5 and 7 in answered


def test_y4m_is_what_a_decoder_reads(tmp_path):
    frames = [frame(color=(200, 30, 30)), frame(color=(30, 30, 200), box=(10, 10, 20, 20))]
    p = video.write_y4m(tmp_path / "clip.y4m", frames, fps=5)
    got = list(video.frames(p))
    assert len(got) == 2
    for a, b in zip(got, frames):
        assert np.abs(a.astype(int) - b.astype(int)).mean() < 6


def test_page_with_a_fake_camera_draws_the_models_answers(tmp_path):
    browser.require_chromium()
    clip = video.write_y4m(tmp_path / "clip.y4m", [frame(color=(0, 0, 200), size=(240, 320),
                                                          box=(100, 80, 60, 40))] * 10, fps=10)
    with LiveServer(white_square, port=0) as s, \
            browser.headless_chromium(extra_args=browser.fake_camera_args(clip)) as d:
        d.get(s.url)
        deadline = time.time() + 30
        state = {}
        while time.time() < deadline:
            state = d.execute_script("return window.liveState")
            if state and state["frames"] >= 3:
                break
            time.sleep(0.2)
        assert state["error"] is None and state["frames"] >= 3
        assert state["captions"] == ["a white square on blue"]
        assert "frames/s" in d.find_element("id", "status").text
        # the box is drawn where the square is: sample the overlay canvas at the box's edge
        px = d.execute_script("""const c = document.getElementById('overlay');
            const g = c.getContext('2d'); const k = c.width / 320;
            return [c.width, Array.from(g.getImageData(Math.round(100 * k), Math.round(100 * k), 1, 1).data),
                    Array.from(g.getImageData(Math.round(20 * k), Math.round(20 * k), 1, 1).data)];""")
        width, on_edge, away = px
        assert width == 320 and on_edge[3] > 0 and away[3] == 0
        d.save_screenshot(str(tmp_path / "page.png"))
