"""metrics.py: PSNR through scikit-image gives the figures of the hand-written formula it replaced."""
import math

import numpy as np

from colorize import metrics


def test_psnr_is_ten_log10_of_peak_squared_over_mse():
    ref = np.zeros((4, 5, 3), np.uint8)
    out = ref.copy()
    out[0, 0, 0] = 60  # one error of 60 in 60 values: MSE 60
    assert math.isclose(metrics.psnr(out, ref), 10 * math.log10(255 ** 2 / 60), rel_tol=1e-12)
    # the formula written before scikit-image took over, on random images (uint8 differences, no wrap-around)
    rng = np.random.default_rng(0)
    a, b = (rng.integers(0, 256, (16, 24, 3), dtype=np.uint8) for _ in range(2))
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    assert math.isclose(metrics.psnr(a, b), 10 * np.log10(255.0 ** 2 / mse), rel_tol=1e-12)
    assert math.isclose(metrics.psnr(a, a), 10 * math.log10(255 ** 2 / 1e-10))  # finite, as before


def test_ssim_is_one_for_the_same_image_and_falls_with_noise():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    noisy = np.clip(img + rng.normal(0, 40, img.shape), 0, 255).astype(np.uint8)
    assert metrics.ssim(img, img) == 1.0 and metrics.ssim(noisy, img) < 0.9
