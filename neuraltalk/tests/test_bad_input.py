"""Bad input and faults (issue 17, round 3), through the real commands: one stderr line naming the file or
flag and the fix, a non-zero exit, no traceback, nothing on disk harmed. The table is tests/BAD_INPUT.md."""
import json
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
from PIL import Image

from common import checkpoint
from common.cli import UserError, parse, run
from neuraltalk import eval as nt_eval
from neuraltalk import prepro
from neuraltalk.data import read_rgb
from neuraltalk.lua_checkpoint import convert_t7
from neuraltalk.tests.conftest import NEURALTALK, TINY_MODEL

FIX = NEURALTALK / "tests" / "lua" / "fixtures"
ENV = dict(os.environ, PYTHONPATH=str(NEURALTALK.parent), PYTHONUNBUFFERED="1")


def command(script, *args, **kw):
    return subprocess.run([sys.executable, str(NEURALTALK / f"{script}.py"), *map(str, args)], capture_output=True,
                          text=True, env=ENV, timeout=300, **kw)


def one_line(done, code, *needles):
    lines = done.stderr.strip().splitlines()
    assert done.returncode == code and "Traceback" not in done.stderr and len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and all(n in lines[0] for n in needles), lines[0]
    return lines[0]


def in_process(capsys, main, cls, argv):
    """main(parse(argv)) as the script's __main__ runs it -> (exit code, stderr)."""
    with pytest.raises(SystemExit) as exit_:
        run(main, parse(cls, [str(a) for a in argv]))
    return exit_.value.code, capsys.readouterr().err


