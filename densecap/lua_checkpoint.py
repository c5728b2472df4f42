"""The original densecap model (a .t7 holding a DenseCapModel Lua object, as train.lua saves it) -> our model.

Every size comes from the file: the 13 VGG-16 convolutions' widths, fc6/fc7, the RPN's filters and
anchors (MakeAnchors), the word encoding, the LSTM and the vocabulary, so the published full-size
model and the small Lua-written test fixture go through the same code.

What maps where (Lua -> here): nets.conv_net1/conv_net2 (VGG-16's layer sequence as loadcaffe builds it:
3x3 convolutions, ReLU, 2x2 max pooling in ceil mode) -> conv_net1/conv_net2; nn or cudnn classes,
2-D (SpatialConvolutionMM) or 4-D weights, Float/Double/Cuda storages. localization_layer.nets.rpn: the
3x3 conv, the 4k box conv and the 2k score conv (channel k*4+d and k*2+c, the ReshapeBoxFeatures order
we keep), MakeAnchors' anchors and field centres; recog_base Linears -> fc6/fc7; objectness_branch,
box_reg_branch; language_model: image_encoder Linear -> lm_encoder, lookup_table (V+2 rows; NULL, the
last, is dropped) -> lm.embed, the torch-rnn LSTM weight (D+H, 4H) with gates (i, f, o, g) -> nn.LSTM
(i, f, g, o), the output Linear -> lm.logit. The stnbhwd sampler's (y, x) order is handled in
localization.box_to_affine.

The class is `DenseCapModel` (densecap registers it without a namespace); `nn.DenseCapModel` is accepted.
"""
import numpy as np
import torch

from common import t7
from common.cli import UserError
from common.lstm import charrnn_to_torch_gates
from densecap.model import VGG16_BLOCKS, DenseCapModel, ModelConfig

CONV = ("SpatialConvolution", "SpatialConvolutionMM")
CLASS_NAMES = ("DenseCapModel", "nn.DenseCapModel")


def _modules(obj, want, out=None):
    """Depth-first list of the torch objects under `obj` whose type name ends with one of `want`."""
    out = [] if out is None else out
    if isinstance(obj, t7.TorchObject):
        name = t7.typename(obj)
        if any(name.endswith(w) for w in want):
            out.append(obj)
            return out
        children = t7.get(obj, "modules")
        if children is not None:
            for m in (children.values() if isinstance(children, dict) else children):
                _modules(m, want, out)
    return out


def _array(m, key):
    v = t7.get(m, key)
    if not isinstance(v, np.ndarray):
        raise UserError(f"not a densecap model: {t7.typename(m)} has no {key} tensor")
    return np.asarray(v, dtype=np.float32)


def _conv(m):
    w = _array(m, "weight")
    n_out, n_in = int(t7.get(m, "nOutputPlane")), int(t7.get(m, "nInputPlane"))
    kh, kw = int(t7.get(m, "kH")), int(t7.get(m, "kW"))
    return torch.from_numpy(w.reshape(n_out, n_in, kh, kw).copy()), torch.from_numpy(_array(m, "bias").copy())


def _linear(m):
    return torch.from_numpy(_array(m, "weight").copy()), torch.from_numpy(_array(m, "bias").reshape(-1).copy())


def _net(model, name):
    nets = t7.get(model, "nets")
    m = t7.get(nets, name) if nets is not None else None
    if m is None:
        raise UserError(f"not a densecap model: no nets.{name}")
    return m


