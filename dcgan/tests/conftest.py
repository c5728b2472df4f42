import gzip
import struct

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def write_idx(path, images):
    """uint8 N x H x W -> an IDX image file (gzipped when the name ends in .gz)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(struct.pack(">iiii", 2051, *images.shape))
        f.write(np.ascontiguousarray(images, np.uint8).tobytes())


@pytest.fixture
def blobs(tmp_path):
    """An IDX folder of 960 small 'digits': a bright square at one of two places (two modes)."""
    rng = np.random.default_rng(0)
    x = np.zeros((960, 12, 12), np.uint8)
    for i in range(960):
        r, c = (2, 2) if i % 2 else (6, 6)
        x[i, r:r + 4, c:c + 4] = 200 + rng.integers(0, 55)
    d = tmp_path / "blobs"
    d.mkdir()
    write_idx(d / "train-images-idx3-ubyte.gz", x)
    return d


@pytest.fixture
def net(tmp_path):
    """A tiny random 32-pixel generator saved as a .pt (nz 10, ngf 4)."""
    from dcgan.checkpoints import save_generator
    from dcgan.model import GANConfig, Generator, weights_init
    torch.manual_seed(0)
    cfg = GANConfig(nz=10, ngf=4, nc=3, fineSize=32)
    G = Generator(cfg)
    G.apply(weights_init)
    return save_generator(G, cfg, str(tmp_path / "tiny_net_G.pt"))
