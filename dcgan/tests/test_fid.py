"""fid.py: the Frechet distance and KID against independent computations, and on real folders."""
import numpy as np
import pytest
import torch
from PIL import Image

from common.cli import UserError
from dcgan import fid, metrics
from dcgan.checkpoints import save_generator
from dcgan.model import GANConfig, Generator, weights_init
from dcgan.options import FidOptions


def _sqrtm_psd(c):
    w, v = np.linalg.eigh(c)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def test_frechet_distance_matches_an_eigendecomposition():
    rng = np.random.default_rng(0)
    f1 = rng.normal(size=(500, 6)) @ rng.normal(size=(6, 6))
    f2 = rng.normal(1.0, 2.0, size=(400, 6))
    c1, c2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    s1 = _sqrtm_psd(c1)  # Tr (C1 C2)^1/2 = Tr (C1^1/2 C2 C1^1/2)^1/2
    expected = ((f1.mean(0) - f2.mean(0)) ** 2).sum() + np.trace(c1 + c2 - 2 * _sqrtm_psd(s1 @ c2 @ s1))
    assert metrics.frechet_distance(f1, f2) == pytest.approx(expected, rel=1e-6)
    assert metrics.frechet_distance(f1, f1) == pytest.approx(0, abs=1e-6)


def test_kid_matches_the_unbiased_mmd_written_out():
    rng = np.random.default_rng(1)
    f1, f2 = rng.normal(size=(30, 5)), rng.normal(0.5, 1, size=(30, 5))
    ours, std = metrics.kernel_distance(f1, f2, subsets=1, subset_size=30)  # one subset = all: no sampling
    k = lambda a, b: (a @ b / 5 + 1) ** 3  # noqa: E731
    n = 30
    xx = sum(k(f1[i], f1[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    yy = sum(k(f2[i], f2[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(f1[i], f2[j]) for i in range(n) for j in range(n)) / (n * n)
    assert ours == pytest.approx(xx + yy - 2 * xy, rel=1e-9) and std == 0


def _folder(path, images):
    path.mkdir()
    for i, a in enumerate(images):
        Image.fromarray(a).save(path / f"{i}.png")
    return str(path)


def test_same_folder_is_zero_and_different_sets_are_far(tmp_path, capsys):
    rng = np.random.default_rng(0)

    def digit():
        a = np.clip(rng.normal(0, 30, (28, 28)), 0, 255).astype(np.uint8)
        r, c = rng.integers(4, 16, 2)
        a[r:r + 8, c:c + 4] = 255  # a bright stroke
        return a
    a = _folder(tmp_path / "a", [digit() for _ in range(40)])
    a2 = _folder(tmp_path / "a2", [digit() for _ in range(40)])  # same distribution, other samples
    b = _folder(tmp_path / "b", [rng.integers(0, 256, (28, 28), dtype=np.uint8) for _ in range(40)])
    o = dict(feature="random", kid_subsets=5)
    same = fid.main(FidOptions(path1=a, path2=a, **o))
    near = fid.main(FidOptions(path1=a2, path2=a, **o))
    far = fid.main(FidOptions(path1=b, path2=a, **o))
    assert abs(same["fid"]) < 1e-6 and abs(same["kid"]) < 0.01 * far["kid"]  # unbiased KID of a set with itself is ~0, not 0
    assert far["fid"] > 5 * near["fid"] and far["kid"] > 5 * abs(near["kid"])
    assert "features: untrained random CNN" in capsys.readouterr().out  # every figure names its network


def test_generator_against_folder_and_bad_input(tmp_path):
    torch.manual_seed(0)
    cfg = GANConfig(nz=10, ngf=4, nc=1, fineSize=32)
    G = Generator(cfg)
    G.apply(weights_init)
    net = save_generator(G, cfg, str(tmp_path / "g_net_G.pt"))
    real = _folder(tmp_path / "real", [np.full((28, 28), v, np.uint8) for v in range(0, 250, 10)])
    r = fid.main(FidOptions(path1=net, path2=real, feature="random", nsamples=30, batchSize=16, kid_subsets=3))
    assert (r["n1"], r["n2"]) == (30, 25) and r["fid"] > 0
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no readable images"):
        fid.main(FidOptions(path1=real, path2=str(tmp_path / "empty"), feature="random"))
    with pytest.raises(UserError, match="needs torchvision's Inception-v3 weights"):
        fid.main(FidOptions(path1=real, path2=real, feature="inception",
                            inception_weights=str(tmp_path / "missing.pth")))


def test_digit_feature_net_trains_and_reads_idx(tmp_path, blobs, monkeypatch):
    """The offline feature net trains on IDX files (tiny here) and is reused from where it was saved."""
    import gzip
    labels = np.arange(960) % 2
    with gzip.open(blobs / "train-labels-idx1-ubyte.gz", "wb") as f:
        f.write(b"\0\0\x08\x01" + (960).to_bytes(4, "big") + labels.astype(np.uint8).tobytes())
    monkeypatch.setattr(metrics, "MNIST_TRAIN", 640)  # train on 640, hold back the other 320
    monkeypatch.setattr(metrics, "FEATURE_EPOCHS", 4)
    feats = metrics.feature_net("mnist", feature_path=str(tmp_path / "f.pt"), mnist_root=str(blobs))
    acc = float(feats.name.split("held-back accuracy ")[1].split(",")[0])
    assert acc > 0.95  # two blob positions are easy to tell apart
    f = metrics.folder_features(str(blobs), feats)
    assert f.shape == (960, 128)
    again = metrics.feature_net("mnist", feature_path=str(tmp_path / "f.pt"))
    assert again.name == feats.name


def test_torchmetrics_gives_the_old_hand_written_figures():
    """FID and KID moved to torchmetrics; on fixed features they give what the hand-written scipy/numpy code
    gave (computed with it at 64cc636: FID 2.7523505795006002, KID 0.34282984930516297 on all 250 vs 250)."""
    g = torch.Generator().manual_seed(0)
    f1 = torch.randn(300, 16, generator=g, dtype=torch.float64)
    f2 = torch.randn(250, 16, generator=g, dtype=torch.float64) * 1.2 + 0.3
    assert metrics.frechet_distance(f1, f2) == pytest.approx(2.7523505795006002, rel=1e-9)
    assert metrics.frechet_distance(f1, f1) == pytest.approx(0, abs=1e-9)
    kid, std = metrics.kernel_distance(f1[:250], f2, subsets=3, subset_size=1000)  # capped at 250: all of both
    assert kid == pytest.approx(0.34282984930516297, rel=1e-12) and std == pytest.approx(0, abs=1e-12)
    r = metrics.scores(f1, f2, subsets=3, subset_size=1000, seed=1)  # 3 random subsets of 250 of the 300
    assert r == metrics.scores(f1, f2, subsets=3, subset_size=1000, seed=1) and (r["n1"], r["n2"]) == (300, 250)
    # other subsets than the old code's numpy RNG drew (it gave 0.33578837527174343 +- 0.00408): near, not equal
    assert abs(r["kid"] - 0.33578837527174343) < 3 * (r["kid_std"] + 0.00408)
