import os

import numpy as np
import pytest
import torch

from common import checkpoint, device, h5prep, t7
from common.cli import UserError, flag, options, parse
from common.lstm import LSTM, charrnn_to_torch_gates, torch_to_charrnn_gates
from common.testing import t7_writer
from common.testing.lstm_reference import CharRNNLSTMCell, charrnn_layer


@options
class Opts:
    rnn_size: int = flag(128, "size")
    model: str = flag("lstm", "type", choices=["lstm", "gru"])
    path: str = flag(None, "positional", positional=True)


def test_cli_accepts_single_and_double_dash():
    assert parse(Opts, ["-rnn_size", "512"]).rnn_size == 512
    assert parse(Opts, ["--rnn_size", "64", "ckpt.pt"]).rnn_size == 64
    o = parse(Opts, ["x.pt", "-model", "gru"])
    assert (o.path, o.model, o.rnn_size) == ("x.pt", "gru", 128)
    with pytest.raises(SystemExit):
        parse(Opts, ["-model", "transformer"])


def test_cli_help_lists_every_flag(capsys):
    with pytest.raises(SystemExit):
        parse(Opts, ["-h"])
    out = capsys.readouterr().out
    assert "-rnn_size" in out and "--rnn_size" in out and "(default: 128)" in out and "-model" in out


