"""Colorization quality: PSNR, SSIM, the ab-error AuC of Zhang et al. (2016), Hasler-Suesstrunk colourfulness."""
import numpy as np
from skimage.color import rgb2lab
from skimage.metrics import peak_signal_noise_ratio, structural_similarity


def psnr(out, ref):
    """uint8 RGB images -> dB (scikit-image's PSNR over the 0-255 range). Identical images: 148.1 dB (MSE
    floored at 1e-10, as before scikit-image), so a mean over validation images stays finite."""
    if np.array_equal(out, ref):
        return float(10 * np.log10(255.0 ** 2 / 1e-10))
    return float(peak_signal_noise_ratio(ref, out, data_range=255))


def ssim(out, ref):
    return structural_similarity(out, ref, channel_axis=2, data_range=255)


def ab_error_curve(out, ref, thresholds=np.arange(151)):
    """Share of pixels whose ab (Lab) error is within each threshold 0..150; its mean is the AuC (Zhang et al.)."""
    d = np.linalg.norm(rgb2lab(out)[..., 1:] - rgb2lab(ref)[..., 1:], axis=-1).ravel()
    d.sort()
    return np.searchsorted(d, thresholds, side="right") / d.size


def auc(out, ref):
    return float(ab_error_curve(out, ref).mean())


def colourfulness(rgb):
    """Hasler and Suesstrunk (2003): sigma_rgyb + 0.3 mu_rgyb on 0..255 RGB."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def flicker(frames, cuts=()):
    """Mean |delta ab| (Lab a and b, per pixel, averaged over both) between consecutive RGB frames, leaving out
    the pairs across a scene cut (`cuts`: indices of frames that start a new shot)."""
    cuts, prev, total, n = set(cuts), None, 0.0, 0
    for k, rgb in enumerate(frames):
        ab = rgb2lab(rgb)[..., 1:]
        if prev is not None and k not in cuts:
            total += float(np.abs(ab - prev).mean())
            n += 1
        prev = ab
    return total / max(n, 1)
