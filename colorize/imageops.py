"""Torch7 `image` package arithmetic the original pipeline depends on, in numpy.

`scale` is image.scale's default 'bilinear' mode (generic/image.c Main_scaleLinear_rowcol): upsampling
interpolates align-corners style, (src-1)/(dst-1); downsampling averages fractional boxes. PyTorch's
interpolate matches neither, and the network saw the original's resampling, so we reproduce it. Written
as two small matrices (rows, then columns), so it is vectorised; the chroma upsampling onto a big photo
applies them as the few taps each output pixel reads (`taps`, `apply_band`): as a dense product it would
cost 14 GFLOP for a 12-megapixel photo, as taps 12M x 2 multiply-adds per channel.
The colour conversions are the package's formulas (sRGB/D65, unclamped Lab, its YUV), in float32.
"""
import numpy as np

# image.rgb2yuv / image.yuv2rgb coefficients
RGB2YUV = np.array([[0.299, 0.587, 0.114], [-0.14713, -0.28886, 0.436], [0.615, -0.51499, -0.10001]])
YUV2RGB = np.array([[1.0, 0.0, 1.13983], [1.0, -0.39465, -0.58060], [1.0, 2.03211, 0.0]])
RGB2XYZ = np.array([[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]])
XYZ2RGB = np.array([[3.2404542, -1.5371385, -0.4985314], [-0.9692660, 1.8760108, 0.0415560],
                    [0.0556434, -0.2040259, 1.0572252]])
WHITE = np.array([0.950456, 1.0, 1.088754])
EPS, KAPPA = 216.0 / 24389.0, 24389.0 / 27.0


def resample_matrix(src_len: int, dst_len: int) -> np.ndarray:
    """dst_len x src_len matrix M with dst = M @ src, as image.scale's linear row/column pass."""
    M = np.zeros((dst_len, src_len), np.float64)
    if dst_len == src_len:
        np.fill_diagonal(M, 1.0)
    elif dst_len > src_len:
        if src_len == 1:
            M[:, 0] = 1.0
        else:
            scale = np.float32(src_len - 1) / np.float32(dst_len - 1)
            pos = np.arange(dst_len - 1, dtype=np.float32) * np.float32(scale)
            i = np.minimum(pos.astype(np.int64), src_len - 2)
            f = (pos - i).astype(np.float64)
            rows = np.arange(dst_len - 1)
            M[rows, i] = 1 - f
            M[rows, i + 1] += f
            M[dst_len - 1, src_len - 1] = 1.0
    else:
        scale = np.float32(src_len) / np.float32(dst_len)
        s0_i, s0_f = 0, 0.0
        for d in range(dst_len):
            s1 = np.float32(d + 1) * scale
            s1_i = int(s1)
            s1_f = float(s1 - np.float32(s1_i))
            M[d, s0_i] += 1 - s0_f
            M[d, s0_i + 1:s1_i] += 1.0
            if s1_i < src_len:
                M[d, s1_i] += s1_f
            M[d] /= M[d].sum()
            s0_i, s0_f = s1_i, s1_f
    return M


def band(M: np.ndarray):
    """A resampling matrix as its taps: (index dst x K, weight dst x K float32), K = the most any row reads."""
    nz = M != 0
    lo = nz.argmax(1)
    k = int((M.shape[1] - nz[:, ::-1].argmax(1) - lo).max())
    idx = lo[:, None] + np.arange(k)
    inside = idx < M.shape[1]
    idx = np.where(inside, idx, M.shape[1] - 1)
    return idx, np.where(inside, np.take_along_axis(M, idx, 1), 0).astype(np.float32)


def taps(src_len: int, dst_len: int):
    """image.scale's reads along one axis as its C loop makes them, in float32: (index dst x K, weight dst x K,
    divisor dst or None). Upsampling: two weights (exact in resample_matrix). Downsampling: the box's raw
    weights (1 - first fraction, 1, ..., last fraction) and their float32 running sum, divided at the end as
    the C code does, so the output is its to the bit (a pre-normalized matrix differs in the last bit)."""
    if dst_len >= src_len:
        return (*band(resample_matrix(src_len, dst_len)), None)
    f32, scale = np.float32, np.float32(src_len) / np.float32(dst_len)
    rows, n = [], np.empty(dst_len, np.float32)
    s0_i, s0_f = 0, f32(0)
    for d in range(dst_len):
        s1 = f32(d + 1) * scale
        s1_i = int(s1)
        s1_f = s1 - f32(s1_i)
        w = [f32(1) - s0_f] + [f32(1)] * (s1_i - s0_i - 1) + ([s1_f] if s1_i < src_len else [])
        acc = w[0]
        for x in w[1:]:
            acc = f32(acc + x)
        rows.append((s0_i, w))
        n[d] = acc
        s0_i, s0_f = s1_i, s1_f
    k = max(len(w) for _, w in rows)
    idx = np.array([[min(lo + j, src_len - 1) for j in range(k)] for lo, _ in rows])
    wts = np.array([w + [0] * (k - len(w)) for _, w in rows], np.float32)
    return idx, wts, n


