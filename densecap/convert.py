"""The original densecap model (.t7, a DenseCapModel Lua object) -> our DenseCapModel, or a .pt checkpoint.

    python convert.py densecap-pretrained-vgg16.t7 densecap-pretrained-vgg16.pt
    python run_model.py -checkpoint densecap-pretrained-vgg16.t7 ...     # or use the .t7 directly

What maps where (Lua -> here): nets.conv_net1/conv_net2 convolutions (nn or cudnn, 2-D or 4-D weights,
Float/Double/Cuda storages) -> conv_net1/conv_net2 in order; localization_layer.nets.rpn: the 3x3 conv,
the 4k box conv and the 2k score conv (channel k*4+d and k*2+c, the ReshapeBoxFeatures order we keep),
MakeAnchors' anchors and field centres; recog_base Linears -> fc6/fc7; objectness_branch, box_reg_branch;
language_model: image_encoder Linear -> lm_encoder, lookup_table (V+2 rows; NULL, the last, is dropped)
-> lm.embed, the torch-rnn LSTM weight (D+H, 4H) with gates (i, f, o, g) -> nn.LSTM (i, f, g, o),
the output Linear -> lm.logit. The stnbhwd sampler's (y, x) order is handled in box_to_affine.
"""
import sys

import numpy as np
import torch

from common import t7
from common.cli import UserError, flag, options, parse, run
from common.lstm import charrnn_to_torch_gates
from densecap.model import DenseCapModel, ModelConfig


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


def _conv(m):
    w = np.asarray(t7.get(m, "weight"), dtype=np.float32)
    n_out, n_in = int(t7.get(m, "nOutputPlane")), int(t7.get(m, "nInputPlane"))
    kh, kw = int(t7.get(m, "kH")), int(t7.get(m, "kW"))
    return torch.from_numpy(w.reshape(n_out, n_in, kh, kw).copy()), torch.from_numpy(
        np.asarray(t7.get(m, "bias"), dtype=np.float32).copy())


def _linear(m):
    return (torch.from_numpy(np.asarray(t7.get(m, "weight"), dtype=np.float32).copy()),
            torch.from_numpy(np.asarray(t7.get(m, "bias"), dtype=np.float32).reshape(-1).copy()))


def _net(model, name):
    nets = t7.get(model, "nets")
    m = t7.get(nets, name) if nets is not None else None
    if m is None:
        raise UserError(f"not a densecap model: no nets.{name}")
    return m


CONV = ("SpatialConvolution", "SpatialConvolutionMM")