def _layers(seq):
    """A Sequential's modules as ("conv", module) / ("relu",) / ("pool", ceil_mode) / (other type name,)."""
    out = []
    for m in t7.get(seq, "modules") or []:
        name = t7.typename(m)
        if name.endswith(CONV):
            if (int(t7.get(m, "kH")), int(t7.get(m, "padH", 0)), int(t7.get(m, "dH", 1))) != (3, 1, 1):
                raise UserError(f"unsupported trunk convolution {name} (3x3, stride 1, pad 1 expected)")
            out.append(("conv", m))
        elif name.endswith("ReLU"):
            out.append(("relu",))
        elif name.endswith("SpatialMaxPooling"):
            if (int(t7.get(m, "kH")), int(t7.get(m, "dH", t7.get(m, "kH")))) != (2, 2):
                raise UserError(f"unsupported trunk pooling {name} (2x2, stride 2 expected)")
            out.append(("pool", bool(t7.get(m, "ceil_mode", False))))
        else:
            out.append((name,))
    return out


def _vgg_pattern():
    kinds = []
    for i, n in enumerate(VGG16_BLOCKS):
        kinds += ["conv", "relu"] * n + (["pool"] if i < len(VGG16_BLOCKS) - 1 else [])
    return kinds


def _trunk(path, model_obj):
    """-> (config fields for the trunk, [(weight, bias)] of its convolutions in order)."""
    first, second = _layers(_net(model_obj, "conv_net1")), _layers(_net(model_obj, "conv_net2"))
    kinds = [layer[0] for layer in first + second]
    convs = [_conv(layer[1]) for layer in first + second if layer[0] == "conv"]
    if kinds == _vgg_pattern() and len(first) == 10:
        if not all(layer[1] for layer in first + second if layer[0] == "pool"):
            raise UserError(f"{path}: VGG-16 trunk pooling in floor mode (loadcaffe's pools are ceil mode)")
        return {"cnn": "vgg16", "vgg_widths": [w.shape[0] for w, _ in convs]}, convs
    if not first and kinds == ["conv", "relu", "pool"] * 4:  # our tiny trunk, as a .t7
        return {"cnn": "tiny", "tiny_channels": convs[-1][0].shape[0], "tiny_input_scale": 1.0}, convs
    raise UserError(f"{path}: unsupported trunk ({len(first)} + {len(second)} layers: {' '.join(kinds)}); "
                    f"expected densecap's VGG-16 layer sequence")


def _idx_to_token(lua_opt, lm_obj, V):
    table = t7.get(lua_opt, "idx_to_token") or t7.get(lm_obj, "idx_to_token") or {}
    items = enumerate(table, 1) if isinstance(table, list) else table.items()  # 1..n keys -> list
    return {str(int(k)): t7.text(v) for k, v in items} or {str(i): str(i) for i in range(1, V + 1)}


