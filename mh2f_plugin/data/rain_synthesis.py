"""Synthetic rain on clean photographs: streaks from sparse noise, motion-blurred along an angle.

A rain layer starts as sparse random seeds (``density``: the fraction of pixels that seed a
streak, each with a random intensity), which a line kernel (``length`` pixels long, ``width``
pixels wide, ``angle`` degrees from vertical) smears into streaks. The layer is screen-blended
onto the photo at ``brightness``; an optional ``haze`` veil blends toward a bright airlight.
Every parameter is drawn uniformly from a ``[low, high]`` range; images are float32
``(H, W, 3)`` in ``[0, 1]``.
"""
import cv2
import numpy as np

from mh2f_plugin.errors import InvalidOption

DEFAULT_RANGES = {
    'density': (0.002, 0.01),
    'length': (10, 30),
    'width': (1, 2),
    'angle': (-30, 30),
    'brightness': (0.5, 0.9),
    'haze': (0.0, 0.0),
}
AIRLIGHT = (0.8, 1.0)


def check_ranges(ranges, name='rain'):
    """Merges user ranges over the defaults; every value is ``[low, high]`` or one number."""
    unknown = set(ranges or {}) - set(DEFAULT_RANGES)
    if unknown:
        raise InvalidOption(f"{name}: unknown rain option(s) {', '.join(sorted(unknown))}; "
                            f"known: {', '.join(DEFAULT_RANGES)}")
    merged = dict(DEFAULT_RANGES)
    for key, value in (ranges or {}).items():
        low, high = (value, value) if np.isscalar(value) else value
        if low > high:
            raise InvalidOption(f'{name}: {key} range [{low}, {high}] has low > high')
        merged[key] = (low, high)
    return merged


def sample_parameters(rng, ranges):
    """One draw of every parameter; ``length`` and ``width`` are whole pixels."""
    params = {key: rng.uniform(low, high) for key, (low, high) in ranges.items()}
    params['length'] = max(1, int(round(params['length'])))
    params['width'] = max(1, int(round(params['width'])))
    return params


def streak_kernel(length, width, angle):
    """A line of ones, ``length`` long and ``width`` wide, ``angle`` degrees from vertical."""
    size = length + 2 * width + 1
    kernel = np.zeros((size, size), np.float32)
    centre = size // 2
    dx, dy = np.sin(np.deg2rad(angle)) * length / 2, np.cos(np.deg2rad(angle)) * length / 2
    start = (int(round(centre - dx)), int(round(centre - dy)))
    end = (int(round(centre + dx)), int(round(centre + dy)))
    cv2.line(kernel, start, end, 1.0, thickness=width, lineType=cv2.LINE_AA)
    return kernel


def rain_layer(height, width, rng, density, length, width_px, angle):
    """A ``(H, W)`` streak layer in ``[0, 1]``."""
    seeds = (rng.random((height, width)) < density) * rng.uniform(0.6, 1.0, (height, width))
    streaks = cv2.filter2D(
        seeds.astype(np.float32), -1, streak_kernel(length, width_px, angle), borderType=cv2.BORDER_REFLECT)
    return np.clip(cv2.GaussianBlur(streaks, (3, 3), 0.5), 0, 1)


def add_rain(clean, rng, ranges=None):
    """``clean`` ``(H, W, 3)`` float32 in [0, 1] -> the rainy image, same shape; ``rng`` a numpy Generator."""
    params = sample_parameters(rng, check_ranges(ranges))
    layer = rain_layer(
        clean.shape[0],
        clean.shape[1],
        rng,
        density=params['density'],
        length=params['length'],
        width_px=params['width'],
        angle=params['angle'])[..., None] * params['brightness']
    rainy = 1 - (1 - clean) * (1 - layer)
    if params['haze'] > 0:
        rainy = rainy * (1 - params['haze']) + params['haze'] * rng.uniform(*AIRLIGHT)
    return np.clip(rainy, 0, 1).astype(np.float32)
