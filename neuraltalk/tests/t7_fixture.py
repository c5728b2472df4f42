"""Look-alike neuraltalk2 checkpoints (CudaTensor storages and cudnn classes, which the Lua-written fixtures
in tests/lua cannot hold without a GPU) with the structure train.lua saves, plus an independent numpy forward.

checkpoint = {protos = {cnn = nn.Sequential(conv, relu, maxpool, View, Linear, ReLU, Dropout, Linear, ReLU),
                        lm = nn.LanguageModel{vocab_size, input_encoding_size, rnn_size, num_layers,
                                              drop_prob_lm, seq_length, core = nn.gModule, lookup_table}},
              vocab = {"1": word, ...}, opt = {...}, iter, loss_history, ...}
The gModule's nodes carry nngraph annotations (i2h_L, h2h_L, decoder) as misc/LSTM.lua writes them.
"""
import numpy as np
from PIL import Image

from common import t7
from common.testing import t7_writer

TO = t7.TorchObject
VGG_MEAN = np.array([123.68, 116.779, 103.939])


def _mod(typename, **fields):
    return TO(typename.encode(), fields)


def make_checkpoint(vocab, E=6, H=5, L=1, T=5, seed=0, tensor_type="torch.CudaTensor", scale=1.5):
    rng = np.random.default_rng(seed)
    V = len(vocab)
    u = lambda *shape: rng.uniform(-scale, scale, shape).astype(np.float32)  # noqa: E731
    W = {"conv_w": u(4, 3, 3, 3) * 0.01, "conv_b": u(4), "fc6_w": u(10, 4 * 28 * 28) * 0.01, "fc6_b": u(10),
         "enc_w": u(E, 10), "enc_b": u(E), "lookup": u(V + 1, E), "dec_w": u(V + 1, H), "dec_b": u(V + 1)}
    for n in range(1, L + 1):
        W[f"i2h_{n}"] = (u(4 * H, E if n == 1 else H), u(4 * H))
        W[f"h2h_{n}"] = (u(4 * H, H), u(4 * H))
    cnn = _mod("nn.Sequential", modules=[
        _mod("cudnn.SpatialConvolution", weight=W["conv_w"], bias=W["conv_b"], nInputPlane=3, nOutputPlane=4,
             kW=3, kH=3, dW=4, dH=4, padW=1, padH=1),
        _mod("cudnn.ReLU"),
        _mod("cudnn.SpatialMaxPooling", kW=2, kH=2, dW=2, dH=2, padW=0, padH=0),
        _mod("nn.View", size=np.array([-1])),
        _mod("nn.Linear", weight=W["fc6_w"], bias=W["fc6_b"]),
        _mod("cudnn.ReLU"),
        _mod("nn.Dropout", p=0.5),
        _mod("nn.Linear", weight=W["enc_w"], bias=W["enc_b"]),
        _mod("cudnn.ReLU")])
    nodes = []

    def node(module=None, name=None):
        n = TO(b"nngraph.Node", {"data": {"module": module, "annotations": {"name": name} if name else {}},
                                 "children": [], "id": len(nodes) + 1})
        nodes.append(n)
        return n

    node()  # the graph's input split
    for n in range(1, L + 1):
        node(_mod("nn.Linear", weight=W[f"i2h_{n}"][0], bias=W[f"i2h_{n}"][1]), f"i2h_{n}")
        node(_mod("nn.Linear", weight=W[f"h2h_{n}"][0], bias=W[f"h2h_{n}"][1]), f"h2h_{n}")
        node(_mod("nn.CAddTable"))
        node(_mod("nn.Sigmoid"))
    node(_mod("nn.Dropout", p=0.5), "drop_final")
    node(_mod("nn.Linear", weight=W["dec_w"], bias=W["dec_b"]), "decoder")
    node(_mod("nn.LogSoftMax"))
    core = TO(b"nn.gModule", {"forwardnodes": nodes[::-1]})  # nngraph's order is not creation order
    lm = _mod("nn.LanguageModel", vocab_size=V, input_encoding_size=E, rnn_size=H, num_layers=L, drop_prob_lm=0.5,
              seq_length=T, core=core, lookup_table=_mod("nn.LookupTable", weight=W["lookup"]))
    ck = {"protos": {"cnn": cnn, "lm": lm}, "vocab": {str(i + 1): w for i, w in enumerate(vocab)},
          "opt": {"batch_size": 16, "input_json": "coco/data.json", "input_h5": "coco/data.h5", "rnn_size": H},
          "iter": 501, "loss_history": {}, "val_loss_history": {}}
    return ck, W


