"""Save and load densecap models: our atomic .pt checkpoints, or the original's .t7 (lua_checkpoint.py)."""
import torch

from common import checkpoint
from common.cli import UserError
from densecap.lua_checkpoint import load_t7_model
from densecap.model import DenseCapModel, ModelConfig

KIND = "densecap"


def save_model(path, model, idx_to_token, **extra):
    payload = {"model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
               "config": model.cfg.to_dict(), "idx_to_token": dict(idx_to_token)}
    payload.update(extra)
    return checkpoint.save(path, KIND, payload)


def load_model(path, device="cpu", mmap=False):
    """-> (model in eval mode, idx_to_token {"1": word}, the whole checkpoint dict). mmap=True (inference)
    maps a .pt's weights from the file and builds the model on the meta device, so that no random
    initialisation (fc6 alone is 100M weights) runs only to be overwritten."""
    if str(path).endswith(".t7"):
        model, idx_to_token, ckpt = load_t7_model(path)
    else:
        ckpt = checkpoint.load(path, KIND, mmap=mmap)
        try:
            cfg = ModelConfig.from_dict(ckpt["config"])
        except (KeyError, TypeError, ValueError) as e:
            raise UserError(f"{path}: not a densecap model checkpoint this code can rebuild ({e})") from None
        if mmap:
            with torch.device("meta"):
                model = DenseCapModel(cfg)
            model.load_state_dict(ckpt["model"], assign=True)
        else:
            model = DenseCapModel(cfg)
            model.load_state_dict(ckpt["model"])
        idx_to_token = ckpt["idx_to_token"]
    return model.to(device).eval(), idx_to_token, ckpt


def captions_of(seqs, idx_to_token):
    """(N, L) word ids, 0 = end -> list of strings."""
    out = []
    for row in seqs.tolist() if isinstance(seqs, torch.Tensor) else seqs:
        words = []
        for ix in row:
            if ix == 0 or str(ix) not in idx_to_token:
                break
            words.append(idx_to_token[str(ix)])
        out.append(" ".join(words))
    return out
