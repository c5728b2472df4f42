"""data.py: the training samples (Y - mean in, Lab ab at half resolution out) and the paper's crops and flips."""
import numpy as np
from PIL import Image

from colorize import data, imageops
from colorize.tests.test_colorize import photo


def test_a_sample_is_luma_minus_the_mean_and_half_resolution_ab():
    rgb = photo(1, 32, 32)
    x, target = data.to_sample(rgb, 0.45)
    assert x.shape == (1, 32, 32) and target.shape == (2, 16, 16)
    r, g, b = (rgb[..., k] / 255 for k in range(3))
    np.testing.assert_allclose(x[0].numpy(), 0.299 * r + 0.587 * g + 0.114 * b - 0.45, atol=1e-6)
    ab = imageops.rgb2lab(rgb.transpose(2, 0, 1) / 255)[1:]             # torch/image Lab (data.py: skimage)
    ab = ab.reshape(2, 16, 2, 16, 2).mean((2, 4))                       # 2x2 block means: half resolution
    np.testing.assert_allclose(target.numpy(), ab / 200 + 0.5, atol=0.02 / 200)


def test_training_crops_are_random_windows_sometimes_mirrored_and_reproducible(tmp_path):
    Image.fromarray(photo(2, 40, 60)).save(tmp_path / "p.png")
    S, mean = 32, 0.45
    crops = data.PhotoCrops([tmp_path / "p.png"], None, S, mean, seed=7)
    big = data.resize_short(np.asarray(Image.open(tmp_path / "p.png")), round(S * 256 / 224))
    assert big.shape == (37, 56, 3)                                      # the paper: 256 -> 224 crops
    y = (big.astype(np.float32) / 255) @ data.Y_WEIGHTS - np.float32(mean)
    windows = {(t, left, flip): (y[t:t + S, left:left + S][:, ::-1] if flip else y[t:t + S, left:left + S])
               for t in range(37 - S + 1) for left in range(56 - S + 1) for flip in (0, 1)}
    seen = []
    for epoch in range(16):
        crops.epoch = epoch
        x, _, label = crops[0]
        again, _, _ = crops[0]
        assert label == -1 and np.array_equal(x, again)                   # (seed, epoch, index) decides the crop
        match = [k for k, w in windows.items() if np.allclose(w, x[0].numpy(), atol=1e-6)]
        assert match, epoch
        seen.append(match[0])
    assert len({(t, left) for t, left, _ in seen}) > 8 and {f for _, _, f in seen} == {0, 1}
    centre = data.PhotoCrops([tmp_path / "p.png"], None, S, mean, train=False)[0][0]
    np.testing.assert_allclose(centre[0].numpy(), windows[(2, 12, 0)], atol=1e-6)   # eval: centre, no flip
