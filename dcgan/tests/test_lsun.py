"""dataset=lsun: LSUN's LMDB databases (data/donkey_lsun.lua), read with the lmdb package, decoded by Pillow."""
import io
import os
import pickle

import lmdb
import numpy as np
import pytest
import torch
from PIL import Image

from common import checkpoint
from common.cli import UserError
from dcgan import train
from dcgan.data import LMDBImages, find_lsun, make_loader
from dcgan.options import TrainOptions, cli

FORMATS = ("PNG", "JPEG", "WEBP", "JPEG")


def encoded_images(size=(40, 30)):
    """Four distinct noise pictures, encoded as LSUN stores them (JPEG/WebP; PNG too), keyed in sorted order."""
    rng = np.random.default_rng(0)
    blobs = {}
    for i, fmt in enumerate(FORMATS):
        a = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, fmt)
        blobs[f"img{i}".encode()] = buf.getvalue()
    return blobs


def write_lmdb(path, blobs):
    path.parent.mkdir(parents=True, exist_ok=True)
    with lmdb.open(str(path), map_size=1 << 24) as env, env.begin(write=True) as txn:
        for k, v in blobs.items():
            txn.put(k, v)
    return path


@pytest.fixture
def lsun(tmp_path):
    """DATA_ROOT holding bedroom_train_lmdb/data.mdb: four images and one corrupt value (the last key)."""
    blobs = encoded_images()
    write_lmdb(tmp_path / "lsun" / "bedroom_train_lmdb", {**blobs, b"img9bad": b"\xff\xd8 not a jpeg"})
    return tmp_path / "lsun", blobs


def crops(blob, loadSize, fineSize):
    """Every fineSize crop (and its mirror) of the image decoded independently: shorter side -> loadSize."""
    im = Image.open(io.BytesIO(blob)).convert("RGB")
    w, h = im.size
    size = (round(loadSize * w / h), loadSize) if h <= w else (loadSize, round(loadSize * h / w))
    a = torch.from_numpy(np.asarray(im.resize(size, Image.BILINEAR)).copy()).permute(2, 0, 1).float() / 255 * 2 - 1
    out = []
    for i in range(a.shape[1] - fineSize + 1):
        for j in range(a.shape[2] - fineSize + 1):
            c = a[:, i:i + fineSize, j:j + fineSize]
            out += [c, c.flip(-1)]
    return torch.stack(out)


def test_loader_yields_crops_of_the_decoded_lmdb_images(lsun, capsys):
    root, blobs = lsun
    opt = TrainOptions(dataset="lsun", DATA_ROOT=str(root), loadSize=24, fineSize=16, batchSize=4, ntrain=16,
                       nThreads=0)
    torch.manual_seed(0)
    loader, batches, nc, n = make_loader(opt)
    assert (batches, nc, n) == (2, 3, 5)
    candidates = [crops(b, 24, 16) for b in blobs.values()]
    seen = set()
    for batch in [*loader, *loader]:  # two epochs
        assert batch.shape == (4, 3, 16, 16) and batch.min() >= -1 and batch.max() <= 1
        for x in batch:
            match = [k for k, c in enumerate(candidates) if ((c - x).abs().amax((1, 2, 3)) < 1e-6).any()]
            assert len(match) == 1
            seen.add(match[0])
    assert len(seen) >= 3
    # the corrupt value: a warning naming the database and key, and another image in its place
    ds = loader.dataset
    x = ds[4]
    err = capsys.readouterr().err
    assert "skipping" in err and "bedroom_train_lmdb key img9bad" in err
    assert any(((c - x).abs().amax((1, 2, 3)) < 1e-6).any() for c in candidates)


def test_layouts_and_classes(tmp_path, lsun):
    root, blobs = lsun
    db = str(root / "bedroom_train_lmdb")
    assert find_lsun(db) == [db]  # the LMDB folder itself
    write_lmdb(tmp_path / "two" / "train" / "tower_train_lmdb", blobs)  # donkey_lsun.lua's DATA_ROOT/train/
    write_lmdb(tmp_path / "two" / "train" / "bridge_train_lmdb", {b"k": blobs[b"img0"]})
    two = tmp_path / "two"
    assert find_lsun(str(two), "all") == [str(two / "train" / c) for c in ("bridge_train_lmdb", "tower_train_lmdb")]
    with pytest.raises(UserError, match=r"no bedroom_train_lmdb in it; lsun_class= one or more of bridge,tower, or all"):
        find_lsun(str(two))
    ds = LMDBImages(find_lsun(str(two), "tower,bridge"), 24, 16)
    assert len(ds) == 5 and ds.labels.tolist() == [0, 0, 0, 0, 1]  # each database is a class
    torch.manual_seed(1)
    x = ds[4]
    torch.manual_seed(1)
    assert torch.equal(pickle.loads(pickle.dumps(ds))[4], x)  # as a spawned loader worker gets it (macOS)
    (tmp_path / "pics").mkdir()  # LSUN exported as images: the folder dataset, as before
    Image.new("RGB", (20, 20)).save(tmp_path / "pics" / "a.png")
    assert find_lsun(str(tmp_path / "pics")) is None
    loader, _, _, n = make_loader(TrainOptions(dataset="lsun", DATA_ROOT=str(tmp_path / "pics"), loadSize=16,
                                               fineSize=16, nThreads=0))
    assert n == 1


def test_a_data_root_that_is_not_an_lmdb_is_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "data.mdb").write_bytes(b"not an lmdb" * 100)
    (tmp_path / "bedroom_train_lmdb.zip").write_bytes(b"PK")
    for root, says in (("empty", "not an LSUN LMDB"), ("broken", "is not a readable LMDB"),
                       ("bedroom_train_lmdb.zip", "a file, not a folder; unzip")):
        with pytest.raises(SystemExit) as e:
            cli(train.main, TrainOptions, [], {"dataset": "lsun", "DATA_ROOT": str(tmp_path / root), "gpu": "0",
                                               "nThreads": "0", "checkpoints_dir": str(tmp_path / "ck")})
        err = capsys.readouterr().err
        assert e.value.code == 1 and err.count("\n") == 1 and says in err and str(tmp_path / root) in err, err
    assert not (tmp_path / "ck").exists()


def test_trains_on_lmdb_and_resumes_exactly(lsun, tmp_path):
    root, _ = lsun
    base = dict(dataset="lsun", DATA_ROOT=str(root), loadSize=36, fineSize=32, batchSize=4, ntrain=8, ngf=4,
                ndf=4, nz=8, nThreads=1, niter=2, gpu=0, seed=5, name="bed", print_every=0, display=0)
    # read in this process first (nThreads=0 keeps its environment open): the workers below must still open theirs
    next(iter(make_loader(TrainOptions(**dict(base, nThreads=0)))[0]))
    straight = train.main(TrainOptions(**base, checkpoints_dir=str(tmp_path / "a")))
    train.main(TrainOptions(**dict(base, niter=1), checkpoints_dir=str(tmp_path / "b")))
    resumed = train.main(TrainOptions(**base, checkpoints_dir=str(tmp_path / "b"),
                                      resume=str(tmp_path / "b" / "bed_1_net_G.pt")))
    assert os.path.basename(resumed) == "bed_2_net_G.pt"
    a, b = checkpoint.load(straight, "dcgan_G"), checkpoint.load(resumed, "dcgan_G")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