def apply_band(img: np.ndarray, taps, axis: int) -> np.ndarray:
    """dst = M @ src along `axis` (-1: columns, -2: rows) of a float32 array, from taps(): the reads of each
    output pixel in the C code's order, one multiply-add per tap over the whole array."""
    idx, w, n = taps if len(taps) == 3 else (*taps, None)
    shape = (-1,) if axis == -1 else (-1, 1)
    out = img.take(idx[:, 0], axis) * w[:, 0].reshape(shape)
    for j in range(1, idx.shape[1]):
        out += img.take(idx[:, j], axis) * w[:, j].reshape(shape)
    if n is not None:
        out /= n.reshape(shape)
    return out


def scale(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """image.scale(img, width, height) for H x W or C x H x W float arrays (float32 out).

    Dense matrix products, on purpose: this makes the network's inputs, and with them the converted .t7 models
    reproduce colorize.lua's output pngs to the byte (tests/test_lua_fixture.py); the tap form (apply_band),
    although bit-equal to a float32 transcription of the C loop, flips one 8-bit level in one pixel there."""
    h, w = img.shape[-2:]
    mw = resample_matrix(w, width).astype(np.float32).T
    mh = resample_matrix(h, height).astype(np.float32)
    out = np.asarray(img, np.float32) @ mw            # rows first, as the C code
    return np.matmul(mh, out)


def _gamma_expand(c):
    return np.where(c <= 0.04045, c / c.dtype.type(12.92),
                    np.power((np.maximum(c, 0.04045) + c.dtype.type(0.055)) / c.dtype.type(1.055), c.dtype.type(2.4)))


def _gamma_compress(c):
    t = c.dtype.type
    return np.where(c <= 0.0031308, t(12.92) * c,
                    t(1.055) * np.power(np.maximum(c, t(0.0031308)), t(1 / 2.4)) - t(0.055))


def _f(t):
    return np.where(t > EPS, np.cbrt(t), (KAPPA * t + 16) / 116)


def _m(matrix, like):
    return matrix.astype(like.dtype) if like.dtype == np.float32 else matrix


def rgb2lab(rgb):
    """3 x ... sRGB (unclamped) -> Lab, image.rgb2lab (in the input's float type)."""
    rgb = np.asarray(rgb)
    xyz = np.tensordot(_m(RGB2XYZ, rgb), _gamma_expand(rgb), 1) / _m(WHITE, rgb).reshape((3,) + (1,) * (rgb.ndim - 1))
    fx, fy, fz = _f(xyz[0]), _f(xyz[1]), _f(xyz[2])
    return np.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)])


def lab2rgb(lab):
    """3 x ... Lab -> sRGB, image.lab2rgb (not clamped)."""
    L, a, b = lab[0], lab[1], lab[2]
    fy = (L + 16) / 116
    fx, fz = a / 500 + fy, fy - b / 200
    X = np.where(fx ** 3 > EPS, fx ** 3, (116 * fx - 16) / KAPPA)
    Y = np.where(L > KAPPA * EPS, fy ** 3, L / KAPPA)
    Z = np.where(fz ** 3 > EPS, fz ** 3, (116 * fz - 16) / KAPPA)
    xyz = np.stack([X * _m(WHITE, L)[0], Y, Z * _m(WHITE, L)[2]])
    return _gamma_compress(np.tensordot(_m(XYZ2RGB, xyz), xyz, 1))


def gray_lightness(y):
    """Lab L of the gray (y, y, y): the corrected luminance for recombination."""
    return 116 * _f(_gamma_expand(y)) - 16


def quirk_lightness(y):
    """Lab L of yuv2rgb(y, y, y), which is what colorize.lua feeds lab2rgb (it treats gray as YUV)."""
    y = np.asarray(y)
    rgb = _m(YUV2RGB, y).sum(1).reshape((3,) + (1,) * np.ndim(y)) * y
    return rgb2lab(rgb)[0]


def recombine(y, ab, mode):
    """Luminance y (H x W in [0, 1]) + ab (2 x H x W, Lab units) -> RGB (3 x H x W float, clamped to [0, 1]).

    'yuv': colorize.lua's pred2rgb: Lab(quirk L, ab) -> RGB -> YUV, keep U, V and put back the input Y.
    'lab': Lab(L of the gray, ab) -> RGB, the textbook recombination.
    """
    y = np.asarray(y, np.float32)   # float32 throughout, as torch/image on colorize.lua's FloatTensors
    ab = np.asarray(ab, np.float32)
    if mode == "yuv":
        rgb = lab2rgb(np.concatenate([quirk_lightness(y)[None], ab], 0))
        uv = np.tensordot(_m(RGB2YUV, y)[1:], rgb, 1)
        rgb = np.tensordot(_m(YUV2RGB, y), np.concatenate([y[None], uv], 0), 1)
    elif mode == "lab":
        rgb = lab2rgb(np.concatenate([gray_lightness(y)[None], ab], 0))
    else:
        raise ValueError(f"unknown recombination {mode!r}")
    return np.clip(rgb, 0, 1)