def save_checkpoint(path, vocab, **kw):
    ck, W = make_checkpoint(vocab, **kw)
    t7_writer.save(path, ck, tensor_type=kw.get("tensor_type", "torch.CudaTensor"))
    return W


# ---------------------------------------------------------------- independent numpy forward
def _conv(x, w, b, stride, pad):
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    O, C, k, _ = w.shape
    Ho = (x.shape[1] - k) // stride + 1
    out = np.zeros((O, Ho, Ho))
    for i in range(k):
        for j in range(k):
            patch = x[:, i:i + stride * (Ho - 1) + 1:stride, j:j + stride * (Ho - 1) + 1:stride]
            out += np.einsum("oc,chw->ohw", w[:, :, i, j], patch)
    return out + b[:, None, None]


def _maxpool2(x):
    C, Hh, Ww = x.shape
    return x[:, :Hh // 2 * 2, :Ww // 2 * 2].reshape(C, Hh // 2, 2, Ww // 2, 2).max((2, 4))


def image_vector(W, path):
    """What protos.cnn makes of an image: 256x256 squash, centre 224 crop, minus VGG mean, forward."""
    from neuraltalk.lua_checkpoint import torch_image_scale  # checked against image.scale in test_lua_checkpoints

    img = torch_image_scale(np.asarray(Image.open(path).convert("RGB")), 256, 256).astype(np.float64)
    x = (img[15:239, 15:239] - VGG_MEAN).transpose(2, 0, 1)
    x = np.maximum(_conv(x, W["conv_w"], W["conv_b"], 4, 1), 0)
    x = _maxpool2(x).reshape(-1)
    x = np.maximum(W["fc6_w"] @ x + W["fc6_b"], 0)
    return np.maximum(W["enc_w"] @ x + W["enc_b"], 0)


def greedy_caption(W, img_vec, vocab, L=1, T=5):
    """LanguageModel:sample with sample_max 1, beam 1: -> (words, per-step log-probs incl. END)."""
    H = W["h2h_1"][1].shape[0] // 4
    V = len(vocab)
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    c, h = [np.zeros(H) for _ in range(L)], [np.zeros(H) for _ in range(L)]

    def step(x):
        for n in range(L):
            a = W[f"i2h_{n + 1}"][0] @ x + W[f"i2h_{n + 1}"][1] + W[f"h2h_{n + 1}"][0] @ h[n] + W[f"h2h_{n + 1}"][1]
            i, f, o, g = sig(a[:H]), sig(a[H:2 * H]), sig(a[2 * H:3 * H]), np.tanh(a[3 * H:])
            c[n] = f * c[n] + i * g
            h[n] = o * np.tanh(c[n])
            x = h[n]
        z = W["dec_w"] @ x + W["dec_b"]
        return z - np.log(np.exp(z - z.max()).sum()) - z.max()

    step(img_vec)
    lp = step(W["lookup"][V])  # START = token V+1
    words, lps = [], []
    for _ in range(T):
        k = int(lp.argmax())
        lps.append(lp[k])
        if k == V:  # END
            break
        words.append(vocab[k])
        lp = step(W["lookup"][k])
    return words, lps
