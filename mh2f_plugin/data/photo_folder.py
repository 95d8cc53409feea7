"""Rainy photos without ground truth, read as a dataset, and the test set of a folder: its pairs,
else its photos."""
import os
import statistics
from basicsr.utils import img2tensor

from mh2f_plugin.data.image_io import image_header, read_image
from mh2f_plugin.data.layouts import LayoutError, Pair, image_files
from mh2f_plugin.data.paired_derain_dataset import PairedDerainDataset


class PhotoFolder:
    """The photos directly in a folder, without ground truth, as ``{'lq', 'lq_path'}`` items like
    ``PairedDerainDataset``'s: any format, size, bit depth and channels that derain reads."""

    def __init__(self, root):
        self.pairs = [Pair(os.path.join(root, name), None) for name in image_files(root)]

    def __len__(self):
        return len(self.pairs)

    def __getitem__(self, index):
        path = self.pairs[index].lq
        return {'lq': img2tensor(read_image(path), bgr2rgb=True, float32=True), 'lq_path': path}

    def megapixels(self):
        """The photos' mean size in megapixels, from their headers (nothing decoded)."""
        return statistics.fmean(width * height / 1e6
                                for width, height, _ in (image_header(pair.lq) for pair in self.pairs))


def open_test_set(root, layout='auto'):
    """The test set in ``root``: a ``PairedDerainDataset`` in ``layout``, else (``layout`` auto) the
    photos directly in the folder, without ground truth (a ``PhotoFolder``)."""
    try:
        return PairedDerainDataset({
            'name': os.path.basename(os.path.normpath(root)),
            'dataroot': root,
            'layout': layout,
            'io_backend': {
                'type': 'disk'
            },
            'phase': 'val'
        })
    except LayoutError:
        if layout != 'auto' or not image_files(root):
            raise
        return PhotoFolder(root)