def test_checkpoint_roundtrip_kind_and_atomicity(tmp_path, monkeypatch):
    p = tmp_path / "a.pt"
    checkpoint.save(p, "charrnn", {"w": torch.ones(3), "vocab": ["a", "b"]})
    ck = checkpoint.load(p, "charrnn")
    assert ck["format"] == checkpoint.FORMAT_VERSION and ck["vocab"] == ["a", "b"]
    with pytest.raises(UserError, match="chatbot"):
        checkpoint.load(p, "chatbot")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="not a torch-classics checkpoint"):
        checkpoint.load(tmp_path / "junk.pt", "charrnn")
    # a write that fails half way leaves the old file intact and no temp files behind
    monkeypatch.setattr(torch, "save", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        checkpoint.save(p, "charrnn", {"w": torch.zeros(3)})
    assert torch.equal(checkpoint.load(p, "charrnn")["w"], torch.ones(3))
    assert sorted(os.listdir(tmp_path)) == ["a.pt", "junk.pt"]


def test_t7_writer_roundtrip_shared_references(tmp_path):
    node = t7.TorchObject(b"nngraph.Node", {b"id": 3})
    obj = {"a": [1, 2.5, "x"], "flag": True, "nodes": [node, node],
           "w": np.arange(6, dtype=np.float64).reshape(2, 3), "gpu": t7_writer.Tensor(np.ones((2, 2)), "torch.CudaTensor")}
    t7_writer.save(tmp_path / "x.t7", obj)
    back = t7.load(tmp_path / "x.t7")
    assert back[b"a"] == [1, 2.5, b"x"] and back[b"flag"] is True
    assert back[b"nodes"][0] is back[b"nodes"][1]  # one object, written once
    np.testing.assert_array_equal(back[b"w"], obj["w"])
    assert back[b"gpu"].dtype == np.float32 and back[b"gpu"].shape == (2, 2)
    (tmp_path / "bad.t7").write_bytes(b"\x07\x00\x00\x00garbage")
    with pytest.raises(UserError, match="not a readable Torch7"):
        t7.load(tmp_path / "bad.t7")


def test_gate_reorder_is_an_involution_pair():
    t = torch.arange(8.0)
    assert torch.equal(charrnn_to_torch_gates(t), torch.tensor([0, 1, 2, 3, 6, 7, 4, 5.0]))
    assert torch.equal(torch_to_charrnn_gates(charrnn_to_torch_gates(t)), t)


def test_fused_lstm_equals_charrnn_cell_loop():
    torch.manual_seed(0)
    B, T, I, H, L = 3, 7, 5, 4, 2
    cells = [CharRNNLSTMCell(I if layer == 0 else H, H).double() for layer in range(L)]
    fused = LSTM(I, H, L).double()
    for layer, c in enumerate(cells):
        fused.load_charrnn_layer(layer, c.i2h.weight, c.i2h.bias, c.h2h.weight, c.h2h.bias)
        w = charrnn_layer(fused, layer)
        assert torch.equal(w[0], c.i2h.weight) and torch.equal(w[3], c.h2h.bias)
    x = torch.randn(B, T, I, dtype=torch.float64)
    out, (h, c_) = fused(x)
    states = [(torch.zeros(B, H, dtype=torch.float64),) * 2 for _ in range(L)]
    for t in range(T):
        inp = x[:, t]
        for layer, cell in enumerate(cells):
            states[layer] = cell(inp, states[layer])
            inp = states[layer][1]
        torch.testing.assert_close(out[:, t], inp, rtol=0, atol=1e-12)
    torch.testing.assert_close(c_[1], states[1][0], rtol=0, atol=1e-12)


def test_lstm_init_matches_charrnn():
    m = LSTM(10, 8, 2)
    for name, p in m.rnn.named_parameters():
        if name.startswith("bias_ih"):
            assert torch.all(p[8:16] == 1.0)
            p = torch.cat([p[:8], p[16:]])
        assert p.abs().max() <= 0.08


def test_h5_ragged_roundtrip_and_freshness(tmp_path):
    import h5py
    seqs = [list(range(n)) for n in (3, 0, 5, 1)] * 50
    with h5py.File(tmp_path / "r.h5", "w") as f:
        w = h5prep.RaggedWriter(f, "turns", np.uint16, chunk=7)
        for s in seqs:
            w.append(s)
        w.flush()
        assert len(w) == len(seqs)
    with h5py.File(tmp_path / "r.h5", "r") as f:
        r = h5prep.RaggedReader(f, "turns")
        assert len(r) == len(seqs) and [list(r[i]) for i in range(len(r))] == seqs
        assert list(r.lengths()[:4]) == [3, 0, 5, 1]
    src = tmp_path / "in.txt"
    src.write_text("abc")
    d = h5prep.file_digest(src)
    h5prep.write_ids(tmp_path / "d.h5", np.array([0, 1, 2], np.uint8), d, tokens="char")
    assert h5prep.is_fresh(tmp_path / "d.h5", d, tokens="char")
    assert not h5prep.is_fresh(tmp_path / "d.h5", d, tokens="word")
    src.write_text("abd")
    assert not h5prep.is_fresh(tmp_path / "d.h5", h5prep.file_digest(src), tokens="char")
    assert h5prep.id_dtype(65) == np.uint8 and h5prep.id_dtype(1757) == np.uint16


def test_get_device_flags_and_fallbacks(monkeypatch, capsys):
    assert device.get_device(-1) == torch.device("cpu") and capsys.readouterr().err == ""
    # no GPU at all: CPU, said once on stderr
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert device.get_device(0) == torch.device("cpu")
    assert "no CUDA or MPS device found, running on CPU" in capsys.readouterr().err
    # Apple MPS when there is no CUDA
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert device.get_device(0) == torch.device("mps") and capsys.readouterr().err == ""
    # CUDA: the GPU asked for, or cuda:0 with a warning when it does not exist
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert device.get_device(1) == torch.device("cuda", 1) and capsys.readouterr().err == ""
    assert device.get_device(5) == torch.device("cuda", 0)
    assert "GPU 5 asked for but only 2 CUDA device(s) exist" in capsys.readouterr().err


def test_init_distributed_alone_is_get_device(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert device.init_distributed(-1) == (torch.device("cpu"), 0, 1)
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert device.init_distributed(-1) == (torch.device("cpu"), 0, 1)
    device.close_distributed()  # nothing to close: no error


def test_rng_state_roundtrip():
    device.seed_everything(3)
    state = device.rng_state()
    a = torch.rand(5)
    device.set_rng_state(state)
    assert torch.equal(torch.rand(5), a)


@pytest.mark.parametrize("content", [b"hello world, not a checkpoint\n" * 30, b"", b"PK\x03\x04garbage", b"\x80\x02}q\x00.",
                                     b"r\xe5"])  # the last: struct.error inside the unpickler
def test_non_checkpoint_files_are_one_line(tmp_path, content):
    p = tmp_path / "text.pt"
    p.write_bytes(content)
    with pytest.raises(UserError) as e:
        checkpoint.load(p, "charrnn")
    msg = str(e.value)
    assert msg.startswith(f"{p}: not a torch-classics checkpoint (") and "\n" not in msg and len(msg) < 300


def test_first_line_cuts_at_a_word_boundary():
    first = "Weights only load failed. " + "This file can not be loaded safely because " * 10
    line = checkpoint.first_line(RuntimeError(first + "\nmore"))
    body = line.removesuffix(" ...")
    assert line.endswith(" ...") and 100 < len(body) <= 160 and first.startswith(body)
    assert first[len(body)] == " " and body[-1] != " "  # cut between two words, never inside one
    assert checkpoint.first_line(ValueError("short\nsecond line")) == "short"
    assert checkpoint.first_line(KeyError()) == "KeyError"


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_checkpoint_mode_follows_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        path = checkpoint.save(tmp_path / "m.pt", "charrnn", {"w": torch.ones(1)})
        (tmp_path / "plain.txt").write_text("x")  # an ordinary file, for comparison
    finally:
        os.umask(old)
    mode = os.stat(path).st_mode & 0o777
    assert mode == 0o666 & ~umask == os.stat(tmp_path / "plain.txt").st_mode & 0o777


def test_the_cpu_fallback_note_names_each_experiments_own_flag(capsys, monkeypatch):
    import torch

    from common.device import get_device
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert get_device(0, "-gpu -1").type == "cpu"
    assert "(pass -gpu -1 to silence this)" in capsys.readouterr().err
    get_device(0, "gpu=0")
    assert "(pass gpu=0 to silence this)" in capsys.readouterr().err