def load_t7_model(path):
    """-> (DenseCapModel in eval mode, idx_to_token {"1": word}, {"opt": the Lua model's opt})."""
    obj = t7.load(path)
    model_obj = t7.get(obj, "model", obj)
    if not isinstance(model_obj, t7.TorchObject) or t7.typename(model_obj) != "nn.DenseCapModel":
        raise UserError(f"{path}: not a densecap checkpoint (expected a table with model = nn.DenseCapModel, "
                        f"found {t7.typename(model_obj)})")
    lua_opt = t7.get(model_obj, "opt", {})
    table = t7.get(lua_opt, "idx_to_token") or {}
    items = enumerate(table, 1) if isinstance(table, list) else table.items()  # torchfile: 1..n keys -> list
    idx_to_token = {str(int(k)): t7.text(v) for k, v in items}
    convs1 = [_conv(m) for m in _modules(_net(model_obj, "conv_net1"), CONV)]
    convs2 = [_conv(m) for m in _modules(_net(model_obj, "conv_net2"), CONV)]
    loc = _net(model_obj, "localization_layer")
    rpn_convs = [_conv(m) for m in _modules(_net(loc, "rpn"), CONV)]
    make_anchors = _modules(_net(loc, "rpn"), ("MakeAnchors",))
    fcs = [_linear(m) for m in _modules(_net(model_obj, "recog_base"), ("Linear",))]
    lm_obj = _net(model_obj, "language_model") if t7.get(t7.get(model_obj, "nets"), "language_model") else None
    if lm_obj is None or len(rpn_convs) != 3 or len(fcs) != 2:
        raise UserError(f"{path}: unexpected densecap layout ({len(rpn_convs)} RPN convs, {len(fcs)} recog Linears)")
    enc = _linear(_modules(t7.get(lm_obj, "image_encoder"), ("Linear",))[0])
    lookup = torch.from_numpy(np.asarray(t7.get(t7.get(lm_obj, "lookup_table"), "weight"), dtype=np.float32).copy())
    lstm = _modules(t7.get(lm_obj, "rnn"), ("LSTM",))
    out_lin = _linear(_modules(t7.get(lm_obj, "rnn"), ("Linear",))[-1])
    if len(lstm) != 1:
        raise UserError(f"{path}: expected one LSTM layer in the language model, found {len(lstm)}")
    V = int(t7.get(lm_obj, "vocab_size"))
    idx_to_token = idx_to_token or {str(i): str(i) for i in range(1, V + 1)}

    # architecture from the weights: 13 convs = VGG-16, else the tiny trunk
    all_convs = convs1 + convs2
    if len(all_convs) == 13:
        cnn, tiny = "vgg16", 64
    elif len(convs1) == 0 and len(convs2) == 4:
        cnn, tiny = "tiny", all_convs[-1][0].shape[0]
    else:
        raise UserError(f"{path}: unsupported trunk with {len(convs1)} + {len(convs2)} convolutions")
    k = rpn_convs[2][0].shape[0] // 2
    anchors, field = None, (8.5, 8.5, 16.0, 16.0)
    if make_anchors:
        a = np.asarray(t7.get(make_anchors[0], "anchors"), dtype=np.float32)  # 2 x k (w; h)
        anchors = a.T.reshape(-1, 2)
        field = tuple(float(t7.get(make_anchors[0], n)) for n in ("x0", "y0", "sx", "sy"))
    cfg = ModelConfig(vocab_size=V, seq_length=int(t7.get(lm_obj, "seq_length")), cnn=cnn, tiny_channels=tiny,
                      tiny_input_scale=1.0,
                      fc_dim=fcs[1][0].shape[0], rpn_num_filters=rpn_convs[0][0].shape[0],
                      input_encoding_size=enc[0].shape[0], rnn_size=int(t7.get(lstm[0], "hidden_dim")),
                      anchors=None if anchors is None else anchors.tolist())
    if anchors is not None and len(anchors) != k:
        raise UserError(f"{path}: {len(anchors)} anchors but a {2 * k}-channel score conv")
    model = DenseCapModel(cfg)
    rpn = model.localization.rpn
    rpn.field_centers = field
    ours = [m for m in list(model.conv_net1) + list(model.conv_net2) if isinstance(m, torch.nn.Conv2d)]
    for m, (w, b) in zip(ours, all_convs):
        if m.weight.shape != w.shape:
            raise UserError(f"{path}: conv weight {tuple(w.shape)} does not fit {tuple(m.weight.shape)}")
        m.weight.data.copy_(w)
        m.bias.data.copy_(b)
    by_channels = {c[0].shape[0]: c for c in rpn_convs[1:]}
    for ours_m, theirs in ((rpn.conv, rpn_convs[0]), (rpn.box_conv, by_channels[4 * k]),
                           (rpn.score_conv, by_channels[2 * k])):
        if ours_m.weight.shape != theirs[0].shape:
            raise UserError(f"{path}: RPN conv {tuple(theirs[0].shape)} does not fit {tuple(ours_m.weight.shape)}")
        ours_m.weight.data.copy_(theirs[0])
        ours_m.bias.data.copy_(theirs[1])
    for m, (w, b) in ((model.recog_base[0], fcs[0]), (model.recog_base[3], fcs[1]),
                      (model.objectness, _linear(_net(model_obj, "objectness_branch"))),
                      (model.box_reg, _linear(_net(model_obj, "box_reg_branch"))), (model.lm_encoder[0], enc),
                      (model.lm.logit, out_lin)):
        if m.weight.shape != w.shape:
            raise UserError(f"{path}: Linear {tuple(w.shape)} does not fit {tuple(m.weight.shape)}")
        m.weight.data.copy_(w)
        m.bias.data.copy_(b)
    model.lm.embed.weight.data.copy_(lookup[:V + 1])  # rows 1..V words, V+1 START; V+2 (NULL) unused
    W = np.asarray(t7.get(lstm[0], "weight"), dtype=np.float32)  # (D + H, 4H), x @ W
    bias = np.asarray(t7.get(lstm[0], "bias"), dtype=np.float32)
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


@options
class ConvertOptions:
    """Convert the original densecap .t7 model into a torch-classics .pt checkpoint."""
    input: str = flag(None, "the .t7 model (e.g. densecap-pretrained-vgg16.t7)", positional=True)
    output: str = flag(None, "the .pt checkpoint to write", positional=True)


def main(opt: ConvertOptions):
    from densecap.checkpoints import save_model

    if not opt.input or not opt.output:
        raise UserError("usage: python convert.py MODEL.t7 OUTPUT.pt")
    model, idx_to_token, extra = load_t7_model(opt.input)
    save_model(opt.output, model, idx_to_token, lua_opt=extra["opt"])
    print(f"wrote {opt.output} ({model.cfg.cnn}, vocabulary {model.cfg.vocab_size})", file=sys.stderr)


if __name__ == "__main__":
    run(main, parse(ConvertOptions))
