"""neuraltalk2 .t7 checkpoints (structure as train.lua saves them, small sizes) -> our show-tell model."""
import numpy as np
import pytest
import torch
from PIL import Image

from common.cli import UserError, parse
from neuraltalk import convert
from neuraltalk import eval as nt_eval
from neuraltalk.captioner import build_captioner, caption_folder, load_checkpoint
from neuraltalk.lua_checkpoint import torch_image_scale
from neuraltalk.tests.t7_fixture import greedy_caption, image_vector, save_checkpoint

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


def test_convert_cli_and_eval_on_t7_directly(tmp_path, photos, capsys):
    path = tmp_path / "nt.t7"
    save_checkpoint(path, VOCAB)
    out = convert.main(parse(convert.ConvertOptions, [str(path)]))
    assert out.endswith("nt.pt")
    opt = parse(nt_eval.EvalOptions, ["-model", str(path), "-image_folder", str(photos), "-gpuid", "-1",
                                      "-vis_dir", str(tmp_path / "vis")])
    preds_t7, _ = nt_eval.main(opt)
    opt.model = out
    preds_pt, _ = nt_eval.main(opt)
    assert [p["caption"] for p in preds_t7] == [p["caption"] for p in preds_pt]
    assert (tmp_path / "vis" / "vis.json").exists() and (tmp_path / "vis" / "imgs" / "img3.jpg").exists()


def test_not_a_neuraltalk2_checkpoint(tmp_path):
    from common import t7

    p = tmp_path / "x.t7"
    t7.save(p, {"protos": {"rnn": 1}, "opt": {}})
    with pytest.raises(UserError, match="not a neuraltalk2 checkpoint"):
        convert.convert_t7(str(p))
    (tmp_path / "y.t7").write_text("hello")
    with pytest.raises(UserError, match="not a readable Torch7"):
        convert.convert_t7(str(tmp_path / "y.t7"))
