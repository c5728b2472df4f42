"""neuraltalk2 checkpoints written by neuraltalk2's own Lua code (tests/lua/make_fixture.lua: train.lua's
checkpoint table, and the same file after convert_checkpoint_gpu_to_cpu.lua) against what that code computed
on three images (image.scale, net_utils.prepro, protos.cnn, LanguageModel:sample / sample_beam)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from common import t7
from common.cli import parse
from neuraltalk import eval as nt_eval
from neuraltalk.captioner import build_captioner, load_checkpoint
from neuraltalk.lua_checkpoint import prepro_crop_offset, torch_image_scale
from neuraltalk.tests.conftest import NEURALTALK

FIX = NEURALTALK / "tests" / "lua" / "fixtures"
FILES = {"train": "model_id1-501-1448236541.t7", "cpu": "model_id1-501-1448236541.t7_cpu.t7"}


@pytest.fixture(scope="module")
def lua():
    return t7.load(FIX / "lua_outputs.t7")


def test_image_scale_and_crop_match_torch_image(lua):
    assert prepro_crop_offset(256) == 15
    for k, name in enumerate(lua[b"files"]):
        img = np.asarray(Image.open(FIX / "images" / name.decode()).convert("RGB"))
        ours = torch_image_scale(img, 256, 256).transpose(2, 0, 1)
        np.testing.assert_array_equal(ours, lua[b"scaled"][k])


@pytest.mark.parametrize("which", ["train", "cpu"])
@pytest.mark.parametrize("beam", [1, 2])
def test_eval_captions_equal_lua(tmp_path, lua, which, beam, capsys):
    opt = parse(nt_eval.EvalOptions, ["-model", str(FIX / FILES[which]), "-image_folder", str(FIX / "images"),
                                      "-gpuid", "-1", "-beam_size", str(beam), "-suppress_UNK", "0", "-precision", "fp32",
                                      "-vis_dir", str(tmp_path / "vis"), "-dump_images", "0"])
    preds, _ = nt_eval.main(opt)
    ours = {p["file_name"]: p["caption"] for p in preds}
    key = b"greedy_captions" if beam == 1 else b"beam2_captions"
    theirs = {f.decode(): c.decode() for f, c in zip(lua[b"files"], lua[which.encode()][key])}
    assert ours == theirs


@pytest.mark.parametrize("which", ["train", "cpu"])
def test_features_and_logprobs_equal_lua(lua, which):
    ck = load_checkpoint(str(FIX / FILES[which]))
    model = build_captioner(ck)
    x = torch.from_numpy(np.ascontiguousarray(lua[b"scaled"][:, :, 15:239, 15:239]))
    with torch.no_grad():
        fc, _ = model.features(x)
        feats = model.decoder.img_embed(fc)
        seq, lps = model(fc, None, mode="sample")
    out = lua[which.encode()]
    np.testing.assert_allclose(feats.numpy(), out[b"feats"], rtol=1e-5, atol=1e-5)
    lua_seq, lua_lps = out[b"greedy_seq"].T, out[b"greedy_logprobs"].T  # Lua: (T, B)
    for b in range(seq.size(0)):
        n = int((seq[b] > 0).sum()) + 1  # the words and END
        assert seq[b, :n - 1].tolist() == lua_seq[b, :n - 1].tolist()
        np.testing.assert_allclose(lps[b, :n].numpy(), lua_lps[b, :n], atol=1e-5)


def test_eval_command_on_the_lua_t7_prints_and_writes_the_lua_captions(tmp_path, lua):
    """The README's command, as a user runs it: `python neuraltalk/eval.py -model <the .t7> -image_folder ...`."""
    vis = tmp_path / "vis"
    cmd = [sys.executable, str(NEURALTALK / "eval.py"), "-model", str(FIX / FILES["cpu"]), "-image_folder",
           str(FIX / "images"), "-num_images", "-1", "-beam_size", "2", "-suppress_UNK", "0", "-gpuid", "-1",
           "-vis_dir", str(vis), "-precision", "fp32"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(NEURALTALK.parent)))
    assert done.returncode == 0, done.stderr
    files = [f.decode() for f in lua[b"files"]]
    theirs = dict(zip(files, (c.decode() for c in lua[b"cpu"][b"beam2_captions"])))
    written = json.load(open(vis / "vis.json"))
    assert {v["file_name"]: v["caption"] for v in written} == theirs
    printed = [line for line in done.stdout.splitlines() if line.startswith("image ")]
    assert printed == [f"image {v['image_id']}: {theirs[v['file_name']]}" for v in written]
    assert len(printed) == len(files) == len(os.listdir(vis / "imgs"))


@pytest.mark.parametrize("beam", [1, 2])
def test_bf16_gives_the_fp32_captions(tmp_path, lua, beam):
    """-precision bf16 (auto on an AVX512-BF16/AMX CPU: the CNN in bf16, the decoder in float32) captions
    the three images as float32 does, which is what neuraltalk2 computed."""
    from common.device import native_bf16
    if not native_bf16():
        pytest.skip("this CPU has no native bf16 (AVX512-BF16/AMX): bf16 is emulated here, and auto picks fp32")
    caps = {}
    for precision in ("fp32", "bf16"):
        opt = parse(nt_eval.EvalOptions, ["-model", str(FIX / FILES["cpu"]), "-image_folder", str(FIX / "images"),
                                          "-gpuid", "-1", "-beam_size", str(beam), "-suppress_UNK", "0",
                                          "-precision", precision, "-vis_dir", str(tmp_path / "vis"),
                                          "-dump_images", "0"])
        caps[precision] = {p["file_name"]: p["caption"] for p in nt_eval.main(opt)[0]}
    key = b"greedy_captions" if beam == 1 else b"beam2_captions"
    assert caps["bf16"] == caps["fp32"] == {f.decode(): c.decode() for f, c in zip(lua[b"files"], lua[b"cpu"][key])}