@pytest.fixture(scope="module")
def cut_checkpoint(tmp_path_factory):
    """A real neuraltalk checkpoint (the Lua fixture, converted) cut at half its size, as a full disk leaves it."""
    d = tmp_path_factory.mktemp("cut")
    ck = convert_t7(str(FIX / "model_id1-501-1448236541.t7_cpu.t7"))
    ck.pop("kind")
    full = checkpoint.save(d / "full.pt", "neuraltalk", ck)
    data = open(full, "rb").read()
    (d / "cut.pt").write_bytes(data[:len(data) // 2])
    return d / "cut.pt"


def test_eval_temperature_beam_size_and_a_cut_checkpoint(tmp_path, cut_checkpoint, capsys):
    before = cut_checkpoint.read_bytes()
    one_line(command("eval", "-model", cut_checkpoint, "-temperature", "-1", "-sample_max", "0", "-gpuid", "-1"), 1,
             "-temperature -1: must be > 0")
    one_line(command("eval", "-model", cut_checkpoint, "-image_folder", FIX / "images", "-gpuid", "-1",
                     "-vis_dir", tmp_path / "vis"), 1, str(cut_checkpoint), "not a torch-classics checkpoint")
    assert cut_checkpoint.read_bytes() == before and not (tmp_path / "vis").exists()
    for beam in ("0", "-3"):  # declared min=1: refused by parse, exit 2
        code, err = in_process(capsys, nt_eval.main, nt_eval.EvalOptions, ["-model", cut_checkpoint, "-beam_size", beam])
        assert code == 2 and err.strip() == f"error: -beam_size must be >= 1 (got {beam})"


def test_train_start_from_a_cut_checkpoint(prepped, tmp_path, cut_checkpoint):
    json_path, h5_path = prepped
    one_line(command("train", "-input_json", json_path, "-input_h5", h5_path, "-start_from", cut_checkpoint,
                     "-checkpoint_path", tmp_path, *TINY_MODEL), 1, str(cut_checkpoint), "not a torch-classics checkpoint")
    assert os.listdir(tmp_path) == []


def dataset(tmp_path, names):
    items = [{"file_path": n, "captions": ["a red circle", "a blue square"], "split": "train"} for n in names]
    (tmp_path / "d.json").write_text(json.dumps(items))
    return tmp_path / "d.json"


def test_prepro_wrong_images_root_is_an_error_not_black_images(tmp_path, shapes):
    root, _ = shapes
    src = dataset(tmp_path, ["images/1.png", "images/2.png"])
    line = one_line(command("prepro", "-input_json", src, "-images_root", tmp_path / "nowhere", "-image_data", "images",
                            "-output_json", tmp_path / "o.json", "-output_h5", tmp_path / "o.h5"), 1,
                    "none of the 2 images", "-images_root")
    assert "nowhere/images/1.png" in line and not (tmp_path / "o.h5").exists() and not (tmp_path / "o.json").exists()


def test_prepro_missing_and_undecodable_images_are_told_apart(tmp_path, shapes, capsys):
    root, _ = shapes
    images = tmp_path / "imgs"
    images.mkdir()
    Image.open(root / "images" / "1.png").save(images / "good.png")
    (images / "broken.jpg").write_bytes(b"not a jpeg")
    src = dataset(tmp_path, ["good.png", "gone.png", "broken.jpg"])
    out = tmp_path / "new" / "folder"  # -output_h5 in a folder that does not exist yet: made
    prepro.main(parse(prepro.PreproOptions, ["-input_json", str(src), "-images_root", str(images), "-image_data",
                                             "images", "-word_count_threshold", "0", "-cnn", "resnet18",
                                             "-image_size", "64", "-crop_size", "56", "-output_json",
                                             str(out / "o.json"), "-output_h5", str(out / "o.h5")]))
    err = [line[line.index("warning: "):] for line in capsys.readouterr().err.replace("\r", "\n").splitlines()
           if "warning: " in line]  # (between progress-bar redraws)
    assert err[0].startswith("warning: 1 of 3 images not found under -images_root") and "gone.png" in err[0]
    assert sum("broken.jpg" in line for line in err) == 1 and "not an image this program can read" in err[1]
    assert err[-1] == "warning: 1 image(s) could not be decoded and 1 were missing; written as black"
    with h5py.File(out / "o.h5", "r") as f:
        imgs = f["images"][...]
    assert imgs[0].max() > 0 and imgs[1].max() == 0 and imgs[2].max() == 0


def test_prepro_sizes_are_declared_bounds(tmp_path, capsys):
    for flag_, value in (("-image_size", "0"), ("-batch_size", "-1"), ("-max_length", "0")):
        code, err = in_process(capsys, prepro.main, prepro.PreproOptions, ["-input_json", "x.json", flag_, value])
        assert code == 2 and err.strip() == f"error: {flag_} must be >= 1 (got {value})"
    code, err = in_process(capsys, prepro.main, prepro.PreproOptions,
                           ["-input_json", str(dataset(tmp_path, ["a.png"])), "-image_size", "64"])
    assert code == 1 and "-crop_size 224 is larger than -image_size 64" in err


def test_16_bit_grayscale_and_exif_rotation_are_read_as_meant(tmp_path, capsys):
    rng = np.random.default_rng(0)
    gray = (rng.random((40, 60)) * 255).astype(np.uint8)
    folder = tmp_path / "photos dir"
    folder.mkdir()
    Image.fromarray(gray).save(folder / "a_gray8.png")
    Image.fromarray(gray.astype(np.uint16) * 257).save(folder / "b_gray16.png")  # mode I;16: 257 v / 65535 = v / 255
    rgb = np.stack([gray, 255 - gray, gray // 2], -1)
    Image.fromarray(rgb).save(folder / "c_upright.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: the camera was turned; shown rotated 90 degrees clockwise
    Image.fromarray(np.rot90(rgb, 1).copy()).save(folder / "d_sideways.png", exif=exif)
    assert Image.open(folder / "b_gray16.png").mode.startswith("I")
    np.testing.assert_array_equal(read_rgb(folder / "b_gray16.png"), np.repeat(gray[..., None], 3, 2))
    np.testing.assert_array_equal(read_rgb(folder / "d_sideways.png"), rgb)
    # eval.py over the folder: the pairs caption alike; the vis hint quotes the path with a space
    vis = tmp_path / "my vis"
    preds, _ = nt_eval.main(parse(nt_eval.EvalOptions, ["-model", str(FIX / "model_id1-501-1448236541.t7_cpu.t7"),
                                                        "-image_folder", str(folder), "-gpuid", "-1",
                                                        "-vis_dir", str(vis), "-dump_images", "0"]))
    caps = [p["caption"] for p in preds]
    assert caps[0] == caps[1] and caps[2] == caps[3]
    assert f"cd '{vis}' && " in capsys.readouterr().err


def test_sigterm_saves_a_resumable_checkpoint_and_exits_143(prepped, tmp_path):
    json_path, h5_path = prepped
    cv = tmp_path / "cv"
    cv.mkdir()
    (cv / ".tmp-4194000-ab12.pt").write_bytes(b"half a checkpoint")  # a kill -9 mid-save left it
    args = ["-input_json", json_path, "-input_h5", h5_path, "-checkpoint_path", cv, *TINY_MODEL, "-id", "s",
            "-val_images_use", "0", "-losses_log_every", "1", "-save_checkpoint_every", "1000"]
    proc = subprocess.Popen([sys.executable, str(NEURALTALK / "train.py"), *map(str, args), "-max_iters", "100000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.time() + 120
    for line in proc.stdout:
        if line.startswith("iter 2:") or time.time() > deadline:
            break
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "stopped by SIGTERM: saved" in err and f"-start_from {cv / 'model_ids.pt'}" in err and "Traceback" not in err
    assert not (cv / ".tmp-4194000-ab12.pt").exists() and not (cv / "model_ids-best.pt").exists()
    saved = checkpoint.load(cv / "model_ids.pt", "neuraltalk")["history"]
    assert saved["iter"] >= 2 and sorted(saved["loss_history"]) == list(range(1, saved["iter"] + 1))
    done = command("train", *args, "-max_iters", saved["iter"] + 1, "-start_from", cv)
    assert done.returncode == 0, done.stderr
    resumed = checkpoint.load(cv / "model_ids.pt", "neuraltalk")["history"]
    assert resumed["iter"] == saved["iter"] + 1 and f"resuming at iteration {saved['iter']}" in done.stdout


def test_a_bad_image_in_a_folder_is_told_once(tmp_path, capsys):
    folder = tmp_path / "f"
    folder.mkdir()
    Image.open(FIX / "images" / os.listdir(FIX / "images")[0]).save(folder / "ok.png")
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    preds, _ = nt_eval.main(parse(nt_eval.EvalOptions, ["-model", str(FIX / "model_id1-501-1448236541.t7_cpu.t7"),
                                                        "-image_folder", str(folder), "-gpuid", "-1",
                                                        "-vis_dir", str(tmp_path / "vis")]))
    err = capsys.readouterr().err
    assert [p["file_name"] for p in preds] == ["ok.png"] and err.count("broken.jpg") == 1
    with pytest.raises(UserError, match="none of the images could be decoded"):
        os.unlink(folder / "ok.png")
        nt_eval.main(parse(nt_eval.EvalOptions, ["-model", str(FIX / "model_id1-501-1448236541.t7_cpu.t7"),
                                                 "-image_folder", str(folder), "-gpuid", "-1", "-dump_json", "0"]))
