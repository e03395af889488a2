"""Bit-exact image maths for the sample world: the same bits on every CPU.

OpenCV's float kernels (GaussianBlur, resize, blur) and numpy's transcendental ufuncs (exp,
power, log10 and so geomspace) choose SIMD code by instruction set at run time (AVX-512, AVX2,
SSE; IPP inside OpenCV too), and the paths differ in the last bits. A pixel near a rounding edge
then lands on another uint8 value, and the written PNG / JPEG, the ingest hash and every stage
after it differ between machines. So the few filters the world needs are done here with numpy's
IEEE-exact elementwise operations only (+, -, *, /, floor, rint, ldexp), each a separate rounding
in a fixed order, whatever the vector width; scalars (kernel weights, a few powers) come from
Python's `math`, i.e. glibc's libm, which takes the same FMA code path on every x86-64-v3 CPU and
up (AVX2 or AVX-512 alike). tests/test_sample_world_exact.py writes a world with numpy's and
OpenCV's SIMD paths switched off and pins its hash.

The filters follow OpenCV's definitions (kernel sizes, coordinate mapping, borders), so the world
looks as it did; they are not bit-compatible with OpenCV's own output, only with themselves.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

# exp: x = k ln2 + r, |r| <= ln2 / 2, e^r by its Taylor series to r^13 (error < 1e-17 relative)
_LN2_HI = 6.93147180369123816490e-01  # fdlibm's split of ln 2: k * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e+00
_INV_FACTORIALS = tuple(1.0 / math.factorial(n) for n in range(14))


def exp(x: np.ndarray) -> np.ndarray:
    """e**x elementwise in float64 (a few ulp), the same bits on every CPU; underflows to 0."""
    x = np.clip(np.asarray(x, np.float64), -746.0, 709.0)
    k = np.rint(x * _INV_LN2)
    r = (x - k * _LN2_HI) - k * _LN2_LO
    p = np.full_like(r, _INV_FACTORIALS[13])
    for c in _INV_FACTORIALS[12::-1]:
        p = p * r + c  # two ufuncs: two roundings, never a fused multiply-add
    return np.ldexp(p, k.astype(np.int32))


def powers(values: np.ndarray, exponent: float) -> np.ndarray:
    """values ** exponent elementwise with libm's pow (for short arrays: a loop in Python)."""
    values = np.asarray(values)
    flat = [math.pow(v, exponent) for v in values.ravel().tolist()]
    return np.array(flat, np.float64).reshape(values.shape).astype(values.dtype, copy=False)


@lru_cache(maxsize=64)
def _geomspace(start: float, stop: float, num: int) -> np.ndarray:
    ratio = stop / start
    out = np.array([start * math.pow(ratio, i / (num - 1)) for i in range(num)], np.float64)
    out[0], out[-1] = start, stop  # exact endpoints, as numpy.geomspace gives them
    out.flags.writeable = False
    return out


def geomspace(start: float, stop: float, num: int) -> np.ndarray:
    """numpy.geomspace(start, stop, num) for 0 < start, stop and num >= 2, the same on every CPU
    (read-only: repeated calls share one array)."""
    if num == 2:
        return np.array([start, stop], np.float64)
    return _geomspace(float(start), float(stop), int(num))


@lru_cache(maxsize=8)
def unit_circle(n: int) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin of n angles evenly spaced from 0 (libm's, not numpy's SIMD ones)."""
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False).tolist()
    cos, sin = np.array([math.cos(a) for a in angles]), np.array([math.sin(a) for a in angles])
    cos.flags.writeable = sin.flags.writeable = False
    return cos, sin


@lru_cache(maxsize=32)
def gaussian_kernel(sigma: float) -> np.ndarray:
    """OpenCV's Gaussian for float images and ksize (0, 0): round(8 sigma + 1) | 1 taps."""
    size = int(round(sigma * 8 + 1)) | 1
    centre = size // 2
    weights = [math.exp(-((i - centre) ** 2) / (2 * sigma * sigma)) for i in range(size)]
    total = math.fsum(weights)
    kernel = np.array([w / total for w in weights], np.float32)
    kernel.flags.writeable = False
    return kernel


def _along(a: np.ndarray, axis: int, start: int, length: int) -> np.ndarray:
    index = [slice(None)] * a.ndim
    index[axis] = slice(start, start + length)
    return a[tuple(index)]


