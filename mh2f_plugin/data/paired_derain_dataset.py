"""``PairedDerainDataset``: rainy/clean pairs of any public deraining layout, from folders or LMDB."""
import lmdb
import os
from basicsr.data.transforms import augment, paired_random_crop
from basicsr.utils import FileClient, get_root_logger, img2tensor
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils import data
from torchvision.transforms.functional import normalize

from mh2f_plugin.data import lmdb_store
from mh2f_plugin.data.image_io import decode_image, read_image
from mh2f_plugin.data.layouts import find_pairs
from mh2f_plugin.errors import DatasetError, InvalidOption

RAINY_HALVES = ('left', 'right')
# Keys BasicSR's data loading reads from every dataset's options (build_dataloader, prefetching).
LOADER_KEYS = ('name', 'type', 'phase', 'scale', 'num_worker_per_gpu', 'batch_size_per_gpu', 'dataset_enlarge_ratio',
               'prefetch_mode', 'pin_memory', 'persistent_workers', 'use_shuffle')


@DATASET_REGISTRY.register()
class PairedDerainDataset(data.Dataset):
    """Rainy (``lq``) / clean (``gt``) pairs for BasicSR's models: ``{'lq', 'gt', 'lq_path', 'gt_path'}``,
    images ``(3, H, W)`` RGB float32 in ``[0, 1]``.

    Options (BasicSR's dataset keys where they exist):
        dataroot (str): the dataset folder as downloaded, or the output of ``basicsr lmdb``.
        io_backend (dict): ``{type: disk}`` or ``{type: lmdb}``.
        layout (str): ``auto`` (default) or a name from ``docs/datasets.md``.
        list_file, allow_missing: SPA-Data list files (``layout: spa_list``).
        lq_folder, gt_folder, pattern, replacement: ``layout: regex``.
        rainy_half (str): ``left`` or ``right``, for ``layout: side_by_side`` (Rain800).
        phase (str): ``train`` crops ``gt_size`` x ``gt_size`` at one random place in both
            images and applies ``use_hflip`` / ``use_rot`` as BasicSR's ``augment``; other
            phases return whole images.
        mean, std (list): optional normalisation, as in BasicSR.
    """

    OPTIONS = LOADER_KEYS + ('dataroot', 'io_backend', 'layout', 'list_file', 'allow_missing', 'lq_folder', 'gt_folder',
                             'pattern', 'replacement', 'rainy_half', 'gt_size', 'use_hflip', 'use_rot', 'mean', 'std')

    def __init__(self, opt):
        super().__init__()
        self.opt = opt
        self.root = opt['dataroot']
        self.io_backend_opt = dict(opt['io_backend'])
        self.file_client = None
        self.mean, self.std = opt.get('mean'), opt.get('std')
        if opt['phase'] == 'train' and not opt.get('gt_size'):
            raise InvalidOption(f"dataset {opt.get('name')}: the train phase needs gt_size (crop size in pixels)")

        if self.io_backend_opt['type'] == 'lmdb':
            self.pairs = lmdb_store.read_pairs(self.root)
            self.layout = 'lmdb'
            self.io_backend_opt['db_paths'] = [lmdb_store.database_path(self.root, n) for n in lmdb_store.DATABASES]
            self.io_backend_opt['client_keys'] = list(lmdb_store.DATABASES)
        elif self.io_backend_opt['type'] == 'disk':
            self.layout, self.pairs, missing = find_pairs(
                self.root,
                opt.get('layout', 'auto'),
                list_file=opt.get('list_file'),
                allow_missing=opt.get('allow_missing', False),
                lq_folder=opt.get('lq_folder'),
                gt_folder=opt.get('gt_folder'),
                pattern=opt.get('pattern'),
                replacement=opt.get('replacement', r'\1'))
            if missing:
                get_root_logger().warning(f'{self.root}: skipped {len(missing)} listed pair(s) with missing files, '
                                          f'e.g. {missing[0]}')
        else:
            raise InvalidOption(
                f"{self.root}: io_backend type must be disk or lmdb, got {self.io_backend_opt['type']!r}")
        self.side_by_side = self.layout == 'side_by_side'
        if self.side_by_side and opt.get('rainy_half') not in RAINY_HALVES:
            raise InvalidOption(f"{self.root}: layout side_by_side needs rainy_half: left or right "
                                f"(got {opt.get('rainy_half')!r}); copies of Rain800 disagree on it")

    def __len__(self):
        return len(self.pairs)

    def _read(self, key, client_key):
        if self.io_backend_opt['type'] == 'disk':
            return read_image(key)
        if self.file_client is None:
            backend = dict(self.io_backend_opt)
            self.file_client = FileClient(backend.pop('type'), **backend)
        name = f'{lmdb_store.database_path(self.root, client_key)}:{key}'
        try:
            data = self.file_client.get(key, client_key)
        except lmdb.Error as error:
            raise lmdb_store.LmdbError(f'{name}: cannot be read ({error}); check the database with '
                                       f'basicsr lmdb --verify {self.root}') from error
        if data is None:
            raise lmdb_store.LmdbError(f'{name}: key not found in the database')
        return decode_image(bytes(data), name)

    def _read_pair(self, pair):
        if self.side_by_side:
            img = self._read(pair.lq, 'lq')
            half = img.shape[1] // 2
            left, right = img[:, :half], img[:, img.shape[1] - half:]
            return (left, right) if self.opt['rainy_half'] == 'left' else (right, left)
        img_lq, img_gt = self._read(pair.lq, 'lq'), self._read(pair.gt, 'gt')
        if img_lq.shape != img_gt.shape:
            raise DatasetError(f'pair sizes differ: {pair.lq} is {img_lq.shape[1]}x{img_lq.shape[0]}, '
                               f'{pair.gt} is {img_gt.shape[1]}x{img_gt.shape[0]} (width x height)')
        return img_lq, img_gt

    def __getitem__(self, index):
        pair = self.pairs[index]
        img_lq, img_gt = self._read_pair(pair)
        if self.opt['phase'] == 'train':
            gt_size = self.opt['gt_size']
            height, width = img_lq.shape[:2]
            if min(height, width) < gt_size:
                raise DatasetError(f'{pair.lq}: image is {width}x{height}, smaller than gt_size {gt_size}')
            img_gt, img_lq = paired_random_crop(img_gt, img_lq, gt_size, 1, pair.gt)
            img_gt, img_lq = augment([img_gt, img_lq], self.opt.get('use_hflip', True), self.opt.get('use_rot', False))
        img_gt, img_lq = img2tensor([img_gt, img_lq], bgr2rgb=True, float32=True)
        if self.mean is not None or self.std is not None:
            normalize(img_lq, self.mean, self.std, inplace=True)
            normalize(img_gt, self.mean, self.std, inplace=True)
        return {'lq': img_lq, 'gt': img_gt, 'lq_path': pair.lq, 'gt_path': pair.gt}

    def __repr__(self):
        return f'PairedDerainDataset({os.path.basename(self.root)}, layout={self.layout}, pairs={len(self)})'
