import io
import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from common import checkpoint
from common.browser import headless_chromium, require_chromium, serve_folder
from common.cli import UserError, parse
from densecap import run_model
from densecap.tests.cli import assert_cpu_note_then_one_error, cli_without_gpu_flag, main_without_gpu


def run(args):
    return run_model.main(parse(run_model.RunOptions, args + ["-gpu", "-1"]))


def test_input_dir_skips_bad_files_writes_original_schema(tiny_checkpoint, shapes_dir, tmp_path, capsys):
    d = tmp_path / "in"
    d.mkdir()
    for f in shapes_dir.iterdir():
        (d / f.name).write_bytes(f.read_bytes())
    (d / "notes.txt").write_text("not an image")
    (d / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (d / ".hidden.png").write_bytes(b"")
    vis = tmp_path / "vis" / "data"
    results = run(["-checkpoint", str(tiny_checkpoint), "-input_dir", str(d), "-image_size", "200",
                   "-output_vis_dir", str(vis), "-output_dir", str(tmp_path / "drawn"), "-num_proposals", "50"])
    err = capsys.readouterr().err
    assert "skipping" in err and "notes.txt" in err and "broken.jpg" in err and ".hidden" not in err
    data = json.load(open(vis / "results.json"))
    assert [r["img_name"] for r in data["results"]] == ["scene0.png", "scene1.png", "scene2.png"]
    assert data["results"] == results and data["opt"]["num_proposals"] == 50
    for r in data["results"]:
        assert set(r) == {"img_name", "boxes", "scores", "captions"}
        assert len(r["boxes"]) == len(r["scores"]) == len(r["captions"]) > 0
        assert r["scores"] == sorted(r["scores"], reverse=True)   # the final NMS order
        for x, y, w, h in r["boxes"]:   # xywh inside the resized (200 x 200) image
            assert 0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= 200.5 and y + h <= 200.5
        assert Image.open(vis / r["img_name"]).size == (200, 200)
        assert Image.open(tmp_path / "drawn" / r["img_name"]).size == (200, 200)
    assert (tmp_path / "vis" / "view_results.html").exists()


def test_bad_inputs_are_one_line_errors(tiny_checkpoint, tmp_path):
    with pytest.raises(UserError, match="no such image"):
        run(["-checkpoint", str(tiny_checkpoint), "-input_image", str(tmp_path / "nope.jpg")])
    bad = tmp_path / "bad.jpg"
    bad.write_text("hello")
    with pytest.raises(UserError, match="not an image this program can read"):
        run(["-checkpoint", str(tiny_checkpoint), "-input_image", str(bad), "-output_vis_dir", str(tmp_path / "v")])
    other = checkpoint.save(tmp_path / "other.pt", "charrnn", {"model": {}})
    with pytest.raises(UserError, match="charrnn checkpoint, expected a densecap"):
        run(["-checkpoint", other, "-input_image", str(bad)])
    with pytest.raises(UserError, match="give one of"):
        run(["-checkpoint", str(tiny_checkpoint)])


def test_viewer_shows_boxes_and_captions_in_a_browser(tmp_path):
    require_chromium()
    data = tmp_path / "vis" / "data"
    data.mkdir(parents=True)
    Image.new("RGB", (200, 100), "white").save(data / "a.png")
    Image.new("RGB", (100, 200), "gray").save(data / "b.png")
    results = [{"img_name": "a.png", "boxes": [[10, 10, 50, 40], [100, 20, 60, 60], [5, 5, 20, 20]],
                "scores": [3.0, 2.0, 1.0], "captions": ["a red circle", "a blue square", "a tiny dot"]},
               {"img_name": "b.png", "boxes": [[0, 0, 100, 100]], "scores": [0.5], "captions": ["a gray wall"]}]
    (data / "results.json").write_text(json.dumps({"results": results, "opt": {}}))
    run_model.write_results(results, parse(run_model.RunOptions, ["-output_vis_dir", str(data)]), open("/dev/null", "w"))
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with serve_folder(tmp_path / "vis") as url, headless_chromium() as driver:
        driver.get(url + "/view_results.html")
        boxes = lambda: driver.find_elements(By.CSS_SELECTOR, "#stage .box")
        caps = lambda: [e.text.split(" (")[0] for e in driver.find_elements(By.CSS_SELECTOR, "#captions li")]
        WebDriverWait(driver, 10).until(lambda d: len(boxes()) == 3)
        assert caps() == ["a red circle", "a blue square", "a tiny dot"]
        first = boxes()[0]
        assert first.get_attribute("data-caption") == "a red circle"
        assert (first.size["width"], first.size["height"]) == (50, 40)   # image shown at natural size
        body = driver.find_element(By.TAG_NAME, "body")
        body.send_keys("s")                       # fewer boxes
        WebDriverWait(driver, 5).until(lambda d: len(boxes()) == 2)
        body.send_keys("t")                       # captions drawn on the image
        WebDriverWait(driver, 5).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".box-label")) == 2)
        assert driver.find_elements(By.CSS_SELECTOR, ".box-label")[1].text == "a blue square"
        body.send_keys("d")                       # next image
        WebDriverWait(driver, 5).until(lambda d: caps() == ["a gray wall"])
        assert "image 2 / 2" in driver.find_element(By.ID, "counter").text
        body.send_keys("a")
        WebDriverWait(driver, 5).until(lambda d: len(caps()) == 2)
        body.send_keys("w")                       # more boxes
        WebDriverWait(driver, 5).until(lambda d: len(boxes()) == 3)
        assert caps() == ["a red circle", "a blue square", "a tiny dot"]
        driver.execute_script("Math.random = function () { return 0.99; };")
        body.send_keys("r")                       # random image: floor(0.99 * 2) = the second
        WebDriverWait(driver, 5).until(lambda d: caps() == ["a gray wall"])
        assert "image 2 / 2" in driver.find_element(By.ID, "counter").text
        driver.save_screenshot(str(tmp_path / "shot.png"))
    assert Image.open(tmp_path / "shot.png").size[0] > 0


