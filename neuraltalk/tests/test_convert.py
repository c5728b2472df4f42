"""neuraltalk2 .t7 checkpoints -> our show-tell model: look-alikes from our writer (CUDA storages, 1-2 layers)
against a numpy LanguageModel, and the Lua-written fixture through convert.py + eval.py."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from common import checkpoint, t7
from common.cli import UserError, parse
from common.testing import t7_writer
from neuraltalk import eval as nt_eval
from neuraltalk.captioner import build_captioner, caption_folder, load_checkpoint
from neuraltalk.lua_checkpoint import convert_t7, torch_image_scale
from neuraltalk.tests.conftest import NEURALTALK
from neuraltalk.tests.t7_fixture import greedy_caption, image_vector, save_checkpoint

FIX = NEURALTALK / "tests" / "lua" / "fixtures"
VOCAB = ["a", "dog", "cat", "runs", "on", "grass", "UNK"]


@pytest.fixture
def photos(tmp_path):
    d = tmp_path / "photos"
    d.mkdir()
    rng = np.random.default_rng(0)
    for k in range(3):
        arr = (rng.random((90 + 10 * k, 120, 3)) * 255).astype(np.uint8)
        arr[:, : 40 * (k + 1)] = [200, 30 * k, 10]
        Image.fromarray(arr).save(d / f"p{k}.jpg", quality=95)
    return d


# seeds picked so that the random models' captions differ from image to image and word to word
@pytest.mark.parametrize("tensor_type,layers,seed", [("torch.CudaTensor", 1, 5), ("torch.CudaTensor", 2, 4)])
def test_converted_model_captions_as_the_lua_model_would(tmp_path, photos, tensor_type, layers, seed):
    path = tmp_path / "model_id1-501-1448236541.t7"
    W = save_checkpoint(path, VOCAB, L=layers, tensor_type=tensor_type, seed=seed)
    ck = load_checkpoint(str(path))
    model = build_captioner(ck)
    assert ck["ix_to_word"]["2"] == "dog" and ck["seq_length"] == 5
    preds = caption_folder(model, ck["ix_to_word"], photos, ck["cnn_info"], "cpu", beam_size=1)
    assert len(preds) == 3 and len({p["caption"] for p in preds}) >= 2
    for p in preds:
        vec = image_vector(W, p["path"])
        with torch.no_grad():
            img = torch_image_scale(np.asarray(Image.open(p["path"]).convert("RGB")), 256, 256)
            x = torch.from_numpy(img[15:239, 15:239].copy()).permute(2, 0, 1)[None]
            fc, _ = model.features(x)
            ours = model.decoder.img_embed(fc)[0].double().numpy()
        assert np.allclose(ours, vec, rtol=1e-4, atol=1e-5)
        words, lps = greedy_caption(W, vec, VOCAB, L=layers)
        assert p["caption"] == " ".join(words)
        with torch.no_grad():
            seq, logprobs = model(fc, None, mode="sample")
        assert np.allclose(logprobs[0, :len(lps)].numpy(), lps, atol=1e-4)


def test_convert_cli_then_eval_gives_the_lua_captions(tmp_path, capsys):
    """convert.py (the real command) on the .t7 train.lua wrote; eval.py on the .pt it writes: the greedy
    captions neuraltalk2's own eval path computed (tests/lua/fixtures/lua_outputs.t7)."""
    src = tmp_path / "model_id1-501-1448236541.t7"
    shutil.copy(FIX / src.name, src)
    env = dict(os.environ, PYTHONPATH=str(NEURALTALK.parent))
    done = subprocess.run([sys.executable, str(NEURALTALK / "convert.py"), str(src)], capture_output=True, text=True,
                          env=env)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "model_id1-501-1448236541.pt"
    assert f"wrote {out}: show_tell" in done.stdout and out.exists()
    ck = checkpoint.load(out, "neuraltalk")
    assert ck["config"]["caption_model"] == "show_tell" and ck["config"]["beam_search"] == "neuraltalk2"
    opt = parse(nt_eval.EvalOptions, ["-model", str(out), "-image_folder", str(FIX / "images"), "-gpuid", "-1",
                                      "-beam_size", "1", "-suppress_UNK", "0", "-vis_dir", str(tmp_path / "vis"),
                                      "-precision", "fp32"])
    preds, _ = nt_eval.main(opt)
    lua = t7.load(FIX / "lua_outputs.t7")
    theirs = {f.decode(): c.decode() for f, c in zip(lua[b"files"], lua[b"train"][b"greedy_captions"])}
    assert {p["file_name"]: p["caption"] for p in preds} == theirs
    assert (tmp_path / "vis" / "vis.json").exists() and (tmp_path / "vis" / "imgs" / "img3.jpg").exists()


def test_not_a_neuraltalk2_checkpoint(tmp_path):
    p = tmp_path / "x.t7"
    t7_writer.save(p, {"protos": {"rnn": 1}, "opt": {}})
    with pytest.raises(UserError, match="not a neuraltalk2 checkpoint"):
        convert_t7(str(p))
    (tmp_path / "y.t7").write_text("hello")
    with pytest.raises(UserError, match="not a readable Torch7"):
        convert_t7(str(tmp_path / "y.t7"))
