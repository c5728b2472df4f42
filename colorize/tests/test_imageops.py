"""torch/image arithmetic: image.scale, the colour conversions and colorize.lua's recombination quirk."""
import numpy as np
import pytest
from skimage.color import lab2rgb as sk_lab2rgb
from skimage.color import rgb2lab as sk_rgb2lab

from colorize import imageops


def scale_rowcol_loop(src, dst_len):
    """A line-by-line transcription of image.c's Main_scaleLinear_rowcol for one 1-D line (float32 maths)."""
    src_len = len(src)
    dst = np.zeros(dst_len, np.float64)
    if dst_len > src_len:
        scale = np.float32(src_len - 1) / np.float32(dst_len - 1)
        for di in range(dst_len - 1):
            if src_len == 1:
                dst[di] = src[0]
                continue
            si_f = np.float32(di * scale)
            si_i = int(si_f)
            si_f -= si_i
            dst[di] = (1 - si_f) * src[si_i] + si_f * src[si_i + 1]
        dst[dst_len - 1] = src[src_len - 1]
    elif dst_len < src_len:
        scale = np.float32(src_len) / np.float32(dst_len)
        si0_i, si0_f = 0, 0.0
        for di in range(dst_len):
            si1_f = np.float32((di + 1) * scale)
            si1_i = int(si1_f)
            si1_f -= si1_i
            acc, n = (1 - si0_f) * src[si0_i], 1 - si0_f
            for si in range(si0_i + 1, si1_i):
                acc += src[si]
                n += 1
            if si1_i < src_len:
                acc += si1_f * src[si1_i]
                n += si1_f
            dst[di] = acc / n
            si0_i, si0_f = si1_i, si1_f
    else:
        dst[:] = src
    return dst


def scale_loop(img, width, height):
    rows = np.array([scale_rowcol_loop(r, width) for r in img])           # rows first, as image.c
    return np.array([scale_rowcol_loop(c, height) for c in rows.T]).T


@pytest.mark.parametrize("src,dst", [((7, 10), (16, 24)), ((37, 53), (8, 16)), ((30, 20), (30, 45)),
                                     ((1, 5), (4, 9)), ((33, 21), (224, 224))])
def test_scale_matches_the_c_loops(src, dst):
    img = np.random.default_rng(0).random(src).astype(np.float32)
    ours = imageops.scale(img, dst[1], dst[0])
    assert ours.shape == dst
    np.testing.assert_allclose(ours, scale_loop(img, dst[1], dst[0]), atol=2e-6)


def test_scale_properties():
    img = np.random.default_rng(1).random((2, 9, 13)).astype(np.float32)
    up = imageops.scale(img, 25, 17)
    # upsampling interpolates align-corners style: corners are kept exactly
    assert np.allclose(up[:, [0, 0, -1, -1], [0, -1, 0, -1]], img[:, [0, 0, -1, -1], [0, -1, 0, -1]])
    # downsampling by an integer factor is a plain box average
    big = np.random.default_rng(2).random((12, 12)).astype(np.float32)
    np.testing.assert_allclose(imageops.scale(big, 4, 3), big.reshape(3, 4, 4, 3).mean((1, 3)), atol=1e-6)


def test_lab_matches_scikit_image_within_white_point_rounding():
    rgb = np.random.default_rng(3).random((3, 50))
    ours = imageops.rgb2lab(rgb)
    ref = sk_rgb2lab(rgb.T[None])[0].T
    np.testing.assert_allclose(ours, ref, atol=0.02)  # torch/image uses D65 (0.950456, 1.088754)
    np.testing.assert_allclose(imageops.lab2rgb(ours), rgb, atol=1e-4)  # its two matrices are not exact inverses
    lab = np.stack([np.full(20, 60.0), np.linspace(-40, 40, 20), np.linspace(30, -30, 20)])
    np.testing.assert_allclose(imageops.lab2rgb(lab), sk_lab2rgb(lab.T[None])[0].T, atol=2e-3)


def test_the_yuv_quirk_inflates_lightness():
    # colorize.lua computes L from yuv2rgb(Y, Y, Y) = (2.140 Y, 0.025 Y, 3.032 Y), not from a gray pixel
    y = np.array([0.5, 0.9])
    assert np.allclose(imageops.quirk_lightness(y), [72.0, 123.0], atol=1.0)
    assert np.allclose(imageops.gray_lightness(y), [53.4, 91.0], atol=0.5)
    # by hand for y = 0.5: sRGB gamma, XYZ Y row, L = 116 Y^(1/3) - 16
    lin = [((c + 0.055) / 1.055) ** 2.4 if c > 0.04045 else c / 12.92 for c in (2.13983 * .5, 0.02475 * .5, 3.03211 * .5)]
    Y = 0.212671 * lin[0] + 0.715160 * lin[1] + 0.072169 * lin[2]
    assert imageops.quirk_lightness(np.array(0.5)) == pytest.approx(116 * Y ** (1 / 3) - 16, abs=1e-9)


def test_yuv_recombination_keeps_the_input_luma_and_lab_gives_gray_for_zero_chroma():
    rng = np.random.default_rng(4)
    y = rng.uniform(0.2, 0.8, (6, 7))
    ab = rng.uniform(-15, 15, (2, 6, 7))
    rgb = imageops.recombine(y, ab, "yuv")
    luma = np.tensordot(imageops.RGB2YUV[0], rgb, 1)
    unclipped = (rgb > 0).all(0) & (rgb < 1).all(0)
    assert unclipped.mean() > 0.8
    np.testing.assert_allclose(luma[unclipped], y[unclipped], atol=2e-6)  # (torch YUV matrices: 5 digits)
    gray = imageops.recombine(y, np.zeros_like(ab), "lab")
    np.testing.assert_allclose(gray, np.broadcast_to(y, gray.shape), atol=1e-4)
    with pytest.raises(ValueError):
        imageops.recombine(y, ab, "rgb")


@pytest.mark.parametrize("src,dst", [((7, 10), (16, 24)), ((37, 53), (8, 16)), ((30, 20), (30, 45)),
                                     ((1, 5), (4, 9)), ((300, 400), (120, 160))])
def test_the_tap_form_is_the_c_loop_along_either_axis(src, dst):
    """apply_band(taps): what compose upsamples the chroma with (2 x H x W arrays, rows then columns)."""
    img = np.random.default_rng(1).random((2, *src)).astype(np.float32)
    cols = imageops.apply_band(img, imageops.taps(src[1], dst[1]), -1)
    both = imageops.apply_band(cols, imageops.taps(src[0], dst[0]), -2)
    assert both.shape == (2, *dst) and both.dtype == np.float32
    for c in range(2):
        np.testing.assert_allclose(both[c], scale_loop(img[c], dst[1], dst[0]), atol=2e-6)
    k = imageops.taps(src[1], dst[1])[0].shape[1]
    assert k <= int(np.ceil(src[1] / dst[1])) + 1    # a few reads per pixel, not a dense row