def test_input_split_reads_vg_ids(tiny_checkpoint, shapes_dir, tmp_path):
    root = tmp_path / "vg"
    root.mkdir()
    for i, f in enumerate(sorted(shapes_dir.iterdir())):
        Image.open(f).convert("RGB").save(root / f"{i + 10}.jpg")
    (tmp_path / "splits.json").write_text(json.dumps({"train": [10], "val": [11, 12], "test": []}))
    results = run(["-checkpoint", str(tiny_checkpoint), "-input_split", "val", "-splits_json",
                   str(tmp_path / "splits.json"), "-vg_img_root_dir", str(root), "-output_vis_dir", str(tmp_path / "v"),
                   "-max_images", "1", "-image_size", "128"])
    assert [r["img_name"] for r in results] == ["11.jpg"]
    with pytest.raises(UserError, match="has"):
        run(["-checkpoint", str(tiny_checkpoint), "-input_split", "dev", "-splits_json", str(tmp_path / "splits.json")])


def test_zero_boxes_after_nms_is_a_warning(tiny_checkpoint, shapes_dir, tmp_path, monkeypatch, capsys):
    from densecap.model import DenseCapModel

    def nothing(self, image, *a, **k):
        return torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, 15, dtype=torch.long)
    monkeypatch.setattr(DenseCapModel, "forward_test", nothing)
    results = run(["-checkpoint", str(tiny_checkpoint), "-input_dir", str(shapes_dir), "-output_vis_dir",
                   str(tmp_path / "v"), "-output_dir", str(tmp_path / "d")])
    assert [r["boxes"] for r in results] == [[], [], []]
    assert capsys.readouterr().err.count("no boxes left after NMS") == 3
    assert json.load(open(tmp_path / "v" / "results.json"))["results"] == results


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_folder_loads_the_model_once_with_a_progress_bar(tiny_checkpoint, shapes_dir, tmp_path, monkeypatch):
    loads = []
    from densecap import checkpoints
    real = checkpoints.load_model
    monkeypatch.setattr(checkpoints, "load_model", lambda *a, **k: (loads.append(a), real(*a, **k))[1])
    err = _Terminal()
    results = run_model.main(parse(run_model.RunOptions, ["-checkpoint", str(tiny_checkpoint), "-input_dir",
                                                          str(shapes_dir), "-gpu", "-1", "-image_size", "128",
                                                          "-output_vis_dir",
                                                          str(tmp_path / "v")]), err=err)
    assert len(results) == 3 and len(loads) == 1
    assert "3/3" in err.getvalue() and "img" in err.getvalue()   # tqdm's bar, on a terminal


def test_interrupted_folder_keeps_the_results_so_far(tiny_checkpoint, shapes_dir, tmp_path, monkeypatch):
    real = run_model.detect
    calls = []

    def stop_at_the_second(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)
    monkeypatch.setattr(run_model, "detect", stop_at_the_second)
    with pytest.raises(KeyboardInterrupt):
        run(["-checkpoint", str(tiny_checkpoint), "-input_dir", str(shapes_dir), "-image_size", "128",
             "-output_vis_dir", str(tmp_path / "v")])
    kept = json.load(open(tmp_path / "v" / "results.json"))["results"]
    assert [r["img_name"] for r in kept] == ["scene0.png"] and (tmp_path / "v" / "scene0.png").exists()


def test_image_smaller_than_the_anchors(tiny_checkpoint, tmp_path):
    # 12 x 7 pixels: less than one stride-16 cell and far below the smallest anchor
    Image.new("RGB", (12, 7), "red").save(tmp_path / "speck.png")
    res = run(["-checkpoint", str(tiny_checkpoint), "-input_image", str(tmp_path / "speck.png"), "-image_size", "12",
               "-output_vis_dir", str(tmp_path / "v")])
    assert len(res) == 1 and len(res[0]["boxes"]) == len(res[0]["captions"])
    for x, y, w, h in res[0]["boxes"]:
        assert 0 <= x and 0 <= y and x + w <= 12.5 and y + h <= 7.5