def _correlate(a: np.ndarray, kernel: np.ndarray, axis: int) -> np.ndarray:
    """A symmetric odd kernel along one axis, OpenCV's default border (reflect, edge not
    repeated), summed centre first, then pairs outwards."""
    r, n = len(kernel) // 2, a.shape[axis]
    if r == 0:
        return a * kernel[0]
    pad = [(0, 0)] * a.ndim
    pad[axis] = (r, r)
    padded = np.pad(a, pad, mode="reflect")
    out = np.multiply(_along(padded, axis, r, n), kernel[r])
    pair = np.empty_like(out)
    for k in range(1, r + 1):
        np.add(_along(padded, axis, r - k, n), _along(padded, axis, r + k, n), out=pair)
        pair *= kernel[r + k]
        out += pair
    return out


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """cv2.GaussianBlur(img, (0, 0), sigma) for a float32 H x W (x C) image, exact."""
    kernel = gaussian_kernel(float(sigma))
    img = np.asarray(img, np.float32)
    return _correlate(_correlate(img, kernel, 1), kernel, 0)


def gaussian_blur_sparse(img: np.ndarray, sigma: float) -> np.ndarray:
    """gaussian_blur of a 2-D image that is zero outside a small box, bit for bit, computed on
    that box and a margin only: far from the box every tap is an exact zero, and a margin of
    more than the kernel's radius makes the crop's reflected border reflect zeros too."""
    img = np.asarray(img, np.float32)
    rows, cols = np.flatnonzero(img.any(axis=1)), np.flatnonzero(img.any(axis=0))
    out = np.zeros(img.shape, np.float32)
    if len(rows) == 0:
        return out
    margin = len(gaussian_kernel(float(sigma))) // 2 + 1
    r0, r1 = max(rows[0] - margin, 0), min(rows[-1] + margin + 1, img.shape[0])
    c0, c1 = max(cols[0] - margin, 0), min(cols[-1] + margin + 1, img.shape[1])
    out[r0:r1, c0:c1] = gaussian_blur(img[r0:r1, c0:c1], sigma)
    return out


def box_blur_rows3(img: np.ndarray) -> np.ndarray:
    """cv2.blur(img, (1, 3)): the mean of each pixel and the ones above and below it."""
    padded = np.pad(img, [(1, 1)] + [(0, 0)] * (img.ndim - 1), mode="reflect")
    return (padded[:-2] + padded[1:-1] + padded[2:]) * np.float32(1 / 3)


def downsample2(img: np.ndarray) -> np.ndarray:
    """cv2.resize(img, (w // 2, h // 2), interpolation=INTER_AREA) for even h, w: 2x2 means."""
    return ((img[0::2, 0::2] + img[0::2, 1::2]) + (img[1::2, 0::2] + img[1::2, 1::2])
            ) * np.float32(0.25)


def _cubic_taps(n_src: int, n_dst: int) -> tuple[np.ndarray, np.ndarray]:
    """Source indices (4 x n_dst, clamped at the edges) and weights (4 x n_dst, float32) of
    OpenCV's bicubic resize (A = -0.75, pixel centres aligned)."""
    a = -0.75
    pos = (np.arange(n_dst, dtype=np.float64) + 0.5) * (n_src / n_dst) - 0.5
    base = np.floor(pos)
    x = pos - base
    w0 = ((a * (x + 1) - 5 * a) * (x + 1) + 8 * a) * (x + 1) - 4 * a
    w1 = ((a + 2) * x - (a + 3)) * x * x + 1
    w2 = ((a + 2) * (1 - x) - (a + 3)) * (1 - x) * (1 - x) + 1
    w3 = 1 - w0 - w1 - w2
    index = np.clip(base.astype(np.int64)[None, :] + np.arange(-1, 3)[:, None], 0, n_src - 1)
    return index, np.stack([w0, w1, w2, w3]).astype(np.float32)


def resize_cubic(src: np.ndarray, width: int, height: int) -> np.ndarray:
    """cv2.resize(src, (width, height), interpolation=INTER_CUBIC) for a float32 H x W image:
    rows first, then columns, four taps each in a fixed order."""
    src = np.asarray(src, np.float32)
    cols, wx = _cubic_taps(src.shape[1], width)
    rows, wy = _cubic_taps(src.shape[0], height)
    across = src[:, cols[0]] * wx[0]
    for k in range(1, 4):
        across += src[:, cols[k]] * wx[k]
    out = across[rows[0]] * wy[0][:, None]
    for k in range(1, 4):
        out += across[rows[k]] * wy[k][:, None]
    return out
