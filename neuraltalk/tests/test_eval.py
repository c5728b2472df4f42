"""eval.py: a dataset split with metrics, a folder of your own images, the vis page in a real browser, DDP."""
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from common import browser
from common.cli import UserError, parse
from neuraltalk import eval as nt_eval
from neuraltalk import train
from neuraltalk.tests.conftest import NEURALTALK, TINY_MODEL


@pytest.fixture(scope="module")
def trained(prepped, tmp_path_factory):
    cv = tmp_path_factory.mktemp("cv")
    json_path, h5_path = prepped
    train.main(parse(train.TrainOptions, [
        "-input_json", str(json_path), "-input_h5", str(h5_path), "-checkpoint_path", str(cv), *TINY_MODEL,
        "-batch_size", "16", "-learning_rate", "3e-3", "-drop_prob_lm", "0.1", "-max_iters", "120",
        "-save_checkpoint_every", "120", "-val_images_use", "0", "-id", "e"]))
    return cv / "model_ide.pt"


def run_eval(*args):
    return nt_eval.main(parse(nt_eval.EvalOptions, list(args)))


def test_split_eval_scores_and_beam(trained, shapes, tmp_path, capsys):
    preds, stats = run_eval("-model", str(trained), "-split", "test", "-num_images", "-1", "-language_eval", "1",
                            "-beam_size", "3", "-batch_size", "4", "-gpuid", "-1", "-vis_dir", str(tmp_path / "vis"))
    assert len(preds) == 8 and set(stats) >= {"Bleu_4", "METEOR", "ROUGE_L", "CIDEr"}
    # the figures are the COCO scorer's on these captions against the dataset's own five references each
    from common import lang_eval
    (shapes_root, shapes_paths) = shapes
    refs = {im["filename"]: [s["raw"] for s in im["sentences"]]
            for im in json.load(open(shapes_paths["karpathy_json"]))["images"] if im["split"] == "test"}
    want = lang_eval.score({p["file_name"]: refs[os.path.basename(p["file_name"])] for p in preds},
                           {p["file_name"]: p["caption"] for p in preds})
    assert {k: round(v, 6) for k, v in want.items()} == {k: round(stats[k], 6) for k in want}
    # and the model has learnt the language of the references (an unrelated sentence scores about 0)
    assert stats["Bleu_1"] > 0.3 and stats["CIDEr"] > 0.3
    vis = json.load(open(tmp_path / "vis" / "vis.json"))
    assert [v["caption"] for v in vis] == [p["caption"] for p in preds]
    assert len(os.listdir(tmp_path / "vis" / "imgs")) == 8
    greedy, _ = run_eval("-model", str(trained), "-split", "test", "-num_images", "3", "-beam_size", "1",
                         "-gpuid", "-1", "-dump_images", "0", "-dump_json", "0")
    assert len(greedy) == 3


def test_image_folder_of_odd_images(trained, tmp_path, shapes, capsys):
    root, _ = shapes
    d = tmp_path / "mine"
    d.mkdir()
    src = Image.open(root / "images" / "3.png")
    src.convert("RGBA").save(d / "rgba.png")
    src.convert("L").save(d / "gray.jpeg")
    src.save(d / "photo.JPG")
    src.save(d / "._photo.jpg")  # macOS resource fork name: the Lua code crashed on these
    (d / "broken.jpg").write_bytes(b"not a jpeg")
    (d / "notes.txt").write_text("hello")
    preds, stats = run_eval("-model", str(trained), "-image_folder", str(d), "-gpuid", "-1", "-language_eval", "1",
                            "-vis_dir", str(tmp_path / "vis"), "-beam_size", "2")
    out = capsys.readouterr()
    assert sorted(p["file_name"] for p in preds) == ["gray.jpeg", "photo.JPG", "rgba.png"]
    assert out.err.count("broken.jpg") == 1 and "warning: skipped" in out.err and "no reference" not in out.err
    assert "-language_eval 1 needs reference captions" in out.out and stats == {}
    rgb = {p["file_name"]: p["caption"] for p in preds}
    assert rgb["rgba.png"] == rgb["photo.JPG"] and all(rgb.values())
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="found 0 images"):
        run_eval("-model", str(trained), "-image_folder", str(tmp_path / "empty"), "-gpuid", "-1")