def test_help_lists_every_flag(capsys):
    import dataclasses

    from densecap import convert

    for cls in (run_model.RunOptions, convert.ConvertOptions):
        with pytest.raises(SystemExit):
            parse(cls, ["-h"])
        text = capsys.readouterr().out
        for f in dataclasses.fields(cls):
            assert (f.name if "nargs" in f.metadata else f"-{f.name}") in text, f.name


def _cli(args, cwd=None):
    import subprocess
    import sys
    from pathlib import Path
    return subprocess.run([sys.executable, "densecap/run_model.py", "-gpu", "-1"] + args, capture_output=True,
                          text=True, timeout=120, cwd=Path(run_model.__file__).parents[1])


def test_a_broken_image_leaves_results_json_untouched(tiny_checkpoint, tmp_path):
    vis = tmp_path / "vis"
    vis.mkdir()
    (vis / "results.json").write_text('{"results": ["earlier"]}')
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    out = _cli(["-checkpoint", str(tiny_checkpoint), "-input_image", str(tmp_path / "broken.jpg"),
                "-output_vis_dir", str(vis)])
    assert out.returncode == 1 and len(out.stderr.strip().splitlines()) == 1 and "broken.jpg" in out.stderr
    assert (vis / "results.json").read_text() == '{"results": ["earlier"]}'
    assert sorted(p.name for p in vis.iterdir()) == ["results.json"]   # no temporary left behind


def test_input_dir_without_images_exits_1(tiny_checkpoint, tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    (d / "notes.txt").write_text("not an image")
    (d / "data.csv").write_text("1,2")
    out = _cli(["-checkpoint", str(tiny_checkpoint), "-input_dir", str(d), "-output_vis_dir", str(tmp_path / "v")])
    assert out.returncode == 1 and out.stderr.strip().splitlines()[-1].startswith("error: no image could be read")
    assert not (tmp_path / "v" / "results.json").exists()


@pytest.mark.parametrize("flag", ["-num_proposals", "-image_size"])
def test_sizes_of_zero_are_refused(tiny_checkpoint, tmp_path, flag):
    img = tmp_path / "x.png"
    Image.new("RGB", (40, 40)).save(img)
    out = _cli(["-checkpoint", str(tiny_checkpoint), "-input_image", str(img), flag, "0",
                "-output_vis_dir", str(tmp_path / "v")])
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1 and flag in out.stderr
    assert not (tmp_path / "v").exists()


@pytest.mark.parametrize("script", ["run_model.py", "evaluate_model.py", "extract_features.py"])
def test_truncated_checkpoint_is_one_line(tiny_checkpoint, tmp_path, script, monkeypatch, capsys):
    """run_model.py as a process; the others through main(argv) (the same start: get_device, load_model)."""
    from densecap import evaluate_model, extract_features
    cut = tmp_path / "cut.pt"
    cut.write_bytes(tiny_checkpoint.read_bytes()[:40000])
    img = tmp_path / "x.png"
    Image.new("RGB", (40, 40)).save(img)
    (tmp_path / "list.txt").write_text(f"{img}\n")
    if script == "run_model.py":
        out = cli_without_gpu_flag(script, ["-checkpoint", cut, "-input_image", img, "-output_vis_dir", tmp_path / "v"])
    elif script == "evaluate_model.py":
        out = main_without_gpu(evaluate_model, evaluate_model.EvalOptions, [
            "-checkpoint", cut, "-data_h5", tmp_path / "d.h5", "-data_json", tmp_path / "d.json"], monkeypatch, capsys)
    else:
        out = main_without_gpu(extract_features, extract_features.ExtractOptions, [
            "-checkpoint", cut, "-input_txt", tmp_path / "list.txt", "-output_h5", tmp_path / "f.h5"], monkeypatch, capsys)
    assert_cpu_note_then_one_error(out, "cut.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.pt", "list.txt", "x.png"]   # nothing written


def test_help_imports_no_torch():
    """`run_model.py -h` prints its options without importing torch (issue 21: the start-up it costs, under
    0.8 CPU s, is measured by bench/densecap_bench.py, its start-up line)."""
    import subprocess
    import sys
    code = ("import sys; sys.argv = ['run_model.py', '-h']\n"
            "try:\n    import runpy; runpy.run_path('densecap/run_model.py', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "print('torch' in sys.modules, 'torchvision' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=Path(run_model.__file__).parents[1])
    assert "-checkpoint" in out.stdout and "-input_image" in out.stdout, out.stdout[-500:]
    assert out.stdout.split()[-2:] == ["False", "False"], out.stdout[-500:]
