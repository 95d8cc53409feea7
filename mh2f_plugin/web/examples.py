"""Example photos for the page: scikit-image's own photographs under synthetic rain, made once."""
import cv2
import numpy as np
import os
from skimage import data

from mh2f_plugin.data.image_io import write_image
from mh2f_plugin.data.rain_synthesis import add_rain

PHOTOS = ('astronaut', 'coffee', 'chelsea')
SEED = 2026


def example_photos(folder):
    """The paths of the rainy examples (PNG, 8 bits) in ``folder``, written where missing."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for index, name in enumerate(PHOTOS):
        path = os.path.join(folder, f'rainy_{name}.png')
        if not os.path.isfile(path):
            clean = getattr(data, name)()[..., :3].astype(np.float32) / 255
            rainy = add_rain(clean, np.random.default_rng(SEED + index))
            write_image(path, cv2.cvtColor(np.round(rainy * 255).astype(np.uint8), cv2.COLOR_RGB2BGR))
        paths.append(path)
    return paths