def test_bad_model_or_split_is_one_line(trained, prepped, tmp_path, capsys):
    from common import checkpoint

    checkpoint.save(tmp_path / "other.pt", "densecap", {"model": {}})
    with pytest.raises(UserError, match="a densecap checkpoint, expected a neuraltalk one"):
        run_eval("-model", str(tmp_path / "other.pt"), "-gpuid", "-1")
    info = json.load(open(prepped[0]))
    for im in info["images"]:
        im["split"] = "train" if im["split"] == "test" else im["split"]
    (tmp_path / "t.json").write_text(json.dumps(info))
    with pytest.raises(UserError, match="no images in split 'test'"):
        run_eval("-model", str(trained), "-input_json", str(tmp_path / "t.json"), "-gpuid", "-1")
    # as a command (eval.py's __main__ is run(main, parse(EvalOptions))): one line on stderr, exit status 1
    from common.cli import run

    with pytest.raises(SystemExit) as exit_:
        run(nt_eval.main, parse(nt_eval.EvalOptions, ["-model", str(tmp_path / "other.pt"), "-gpuid", "-1"]))
    err = capsys.readouterr().err
    assert exit_.value.code == 1 and err.startswith("error: ") and len(err.strip().splitlines()) == 1


def test_suppress_UNK(trained, tmp_path, shapes):
    """A model whose most likely word is always UNK: -suppress_UNK 0 writes it, 1 (the default) never does,
    greedy and beam; the top-down model's decoding masks it the same way."""
    import torch

    from common import checkpoint
    from neuraltalk.model import CaptionConfig, build_model

    ck = checkpoint.load(trained, "neuraltalk")
    unk = str(len(ck["ix_to_word"]))  # UNK is the last word, as prepro writes it (word k is column k-1)
    ck["ix_to_word"][unk] = "UNK"
    ck["model"]["lm.logit.bias"][int(unk) - 1] += 30.0
    checkpoint.save(tmp_path / "unk.pt", "neuraltalk", ck)
    root, _ = shapes
    args = ["-model", str(tmp_path / "unk.pt"), "-image_folder", str(root / "images"), "-num_images", "4",
            "-gpuid", "-1", "-dump_images", "0", "-dump_json", "0"]
    for beam in ("1", "3"):
        on, _ = run_eval(*args, "-beam_size", beam)
        off, _ = run_eval(*args, "-beam_size", beam, "-suppress_UNK", "0")
        assert all(p["caption"].split()[0] == "UNK" for p in off)
        assert all(p["caption"] and "UNK" not in p["caption"].split() for p in on)
    torch.manual_seed(0)
    model = build_model(CaptionConfig("topdown", 6, 8, 8, 8, 8, seq_length=5)).eval()
    with torch.no_grad():
        model.logit.bias[2] += 30.0  # word 3
    fc, att = torch.randn(2, 8), torch.randn(2, 4, 8)
    for beam in (1, 3):
        assert (model.sample(fc, att, beam_size=beam)[0][:, 0] == 3).all()
        seq, lp = model.sample(fc, att, beam_size=beam, banned=[2])
        assert not (seq == 3).any() and torch.isfinite(lp).all()
    seq, lp = model.sample(fc, att, sample_max=False, banned=[2])
    assert not (seq == 3).any() and torch.isfinite(lp).all()


