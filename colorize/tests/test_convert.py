"""colornet.t7 -> ColorNet: written .t7 files with the published graph, checked against numpy; download_model.sh."""
import functools
import hashlib
import http.server
import lzma
import os
import shutil
import subprocess
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from colorize import convert, lua_checkpoint, pipeline
from colorize.model import ColorNet, ColorNetConfig
from colorize.tests.conftest import COLORIZE, LUA, NOT_A_COLORNET
from colorize.tests.t7_colornet import make_colornet, reference_forward
from colorize.tests.test_colorize import cli
from common import checkpoint, t7
from common.cli import UserError, parse
from common.testing import t7_writer


def forward(net, x1, x2):
    with torch.no_grad():
        ab, logits = net(torch.tensor(x2, dtype=torch.float32)[None, None], torch.tensor(x1, dtype=torch.float32)[None, None])
    return ab[0].double().numpy(), None if logits is None else torch.log_softmax(logits.double(), 1)[0].numpy()


@pytest.mark.parametrize("kw,tensor_type", [
    ({}, "torch.FloatTensor"),
    ({"bn": True, "running_std": True, "n_classes": 7, "global_first": True}, "torch.CudaTensor"),
    ({"bn": True, "mm": True, "width": 32, "global_size": 64}, "torch.DoubleTensor"),
])
def test_converted_network_matches_numpy_reference(tmp_path, kw, tensor_type):
    table, spec = make_colornet(seed=5, **kw)
    t7_writer.save(tmp_path / "m.t7", table, tensor_type=tensor_type)
    net, mean = lua_checkpoint.load_t7(tmp_path / "m.t7")
    S = net.config.global_size
    assert mean == pytest.approx(0.4512) and S == kw.get("global_size", 32)
    assert net.config.batch_norm == kw.get("bn", False) and net.config.n_classes == kw.get("n_classes", 0)
    rng = np.random.default_rng(0)
    x1, x2 = rng.uniform(-0.5, 0.5, (S, S)), rng.uniform(-0.5, 0.5, (40, 24))
    ours, logp = forward(net, x1, x2)
    ref, ref_logp = reference_forward(spec, x1, x2)
    assert ours.shape == ref.shape == (2, 20, 12)
    assert np.abs(ref - 0.5).max() > 1e-3  # the check below is not comparing constants
    np.testing.assert_allclose(ours, ref, rtol=0, atol=2e-6 if tensor_type != "torch.DoubleTensor" else 1e-6)
    if kw.get("n_classes"):
        np.testing.assert_allclose(logp, ref_logp, atol=1e-5)


def test_the_paper_sizes_map_one_to_one():
    net = ColorNet(ColorNetConfig(n_classes=205))
    assert sum(p.numel() for p in net.parameters()) == 42_353_839  # 25.7M of them in the 25,088 -> 1,024 FC
    assert net.global_fc[0][0].in_features == 512 * 7 * 7


def test_convert_main_and_colorize_with_the_result(tiny_t7, tmp_path):
    path, spec = tiny_t7
    out = tmp_path / "colornet.pt"
    convert.main(parse(convert.ConvertOptions, [str(path), str(out)]))  # the script itself: download_model.sh
    ck = checkpoint.load(out, "colorize")
    assert ck["recombine"] == "yuv" and ck["mean"] == pytest.approx(0.4512)
    net_t7, _ = lua_checkpoint.load_t7(path)
    net_pt, _ = pipeline.load_model(out, torch.device("cpu"))
    x = torch.rand(1, 1, 16, 24)
    assert torch.equal(net_t7(x)[0], net_pt(x)[0])


def test_wrong_files_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="not a colornet model"):
        lua_checkpoint.load_t7(NOT_A_COLORNET)
    (tmp_path / "x.t7").write_text("hello")
    with pytest.raises(UserError, match="not a readable Torch7"):
        lua_checkpoint.load_t7(tmp_path / "x.t7")
    table, _ = make_colornet()
    seq = t7.get(t7.get(table, "model"), "modules")[1]   # mid-level: drop a layer
    mods = t7.get(seq, "modules")
    seq._obj["modules"] = mods[:2]
    t7_writer.save(tmp_path / "bad.t7", table)
    with pytest.raises(UserError, match="mid-level path has 1 parameter layers"):
        lua_checkpoint.load_t7(tmp_path / "bad.t7")


# ---------------------------------------------------------------- download_model.sh against a local server

