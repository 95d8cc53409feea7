"""``RainSynthesisDataset``: rainy/clean pairs made on the fly from any folder of clean photos."""
import numpy as np
import os
from basicsr.data.transforms import augment
from basicsr.utils import img2tensor
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils import data

from mh2f_plugin.data.image_io import read_image
from mh2f_plugin.data.layouts import LayoutError, image_files
from mh2f_plugin.data.paired_derain_dataset import LOADER_KEYS
from mh2f_plugin.data.rain_synthesis import add_rain, check_ranges
from mh2f_plugin.errors import DatasetError, InvalidOption


@DATASET_REGISTRY.register()
class RainSynthesisDataset(data.Dataset):
    """Adds synthetic rain to clean photos: ``{'lq', 'gt', 'lq_path', 'gt_path'}``, ``(3, H, W)`` RGB in [0, 1].

    Options:
        dataroot_gt (str): folder of clean photos (any size; gray, alpha and 16-bit are fine).
        rain (dict): ``[low, high]`` ranges for density, length, width, angle, brightness and
            haze (see ``mh2f_plugin.data.rain_synthesis``); omitted keys keep their defaults.
        phase (str): ``train`` crops ``gt_size`` at a random place, applies ``use_hflip`` /
            ``use_rot``, and draws new rain every time (from NumPy's global state, which
            BasicSR seeds per worker); other phases use whole images and the same rain for
            the same image every time (seeded by ``seed`` and the index).
        seed (int): the validation seed. Default: 0.
    """

    OPTIONS = LOADER_KEYS + ('dataroot_gt', 'io_backend', 'rain', 'gt_size', 'use_hflip', 'use_rot', 'seed')

    def __init__(self, opt):
        super().__init__()
        self.opt = opt
        self.root = opt['dataroot_gt']
        self.ranges = check_ranges(opt.get('rain'), f"dataset {opt.get('name')}")
        try:
            self.paths = [os.path.join(self.root, name) for name in image_files(self.root)]
        except OSError as error:
            raise LayoutError(f'{self.root}: cannot list clean photos: {error.strerror}') from error
        if not self.paths:
            raise LayoutError(f'{self.root}: no clean photos found')
        if opt['phase'] == 'train' and not opt.get('gt_size'):
            raise InvalidOption(f"dataset {opt.get('name')}: the train phase needs gt_size (crop size in pixels)")

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        path = self.paths[index]
        clean = read_image(path)
        if self.opt['phase'] == 'train':
            rng = np.random.default_rng(np.random.randint(2**31))
            size = self.opt['gt_size']
            height, width = clean.shape[:2]
            if min(height, width) < size:
                raise DatasetError(f'{path}: image is {width}x{height}, smaller than gt_size {size}')
            top, left = rng.integers(0, height - size + 1), rng.integers(0, width - size + 1)
            clean = augment(clean[top:top + size, left:left + size], self.opt.get('use_hflip', True),
                            self.opt.get('use_rot', False))
        else:
            rng = np.random.default_rng([self.opt.get('seed', 0), index])
        rainy = add_rain(np.ascontiguousarray(clean), rng, self.ranges)
        gt, lq = img2tensor([clean, rainy], bgr2rgb=True, float32=True)
        return {'lq': lq, 'gt': gt, 'lq_path': path, 'gt_path': path}