def test_vis_page_shows_each_caption_next_to_its_image(trained, tmp_path, shapes):
    browser.require_chromium()
    from selenium.webdriver.support.ui import WebDriverWait

    root, _ = shapes
    preds, _ = run_eval("-model", str(trained), "-image_folder", str(root / "images"), "-num_images", "5",
                        "-gpuid", "-1", "-vis_dir", str(tmp_path / "vis"))
    with browser.serve_folder(tmp_path / "vis") as url, browser.headless_chromium() as driver:
        driver.get(url + "/index.html")
        WebDriverWait(driver, 20).until(lambda d: len(d.find_elements("css selector", ".item")) == 5)
        WebDriverWait(driver, 20).until(lambda d: all(
            d.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", im)
            for im in d.find_elements("css selector", ".item img")))
        items = driver.find_elements("css selector", ".item")
        for k, (item, p) in enumerate(zip(items, preds), 1):
            img = item.find_element("css selector", "img")
            assert img.get_attribute("src").endswith(f"imgs/img{k}.jpg")
            assert item.find_element("css selector", ".caption").text == p["caption"]
            # next to: the caption sits right under its own image, inside the same card
            ib, cb = img.rect, item.find_element("css selector", ".caption").rect
            assert abs(cb["y"] - (ib["y"] + ib["height"])) < 2 and abs(cb["x"] - ib["x"]) < 2
        assert driver.find_element("id", "status").text == "5 images"


def test_ddp_two_processes_equal_one(prepped, tmp_path):
    """torchrun with 2 CPU processes, 4 images each, ends with the weights of one process on the same 8 images."""
    json_path, h5_path = prepped
    env = dict(os.environ, OMP_NUM_THREADS="1")
    with socket.socket() as s:  # torchrun hangs with --master_port 0: pick a free one
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    args = ["-input_json", str(json_path), "-input_h5", str(h5_path), *TINY_MODEL, "-batch_size", "8",
            "-max_iters", "3", "-save_checkpoint_every", "3", "-val_images_use", "0", "-drop_prob_lm", "0",
            "-seq_per_img", "5", "-grad_clip", "100"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", port,
           str(NEURALTALK / "train.py"), *args, "-checkpoint_path", str(tmp_path / "ddp"), "-id", "ddp"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    from common import checkpoint

    two = checkpoint.load(tmp_path / "ddp" / "model_idddp.pt", "neuraltalk")
    assert two["history"]["iter"] == 3 and np.isfinite(list(two["history"]["loss_history"].values())).all()
    train.main(parse(train.TrainOptions, args + ["-checkpoint_path", str(tmp_path / "one"), "-id", "one"]))
    one = checkpoint.load(tmp_path / "one" / "model_idone.pt", "neuraltalk")
    import torch

    assert len(one["model"]) > 5 and one["model"].keys() == two["model"].keys()
    for k, v in one["model"].items():
        torch.testing.assert_close(two["model"][k], v, atol=1e-5, rtol=1e-4)


def test_auto_keeps_fp32_for_a_random_cnn_and_bf16_really_differs(trained, tmp_path, shapes):
    """This model's CNN is a random ResNet-18 (-cnn_weights ''): its standardised features are mostly the
    few-percent variation that bf16 rounding swamps, so -precision auto keeps float32 for it (the same
    captions as -precision fp32) even on a bf16-native CPU; bf16 asked for really runs the CNN in bf16.
    (bf16 against fp32 on a trained CNN: test_lua_checkpoints.test_bf16_gives_the_fp32_captions.)"""
    import torch

    from neuraltalk.captioner import build_captioner, load_checkpoint
    root, _ = shapes
    caps = {}
    for precision in ("fp32", "auto"):
        preds, _ = run_eval("-model", str(trained), "-image_folder", str(root / "images"), "-num_images", "-1",
                            "-beam_size", "1", "-gpuid", "-1", "-precision", precision, "-vis_dir",
                            str(tmp_path / precision), "-dump_images", "0")
        caps[precision] = [p["caption"] for p in preds]
    assert len(caps["fp32"]) == 80 and caps["auto"] == caps["fp32"]
    ck = load_checkpoint(str(trained))
    x = torch.randint(0, 256, (2, 3, 56, 56), dtype=torch.uint8)
    with torch.inference_mode():
        fc32 = build_captioner(ck).features(x)[0]
        fc16 = build_captioner(ck).to_inference("bf16").features(x)[0]
    assert fc16.dtype == torch.float32 and 0 < (fc16 - fc32).abs().max() < 0.05 * fc32.abs().max()