def load_t7_model(path):
    """-> (DenseCapModel in eval mode, idx_to_token {"1": word}, {"opt": the Lua model's scalar opt})."""
    obj = t7.load(path)
    model_obj = t7.get(obj, "model", obj) if isinstance(obj, dict) else obj
    name = t7.typename(model_obj) if isinstance(model_obj, t7.TorchObject) else type(model_obj).__name__
    if name not in CLASS_NAMES:
        raise UserError(f"{path}: not a densecap checkpoint (expected a table with model = DenseCapModel, "
                        f"found {name})")
    lua_opt = t7.get(model_obj, "opt", {})
    trunk_cfg, convs = _trunk(path, model_obj)
    loc = _net(model_obj, "localization_layer")
    rpn_convs = [_conv(m) for m in _modules(_net(loc, "rpn"), CONV)]
    make_anchors = _modules(_net(loc, "rpn"), ("MakeAnchors",))
    fcs = [_linear(m) for m in _modules(_net(model_obj, "recog_base"), ("Linear",))]
    lm_obj = _net(model_obj, "language_model")
    if len(rpn_convs) != 3 or len(fcs) != 2:
        raise UserError(f"{path}: unexpected densecap layout ({len(rpn_convs)} RPN convs, {len(fcs)} recog Linears)")
    enc = _linear(_modules(t7.get(lm_obj, "image_encoder"), ("Linear",))[0])
    lookup = torch.from_numpy(_array(t7.get(lm_obj, "lookup_table"), "weight").copy())
    lstm = _modules(t7.get(lm_obj, "rnn"), ("LSTM",))
    out_lin = _linear(_modules(t7.get(lm_obj, "rnn"), ("Linear",))[-1])
    if len(lstm) != 1:
        raise UserError(f"{path}: expected one LSTM layer in the language model, found {len(lstm)}")
    V = int(t7.get(lm_obj, "vocab_size"))
    idx_to_token = _idx_to_token(lua_opt, lm_obj, V)

    k = rpn_convs[2][0].shape[0] // 2
    anchors, field = None, (8.5, 8.5, 16.0, 16.0)
    if make_anchors:
        a = np.asarray(t7.get(make_anchors[0], "anchors"), dtype=np.float32)  # 2 x k (w; h)
        anchors = a.T.reshape(-1, 2)
        field = tuple(float(t7.get(make_anchors[0], n)) for n in ("x0", "y0", "sx", "sy"))
        if len(anchors) != k:
            raise UserError(f"{path}: {len(anchors)} anchors but a {2 * k}-channel score conv")
    cfg = ModelConfig(vocab_size=V, seq_length=int(t7.get(lm_obj, "seq_length")), **trunk_cfg,
                      fc_dim=fcs[1][0].shape[0], rpn_num_filters=rpn_convs[0][0].shape[0],
                      input_encoding_size=enc[0].shape[0], rnn_size=int(t7.get(lstm[0], "hidden_dim")),
                      anchors=None if anchors is None else anchors.tolist())
    model = DenseCapModel(cfg)
    rpn = model.localization.rpn
    rpn.field_centers = field
    ours = [m for m in list(model.conv_net1) + list(model.conv_net2) if isinstance(m, torch.nn.Conv2d)]
    pairs = list(zip(ours, convs))
    by_channels = {c[0].shape[0]: c for c in rpn_convs[1:]}
    pairs += [(rpn.conv, rpn_convs[0]), (rpn.box_conv, by_channels[4 * k]), (rpn.score_conv, by_channels[2 * k])]
    pairs += [(model.recog_base[0], fcs[0]), (model.recog_base[3], fcs[1]),
              (model.objectness, _linear(_net(model_obj, "objectness_branch"))),
              (model.box_reg, _linear(_net(model_obj, "box_reg_branch"))), (model.lm_encoder[0], enc),
              (model.lm.logit, out_lin)]
    for m, (w, b) in pairs:
        if m.weight.shape != w.shape:
            raise UserError(f"{path}: weight {tuple(w.shape)} does not fit {tuple(m.weight.shape)}")
        m.weight.data.copy_(w)
        m.bias.data.copy_(b)
    model.lm.embed.weight.data.copy_(lookup[:V + 1])  # rows 1..V words, V+1 START; V+2 (NULL) unused
    W = _array(lstm[0], "weight")  # (D + H, 4H), x @ W
    bias = _array(lstm[0], "bias")
    D = int(t7.get(lstm[0], "input_dim"))
    rnn = model.lm.lstm.rnn
    rnn.weight_ih_l0.data.copy_(charrnn_to_torch_gates(torch.from_numpy(W[:D].T.copy())))
    rnn.weight_hh_l0.data.copy_(charrnn_to_torch_gates(torch.from_numpy(W[D:].T.copy())))
    rnn.bias_ih_l0.data.copy_(charrnn_to_torch_gates(torch.from_numpy(bias.copy())))
    rnn.bias_hh_l0.data.zero_()
    opt = {k2.decode() if isinstance(k2, bytes) else k2: (t7.text(v) if isinstance(v, bytes) else v)
           for k2, v in (lua_opt.items() if isinstance(lua_opt, dict) else [])
           if isinstance(v, (bytes, str, int, float))}
    return model.eval(), idx_to_token, {"opt": opt}
