"""Reading neuraltalk2's `.t7` checkpoints (model_id1-501-1448236541.t7 as train.lua saves it, or the
`_cpu.t7` of convert_checkpoint_gpu_to_cpu.lua) into our checkpoint dict, and neuraltalk2's image path
(image.scale bilinear to 256x256, net_utils.prepro's centre crop at 0-based offset 15).
Used by convert.py (a thin script) and captioner.py.

What the Lua checkpoint holds and where it goes:
  protos.cnn  nn.Sequential: VGG-16 through relu7/drop7 (conv1 already swapped to RGB by net_utils),
              then Linear(4096, 512) + ReLU  -> an nn.Sequential image encoder (fc = drop7 output, fed
              0..255 RGB minus the VGG mean, as net_utils.prepro) + ShowTell.img_embed
  protos.lm   nn.LanguageModel: lookup_table (V+1, E) and `core`, an nngraph LSTM whose Linears are
              annotated i2h_L / h2h_L / decoder -> common.caption_lm.LanguageModel (see its layout)
  vocab       ix_to_word {"1": word}; opt: the training options (rnn_size, seq_length, ...)
Storages may be CUDA or float/double: torchfile reads them all as numpy arrays.
"""
import math
import os

import numpy as np
import torch

from common import t7
from common.cli import UserError

KIND = "neuraltalk"
CONV = ("nn.SpatialConvolution", "cudnn.SpatialConvolution", "nn.SpatialConvolutionMM")
POOL = ("nn.SpatialMaxPooling", "cudnn.SpatialMaxPooling")
RELU = ("nn.ReLU", "cudnn.ReLU")


def _modules(seq):
    mods = t7.get(seq, "modules") or []
    return list(mods.values()) if isinstance(mods, dict) else list(mods)


def _num(obj, key, default=None):
    v = t7.get(obj, key, default)
    return default if v is None else int(v)


def cnn_spec_and_state(cnn):
    """protos.cnn -> (layer spec list for captioner.cnn_from_spec, its state_dict, the final Linear+ReLU)."""
    mods = _modules(cnn)
    kinds = [t7.typename(m) for m in mods]
    if len(mods) < 2 or kinds[-2] != "nn.Linear" or kinds[-1] not in RELU:
        raise UserError("protos.cnn does not end with Linear + ReLU (the encoding layer neuraltalk2 adds)")
    spec, state, feat = [], {}, None
    for k, (m, kind) in enumerate(zip(mods[:-2], kinds[:-2])):
        if kind in CONV:
            w = np.asarray(t7.get(m, "weight"), np.float32)
            n_out, n_in = _num(m, "nOutputPlane"), _num(m, "nInputPlane")
            kh, kw = _num(m, "kH"), _num(m, "kW")
            w = w.reshape(n_out, n_in, kh, kw)  # SpatialConvolutionMM stores it flat
            spec.append({"type": "conv", "in": n_in, "out": n_out, "kh": kh, "kw": kw, "dh": _num(m, "dH", 1),
                         "dw": _num(m, "dW", 1), "ph": _num(m, "padH", 0), "pw": _num(m, "padW", 0)})
            state[f"body.{k}.weight"] = torch.from_numpy(w)
            state[f"body.{k}.bias"] = torch.from_numpy(np.asarray(t7.get(m, "bias"), np.float32))
        elif kind in POOL:
            spec.append({"type": "maxpool", "kh": _num(m, "kH"), "kw": _num(m, "kW"), "dh": _num(m, "dH"),
                         "dw": _num(m, "dW"), "ph": _num(m, "padH", 0), "pw": _num(m, "padW", 0),
                         "ceil": bool(t7.get(m, "ceil_mode", False))})
        elif kind in RELU:
            spec.append({"type": "relu"})
        elif kind in ("nn.View", "nn.Reshape"):
            spec.append({"type": "flatten"})
        elif kind == "nn.Linear":
            w = np.asarray(t7.get(m, "weight"), np.float32)
            spec.append({"type": "linear", "in": w.shape[1], "out": w.shape[0]})
            state[f"body.{k}.weight"] = torch.from_numpy(w)
            state[f"body.{k}.bias"] = torch.from_numpy(np.asarray(t7.get(m, "bias"), np.float32))
            feat = w.shape[0]
        elif kind == "nn.Dropout":
            spec.append({"type": "dropout", "p": float(t7.get(m, "p", 0.5))})
        else:
            raise UserError(f"protos.cnn: layer {k + 1} is {kind}, which this converter does not know")
    if feat is None:
        raise UserError("protos.cnn has no fully connected layer before the encoding layer")
    enc = mods[-2]
    embed = (np.asarray(t7.get(enc, "weight"), np.float32), np.asarray(t7.get(enc, "bias"), np.float32))
    return spec, state, embed


def lstm_linears(core):
    """{annotation name: (weight, bias)} for the Linear nodes of the LanguageModel's nngraph core."""
    found = {}
    for node in t7.get(core, "forwardnodes") or []:
        data = t7.get(node, "data")
        module = t7.get(data, "module")
        name = t7.get(t7.get(data, "annotations") or {}, "name")
        if module is not None and t7.typename(module) == "nn.Linear" and name is not None:
            found[t7.text(name)] = (np.asarray(t7.get(module, "weight"), np.float32),
                                    np.asarray(t7.get(module, "bias"), np.float32))
    return found


