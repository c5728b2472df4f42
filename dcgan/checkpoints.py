"""Generator files: a .pt written by train.py / convert.py, or an original .t7 (read by lua_checkpoint)."""
import dataclasses
import os

from common import checkpoint
from common.cli import UserError
from dcgan.lua_checkpoint import load_t7
from dcgan.model import GANConfig, Generator


def load_generator(path, map_location="cpu"):
    """A generator from a .t7 (original) or a .pt (train.py / convert.py) -> (Generator in eval mode, cfg)."""
    if not path:
        raise UserError("no generator given: set net=path/to/<name>_<epoch>_net_G.pt (or an original .t7)")
    if not os.path.isfile(path):
        raise UserError(f"net={path}: no such file (give the path of a <name>_<epoch>_net_G.pt or .t7 file)")
    if path.endswith(".t7"):
        return load_t7(path)
    ck = checkpoint.load(path, "dcgan_G", map_location=map_location)
    cfg = GANConfig(**ck["config"])
    G = Generator(cfg)
    G.load_state_dict(ck["model"])
    return G.eval(), cfg


def save_generator(G, cfg, path, source=""):
    return checkpoint.save(path, "dcgan_G", {"model": {k: v.cpu() for k, v in G.state_dict().items()},
                                             "config": dataclasses.asdict(cfg), "source": source})
