"""Re-creates ``datasets/demo``: rainy/clean pairs synthesised from scikit-image's photographs.

    python datasets/make_demo.py [OUT]      # default OUT: datasets/demo next to this file

Layout ``input/`` + ``target/`` (Rain13K-style). Training pairs come from five photographs, the
held-out validation pairs from two others; the rain is drawn with fixed seeds, so the output is
the same on every run.
"""
import cv2
import numpy as np
import os
import sys
from skimage import data as skdata

from mh2f_plugin.data.rain_synthesis import add_rain

CROP = 96
TRAIN_PHOTOS = ('astronaut', 'chelsea', 'rocket', 'hubble_deep_field', 'immunohistochemistry')
VAL_PHOTOS = ('coffee', 'camera')
RAIN = {'density': (0.004, 0.01), 'length': (12, 24), 'brightness': (0.6, 0.85)}


def crops(name, count):
    """``count`` CROP x CROP crops (BGR uint8) spread over the photo resized to 2*CROP on its short side."""
    img = getattr(skdata, name)()
    img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) if img.ndim == 2 else cv2.cvtColor(img[..., :3], cv2.COLOR_RGB2BGR)
    scale = 2 * CROP / min(img.shape[:2])
    img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    height, width = img.shape[:2]
    lefts = np.linspace(0, width - CROP, count).astype(int)
    tops = np.linspace(0, height - CROP, count).astype(int)
    return [img[top:top + CROP, left:left + CROP] for top, left in zip(tops, lefts)]


def write_split(out, split, photos, per_photo, seed):
    for sub in ('input', 'target'):
        os.makedirs(os.path.join(out, split, sub), exist_ok=True)
    index = 0
    for name in photos:
        for clean in crops(name, per_photo):
            rng = np.random.default_rng([seed, index])
            rainy = add_rain(clean.astype(np.float32) / 255, rng, RAIN)
            stem = f'{name}_{index:02d}.png'
            cv2.imwrite(os.path.join(out, split, 'target', stem), clean)
            cv2.imwrite(os.path.join(out, split, 'input', stem), np.round(rainy * 255).astype(np.uint8))
            index += 1


def main(out):
    write_split(out, 'train', TRAIN_PHOTOS, 2, seed=1)
    write_split(out, 'val', VAL_PHOTOS, 2, seed=2)
    print(f'wrote {out}/train and {out}/val')


if __name__ == '__main__':
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), 'demo'))