@pytest.fixture
def server(tmp_path):
    """127.0.0.1 serving the Torch7-written fixtures under the published names: colornet.t7 (saved after
    clearState) and colornet_imagenet.t7 (saved after a forward, without it)."""
    root = tmp_path / "www"
    root.mkdir()
    shutil.copy(LUA / "colornet_cleared.t7", root / "colornet.t7")
    with lzma.open(LUA / "colornet_forward.t7.xz") as src, open(root / "colornet_imagenet.t7", "wb") as dst:
        shutil.copyfileobj(src, dst)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    md5 = {n: hashlib.md5((root / f"{n}.t7").read_bytes()).hexdigest() for n in ("colornet", "colornet_imagenet")}
    yield f"http://127.0.0.1:{httpd.server_address[1]}", md5
    httpd.shutdown()


def run_download(tmp_path, url, md5, *names):
    md5 = md5 if isinstance(md5, dict) else {"colornet": md5, "colornet_imagenet": md5}
    env = dict(os.environ, PY=os.sys.executable, COLORIZE_MODEL_URL=url, COLORIZE_MODEL_DIR=str(tmp_path / "models"),
               COLORNET_MD5=md5["colornet"], COLORNET_IMAGENET_MD5=md5["colornet_imagenet"])
    return subprocess.run(["bash", "download_model.sh", *names], cwd=COLORIZE, env=env, capture_output=True, text=True)


def test_download_checks_md5_converts_and_the_pt_colorizes_as_colorize_lua(server, tmp_path):
    """make download-models end to end on Torch7-written files: the .pt files colorize as colorize.lua did."""
    url, md5 = server
    r = run_download(tmp_path, url, md5)
    assert r.returncode == 0, r.stderr
    assert "CC BY-NC-SA 4.0" in r.stdout and r.stdout.count("checksum ok") == 2
    models = tmp_path / "models"
    assert sorted(os.listdir(models)) == ["colornet.pt", "colornet.t7", "colornet_imagenet.pt",
                                          "colornet_imagenet.t7"]
    for name, lua_file in (("colornet", "cleared"), ("colornet_imagenet", "forward")):
        out = tmp_path / f"{name}.png"
        # colorize.py's main at the fp32 reference precision (auto is bf16 on a native-bf16 CPU)
        assert cli(LUA / "rgb.png", out, "-model", models / f"{name}.pt", "-precision", "fp32") == 0
        ours = np.asarray(Image.open(out)).astype(int)
        lua = np.asarray(Image.open(LUA / f"out_rgb_{lua_file}.png")).astype(int)
        assert np.abs(ours - lua).max() <= 1, name     # measured: identical
    again = run_download(tmp_path, url, md5, "colornet")
    assert again.returncode == 0 and "already there" in again.stdout


def test_download_refuses_a_wrong_md5_and_keeps_nothing(server, tmp_path):
    url, _ = server
    r = run_download(tmp_path, url, "0" * 32)
    assert r.returncode == 1
    assert "does not match the expected 0000000000000000...; nothing was kept" in r.stderr
    assert len(r.stderr.splitlines()) == 1 and os.listdir(tmp_path / "models") == []
    r = run_download(tmp_path, url + "/missing", "0" * 32)   # offline or a dead host: one line, where to put it
    assert r.returncode == 1 and len(r.stderr.splitlines()) == 1, r.stderr
    assert "could not download" in r.stderr and "put it at" in r.stderr and os.listdir(tmp_path / "models") == []


def test_download_converts_a_t7_put_there_by_hand_and_refuses_unknown_names(tiny_t7, tmp_path):
    """The error message's advice (put colornet.t7 in colorize/models/ yourself) works with no server at all."""
    models = tmp_path / "models"
    models.mkdir()
    (models / "colornet.t7").write_bytes(tiny_t7[0].read_bytes())
    md5 = hashlib.md5(tiny_t7[0].read_bytes()).hexdigest()
    r = run_download(tmp_path, "http://127.0.0.1:9", md5, "colornet")   # nothing listens there
    assert r.returncode == 0, r.stderr
    assert "downloading" not in r.stdout and sorted(os.listdir(models)) == ["colornet.pt", "colornet.t7"]
    assert checkpoint.load(models / "colornet.pt", "colorize")["mean"] == pytest.approx(0.4512)
    r = run_download(tmp_path, "http://127.0.0.1:9", md5, "colornet_places")
    assert r.returncode == 1 and "unknown model 'colornet_places'" in r.stderr