def convert_t7(path):
    """-> a checkpoint dict (as train.py saves, plus `cnn_spec`) holding neuraltalk2's show-tell model."""
    from neuraltalk.model import CaptionConfig, build_model

    ck = t7.load(path)
    protos = t7.get(ck, "protos")
    lm, cnn = (t7.get(protos, "lm"), t7.get(protos, "cnn")) if protos is not None else (None, None)
    vocab = t7.get(ck, "vocab")
    if lm is None or cnn is None or vocab is None:
        raise UserError(f"{path}: not a neuraltalk2 checkpoint (expected protos.lm, protos.cnn and vocab)")
    ix_to_word = {t7.text(k): t7.text(v) for k, v in (vocab.items() if isinstance(vocab, dict)
                                                       else enumerate(vocab, 1))}
    V = _num(lm, "vocab_size")
    E, H = _num(lm, "input_encoding_size"), _num(lm, "rnn_size")
    L, T = _num(lm, "num_layers", 1), _num(lm, "seq_length")
    if len(ix_to_word) != V:
        raise UserError(f"{path}: vocab has {len(ix_to_word)} words but the LanguageModel {V}")
    linears = lstm_linears(t7.get(lm, "core"))
    needed = [f"{d}_{n}" for n in range(1, L + 1) for d in ("i2h", "h2h")] + ["decoder"]
    missing = [n for n in needed if n not in linears]
    if missing:
        raise UserError(f"{path}: the LanguageModel core lacks the Linear nodes {', '.join(missing)}")
    spec, cnn_state, (embed_w, embed_b) = cnn_spec_and_state(cnn)
    fc_dim = embed_w.shape[1]

    cfg = CaptionConfig("show_tell", V, fc_dim, 0, E, H, L, float(t7.get(lm, "drop_prob_lm", 0.5)), T,
                        beam_search="neuraltalk2")  # LanguageModel:sample_beam, exactly
    decoder = build_model(cfg)
    with torch.no_grad():
        decoder.img_embed[0].weight.copy_(torch.from_numpy(embed_w))
        decoder.img_embed[0].bias.copy_(torch.from_numpy(embed_b))
        decoder.lm.embed.weight.copy_(torch.from_numpy(np.asarray(t7.get(t7.get(lm, "lookup_table"), "weight"),
                                                                  np.float32)))
        for n in range(L):
            decoder.lm.lstm.load_charrnn_layer(n, *linears[f"i2h_{n + 1}"], *linears[f"h2h_{n + 1}"])
        decoder.lm.logit.weight.copy_(torch.from_numpy(linears["decoder"][0]))
        decoder.lm.logit.bias.copy_(torch.from_numpy(linears["decoder"][1]))
    opt_t7 = t7.get(ck, "opt") or {}
    opt = {"caption_model": "show_tell", "batch_size": _num(opt_t7, "batch_size", 16),
           "input_json": t7.text(t7.get(opt_t7, "input_json", b"")), "input_h5": t7.text(t7.get(opt_t7, "input_h5", b"")),
           "converted_from": os.path.abspath(path)}
    return {"config": cfg.to_dict(), "model": decoder.state_dict(), "cnn": cnn_state, "cnn_spec": spec,
            "cnn_preprocess": "caffe",
            "cnn_info": {"cnn": "vgg16 (neuraltalk2 .t7)", "image_size": 256, "crop_size": 224, "att_size": 0,
                         "resize": "torch_image_bilinear"},
            "opt": opt, "ix_to_word": ix_to_word, "seq_length": T, "iter": _num(ck, "iter", 0), "kind": KIND}


# ---------------------------------------------------------------- neuraltalk2's image path
def _scale_axis(x, axis, dst_len):
    """torch/image's Main_scaleLinear_rowcol along `axis` of a uint8 array, in float32 as its C code, each
    result rounded to a byte (+0.5, clamp, truncate) as image.scale on a ByteTensor does after each pass."""
    x = np.moveaxis(x, axis, 0).astype(np.float32)
    src_len = x.shape[0]
    if dst_len == src_len:
        return np.moveaxis(x.astype(np.uint8), 0, axis)
    out = np.empty((dst_len,) + x.shape[1:], np.float32)
    f32 = np.float32
    if dst_len > src_len:
        if src_len == 1:
            out[:] = x[0]
        else:
            scale = f32(src_len - 1) / f32(dst_len - 1)
            for di in range(dst_len - 1):
                si_f = f32(di) * scale
                si_i = int(si_f)
                si_f = f32(si_f - f32(si_i))
                out[di] = (f32(1) - si_f) * x[si_i] + si_f * x[min(si_i + 1, src_len - 1)]
            out[:-1] = np.clip(np.floor(out[:-1] + f32(0.5)), 0, 255)
        out[-1] = x[-1]
    else:
        scale = f32(src_len) / f32(dst_len)
        si0_i, si0_f = 0, f32(0)
        for di in range(dst_len):
            si1_f = f32(di + 1) * scale
            si1_i = int(si1_f)
            si1_f = f32(si1_f - f32(si1_i))
            acc = (f32(1) - si0_f) * x[si0_i]
            n = f32(1) - si0_f
            for si in range(si0_i + 1, si1_i):
                acc = acc + x[si]
                n = f32(n + f32(1))
            if si1_i < src_len:
                acc = acc + si1_f * x[si1_i]
                n = f32(n + si1_f)
            out[di] = acc / n
            si0_i, si0_f = si1_i, si1_f
        out = np.clip(np.floor(out + f32(0.5)), 0, 255)
    return np.moveaxis(out.astype(np.uint8), 0, axis)


def torch_image_scale(img, width, height):
    """image.scale(img, width, height) (mode bilinear) of an (H, W, 3) uint8 array: rows first, then columns."""
    return _scale_axis(_scale_axis(img, 1, width), 0, height)


def prepro_crop_offset(size, crop=224):
    """net_utils.prepro's centre crop start, 0-based: Lua's 1-based math.ceil((size - crop) / 2)."""
    return max(0, math.ceil((size - crop) / 2) - 1) if size > crop else 0
