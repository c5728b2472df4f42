"""A trained captioner from a file (our .pt, or neuraltalk2's .t7 converted on the fly) and captioning
a folder of your own images."""
import os

import torch
import torch.nn as nn

from common import checkpoint
from common.captions import decode_batch
from neuraltalk.cnn import ImageEncoder, build_cnn, to_tensor_batch
from neuraltalk.data import center_crop, list_image_folder, load_rgb
from neuraltalk.model import CaptionModel, build_model, config_of_checkpoint

KIND = "neuraltalk"


def load_checkpoint(path):
    """-> the checkpoint dict: ours (.pt) or neuraltalk2's .t7 converted in memory."""
    if str(path).endswith(".t7"):
        from neuraltalk.lua_checkpoint import convert_t7
        return convert_t7(path)
    return checkpoint.load(path, KIND)


def cnn_from_spec(spec, preprocess="caffe"):
    """Rebuild a converted Lua CNN (a list of layer descriptions) as an nn.Sequential encoder."""
    layers = []
    for s in spec:
        t = s["type"]
        if t == "conv":
            layers.append(nn.Conv2d(s["in"], s["out"], (s["kh"], s["kw"]), (s["dh"], s["dw"]), (s["ph"], s["pw"])))
        elif t == "maxpool":
            layers.append(nn.MaxPool2d((s["kh"], s["kw"]), (s["dh"], s["dw"]), (s["ph"], s["pw"]),
                                       ceil_mode=s["ceil"]))
        elif t == "relu":
            layers.append(nn.ReLU())
        elif t == "flatten":
            layers.append(nn.Flatten())
        elif t == "linear":
            layers.append(nn.Linear(s["in"], s["out"]))
        elif t == "dropout":
            layers.append(nn.Dropout(s["p"]))
        else:
            raise ValueError(f"unknown layer type {t}")
    fc_dim = next(s["out"] for s in reversed(spec) if s["type"] == "linear")
    return ImageEncoder(nn.Sequential(*layers), "sequential", fc_dim, 0, preprocess=preprocess)


def _load_weights(module, state):
    """Load `state` into `module`; a module built on the meta device takes the checkpoint's tensors as they are
    (no random initialisation first: ~0.35 CPU s for a ResNet-18 captioner)."""
    module.load_state_dict(state, assign=any(t.is_meta for t in module.parameters()))
    if any(t.is_meta for t in (*module.parameters(), *module.buffers())):
        raise ValueError("checkpoint lacks some of the model's tensors")
    return module


def build_captioner(ck, device="cpu"):
    """Checkpoint dict -> CaptionModel in eval mode (CNN included, so raw images can be captioned)."""
    info = ck["cnn_info"]
    if "cnn_spec" in ck:
        cnn = cnn_from_spec(ck["cnn_spec"], ck.get("cnn_preprocess", "caffe"))
    else:
        # the architecture only: the weights come from the checkpoint (no download needed)
        import contextlib
        import io
        with contextlib.redirect_stderr(io.StringIO()), torch.device("meta"):  # no random init to overwrite
            cnn = build_cnn(info["cnn"], "", int(info["att_size"]), int(info.get("seed", 123)))
    cnn = _load_weights(cnn, ck["cnn"])
    cfg = config_of_checkpoint(ck)
    with torch.device("meta"):
        decoder = build_model(cfg)
    decoder = _load_weights(decoder, ck["model"])
    model = CaptionModel(decoder, cnn, cfg)
    if "feat_stats" in ck:
        model.set_feature_stats(**ck["feat_stats"])
    return model.to(device).eval()


def read_ahead(paths, read, ahead):
    """(path, read(path)) in order, read by two worker threads up to `ahead` files ahead of the caller
    (decoding and resizing the next batch overlaps with the network on this one)."""
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(2) as pool:
        pending = deque()
        for path in paths:
            pending.append((path, pool.submit(read, path)))
            if len(pending) > ahead:
                path, image = pending.popleft()
                yield path, image.result()
        while pending:
            path, image = pending.popleft()
            yield path, image.result()


@torch.inference_mode()
def caption_folder(model, ix_to_word, folder, info, device, num_images=-1, batch_size=1, **sample_kw):
    """Caption every decodable image of a folder -> [{image_id, caption, file_name, path}] (ids "1".."N" as
    neuraltalk2's DataLoaderRaw). Undecodable files and names starting with '.' are skipped with a warning."""
    files = list_image_folder(folder)
    if num_images is not None and num_images >= 0:
        files = files[:num_images]
    size, crop = int(info.get("image_size", 256)), int(info.get("crop_size", 224))
    lua = info.get("resize") == "torch_image_bilinear"  # neuraltalk2: image.scale, crop at 0-based 15
    preds, batch, names = [], [], []

    def read(path):
        img = load_rgb(path, None if lua else size)
        if img is not None and lua:
            from neuraltalk.lua_checkpoint import torch_image_scale
            img = torch_image_scale(img, size, size)
        return img

    def flush():
        if lua:
            from neuraltalk.lua_checkpoint import prepro_crop_offset
            o = prepro_crop_offset(size, crop)
            imgs = to_tensor_batch(batch)[..., o:o + crop, o:o + crop].to(device)
        else:
            imgs = center_crop(to_tensor_batch(batch), crop).to(device)
        fc, att = model.features(imgs)
        seq, _ = model(fc, att, mode="sample", **sample_kw)
        for path, sent in zip(names, decode_batch(seq.cpu().numpy(), ix_to_word)):
            preds.append({"image_id": str(len(preds) + 1), "caption": sent, "file_name": os.path.basename(path),
                          "path": path})
        batch.clear(), names.clear()

    for path, img in read_ahead(files, read, ahead=2 * max(1, batch_size)):
        if img is None:
            continue
        batch.append(img)
        names.append(path)
        if len(batch) == max(1, batch_size):
            flush()
    if batch:
        flush()
    return preds
