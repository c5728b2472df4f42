"""The data loader: folders (recursive, corrupt files skipped), IDX files, crops/flips, class-balanced draws."""
import math

import numpy as np
import pytest
import torch
from PIL import Image

from common.cli import UserError
from dcgan.data import (
    ClassBalancedSampler,
    FolderImages,
    TensorImages,
    find_images,
    make_loader,
    random_crop_flip,
    read_idx_images,
)
from dcgan.options import TrainOptions


def _img(path, size=(20, 10), color=(255, 0, 0)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)


def test_folder_is_searched_recursively_and_bad_files_are_skipped(tmp_path, capsys):
    _img(tmp_path / "a" / "x.jpg")
    _img(tmp_path / "a" / "deep" / "y.png")
    _img(tmp_path / "b" / "z.webp")
    (tmp_path / "b" / "broken.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "b" / "notes.txt").write_text("hi")
    paths, labels, classes = find_images(str(tmp_path))
    assert [p.split("/")[-1] for p in paths] == ["x.jpg", "y.png", "z.webp"]
    assert labels == [0, 0, 1] and classes == ["a", "b"]
    assert "skipped 1 file" in capsys.readouterr().err


def test_empty_or_non_image_folders_are_one_clear_error(tmp_path):
    with pytest.raises(UserError, match="no readable images"):
        find_images(str(tmp_path))
    (tmp_path / "a.txt").write_text("x")
    (tmp_path / "b.jpg").write_text("not an image")
    with pytest.raises(UserError, match="no readable images"):
        find_images(str(tmp_path))
    with pytest.raises(UserError, match="no such folder"):
        find_images(str(tmp_path / "missing"))
    with pytest.raises(UserError, match="set DATA_ROOT"):
        find_images("")


def test_image_is_scaled_cropped_and_flipped_like_donkey_folder(tmp_path):
    a = np.zeros((40, 80, 3), np.uint8)
    a[:, :40] = 255  # left half white
    Image.fromarray(a).save(tmp_path / "half.png")
    ds = FolderImages([str(tmp_path / "half.png")], loadSize=16, fineSize=16)
    torch.manual_seed(0)
    xs = [ds[0] for _ in range(40)]
    assert all(x.shape == (3, 16, 16) and x.min() >= -1 and x.max() <= 1 for x in xs)
    # shorter side 16 -> 16 x 32; a 16-wide crop can show only white, only black or both, either way round
    left_bright = [x[0, :, 0].mean() > x[0, :, -1].mean() for x in xs]
    assert 0 < sum(left_bright) < 40  # flips happen


def test_celeba_crop_takes_the_face_box(tmp_path):
    a = np.zeros((218, 178, 3), np.uint8)
    a[40:178, 30:168] = 255  # exactly crop_celebA.lua's box
    Image.fromarray(a).save(tmp_path / "face.png")
    ds = FolderImages([str(tmp_path / "face.png")], loadSize=32, fineSize=32, flip=False, celeba=True)
    assert ds[0].min() > 0.9  # nothing but the box


def test_idx_reader_and_errors(tmp_path, blobs):
    x = read_idx_images(str(blobs))
    assert x.shape == (960, 1, 12, 12) and x.dtype == torch.uint8
    with pytest.raises(UserError, match="no MNIST"):
        read_idx_images(str(tmp_path))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "t10k-images-idx3-ubyte").write_bytes(b"\0\0\x08\x01" + b"\0" * 12)
    with pytest.raises(UserError, match="not an IDX image file"):
        read_idx_images(str(bad))


def test_sampler_draws_classes_uniformly_with_replacement():
    labels = [0] * 90 + [1] * 10
    sampler = ClassBalancedSampler(labels, 4000, seed=0)
    draws = list(sampler)
    share_of_small_class = np.mean([i >= 90 for i, _ in draws])
    assert abs(share_of_small_class - 0.5) < 0.03
    assert len({i for i, _ in draws}) == 100  # every image is drawn, with replacement
    # an epoch's draws depend on its seed only; skipping k leaves out exactly the first k
    sampler.set_epoch(5, skip=0)
    epoch5 = list(sampler)
    sampler.set_epoch(5, skip=1000)
    assert len(sampler) == 3000 and list(sampler) == epoch5[1000:] and epoch5 != draws


def test_loader_epoch_is_ceil_of_min_n_ntrain(blobs):
    opt = TrainOptions(dataset="mnist", DATA_ROOT=str(blobs), loadSize=12, fineSize=8, batchSize=10, nThreads=0, ntrain=45)
    loader, batches, nc, n = make_loader(opt)
    assert (batches, nc, n) == (math.ceil(45 / 10), 1, 960)
    got = list(loader)
    assert len(got) == 5 and got[0].shape == (10, 1, 8, 8)
    opt.loadSize = 4
    with pytest.raises(UserError, match="loadSize=4 is smaller than fineSize=8"):
        make_loader(opt)


def test_tensor_images_rescale_shorter_side():
    x = torch.full((3, 1, 28, 28), 255, dtype=torch.uint8)
    ds = TensorImages(x, loadSize=32, fineSize=32)
    assert ds.x.shape == (3, 1, 32, 32) and torch.allclose(ds[0], torch.ones(1, 32, 32))
    torch.manual_seed(0)
    assert random_crop_flip(torch.rand(3, 10, 12), 8, True).shape == (3, 8, 8)
