"""PairedDerainDataset on every layout, bad inputs, crops; RainSynthesisDataset; image decoding."""
import numpy as np
import pytest
import torch
from basicsr.data import build_dataset
from pathlib import Path

from mh2f_plugin.data.image_io import ImageReadError, read_image
from mh2f_plugin.data.layouts import LayoutError
from mh2f_plugin.data.paired_derain_dataset import PairedDerainDataset
from mh2f_plugin.errors import DatasetError, InvalidOption
from helpers import OFFSET, clean_image, make_input_target, make_rain200, photo, write, write_pair


def dataset(root, phase='val', **options):
    opt = {
        'name': 'test',
        'type': 'PairedDerainDataset',
        'dataroot': str(root),
        'io_backend': {
            'type': 'disk'
        },
        'phase': phase,
        **options
    }
    return build_dataset(opt)


def assert_correctly_paired(ds, count):
    assert len(ds) == count
    for item in ds:
        lq, gt = item['lq'] * 255, item['gt'] * 255
        assert torch.allclose(lq - gt, torch.full_like(lq, OFFSET), atol=1.5), (item['lq_path'], item['gt_path'])


def make_rain200_renamed(root):
    for i in (1, 2, 3):
        write_pair(root / 'input' / f'rain-{i}.png', root / 'groundtruth' / f'norain-{i}.png', i)


def make_rain100(root):
    for i in (1, 2, 3, 100):
        write_pair(root / f'rain-{i:03d}.png', root / f'norain-{i:03d}.png', i % 20)
        write(root / f'rainstreak-{i:03d}.png', clean_image(0))
        write(root / f'rainregion-{i:03d}.png', clean_image(0))


def make_rain_norain(root):
    for i in (1, 2):
        write_pair(root / 'rain' / f'rain-{i}.png', root / 'norain' / f'rain-{i}.png', i)


def make_rain1400(root, lq='rainy_image', gt='ground_truth'):
    for i in (901, 902):
        write(root / gt / f'{i}.png', clean_image(i - 900))
        for j in (1, 2, 14):
            write(root / lq / f'{i}_{j}.png', clean_image(i - 900) + OFFSET)


def make_spa_test(root):
    for k in (0, 1, 2):
        write_pair(root / 'rain' / f'{k}.png', root / 'gt' / f'{k}gt.png', k + 1)


def make_input_groundtruth(root):
    for k in (0, 1):
        write_pair(root / 'input' / f'{k}.png', root / 'groundtruth' / f'{k}.png', k + 1)


LAYOUT_TREES = [
    ('rain200', make_rain200, 3),
    ('rain200', lambda root: make_rain200(root, x2=False), 3),
    ('rain200_renamed', make_rain200_renamed, 3),
    ('input_target', make_input_target, 3),
    ('rain100', make_rain100, 4),
    ('rain_norain', make_rain_norain, 2),
    ('rain1400', make_rain1400, 6),
    ('rain1400_renamed', lambda root: make_rain1400(root, 'input', 'groundtruth'), 6),
    ('spa_test', make_spa_test, 3),
    ('input_groundtruth', make_input_groundtruth, 2),
]


@pytest.mark.parametrize('layout, make, count', LAYOUT_TREES)
def test_each_layout_is_detected_and_paired(tmp_path, layout, make, count):
    make(tmp_path)
    ds = dataset(tmp_path)
    assert ds.layout == layout
    assert_correctly_paired(ds, count)
    assert_correctly_paired(dataset(tmp_path, layout=layout), count)


def test_many_to_one_keeps_one_entry_per_rainy_image_sharing_the_clean_path(tmp_path):
    make_rain1400(tmp_path)
    ds = dataset(tmp_path)
    assert [Path(p.lq).name
            for p in ds.pairs] == ['901_1.png', '901_14.png', '901_2.png', '902_1.png', '902_14.png', '902_2.png']
    assert len({p.gt for p in ds.pairs}) == 2
    assert ds.pairs[0].gt is ds.pairs[1].gt  # one string per clean image, not a copy per pair


def test_spa_list_file_with_leading_slash_and_dot(tmp_path):
    for k in (1, 2, 3):
        write_pair(tmp_path / 'real_world' / '274' / f'274-{k}_0_3.png', tmp_path / 'real_world_gt' / f'274_{k}.png', k)
    lines = [
        '/real_world/274/274-1_0_3.png /real_world_gt/274_1.png',
        './real_world/274/274-2_0_3.png ./real_world_gt/274_2.png',
        'real_world/274/274-3_0_3.png real_world_gt/274_3.png', ''
    ]
    (tmp_path / 'real_world.txt').write_text('\n'.join(lines))
    ds = dataset(tmp_path, list_file='real_world.txt')
    assert ds.layout == 'spa_list'
    assert_correctly_paired(ds, 3)


def test_spa_list_missing_files_are_reported_and_only_allowed_on_request(tmp_path):
    write_pair(tmp_path / 'a' / '1.png', tmp_path / 'b' / '1.png', 1)
    lines = ['/a/1.png /b/1.png'] + [f'/a/{k}.png /b/{k}.png' for k in range(2, 10)]
    (tmp_path / 'list.txt').write_text('\n'.join(lines))
    with pytest.raises(
            LayoutError,
            match=r'list.txt: 8 listed file\(s\) are missing '
            r'\(line 2: /a/2.png and /b/2.png, line 3: .*and 3 more\); set allow_missing: true'):
        dataset(tmp_path, layout='spa_list', list_file='list.txt')
    assert_correctly_paired(dataset(tmp_path, layout='spa_list', list_file='list.txt', allow_missing=True), 1)


def test_spa_list_line_with_one_path_is_named(tmp_path):
    write_pair(tmp_path / 'a' / '1.png', tmp_path / 'b' / '1.png', 1)
    (tmp_path / 'list.txt').write_text('/a/1.png /b/1.png\n\n/a/1.png\n')
    with pytest.raises(LayoutError, match=r'list.txt:3: expected "rainy_path gt_path", got \'/a/1.png\''):
        dataset(tmp_path, layout='spa_list', list_file='list.txt')


def test_regex_layout(tmp_path):
    for i in (1, 2):
        write_pair(tmp_path / 'wet' / f'{i}_rain.png', tmp_path / 'dry' / f'{i}_clean.png', i)
    ds = dataset(
        tmp_path, layout='regex', lq_folder='wet', gt_folder='dry', pattern=r'(\d+)_rain', replacement=r'\1_clean')
    assert_correctly_paired(ds, 2)
    with pytest.raises(LayoutError, match='layout regex needs the options lq_folder, gt_folder and pattern'):
        dataset(tmp_path, layout='regex', lq_folder='wet')


@pytest.mark.parametrize('rainy_half', ['left', 'right'])
def test_side_by_side_halves(tmp_path, rainy_half):
    clean, rainy = clean_image(5), clean_image(5) + OFFSET
    halves = [rainy, clean] if rainy_half == 'left' else [clean, rainy]
    write(tmp_path / 'train' / '1.png', np.concatenate(halves, 1))
    assert_correctly_paired(dataset(tmp_path / 'train', layout='side_by_side', rainy_half=rainy_half), 1)
    with pytest.raises(InvalidOption, match='needs rainy_half: left or right'):
        dataset(tmp_path / 'train', layout='side_by_side')


def test_training_crops_are_aligned(tmp_path):
    for i in range(2):
        clean = (photo(i, (60, 70)).astype(np.int16) * 0.8).astype(np.uint8)
        write(tmp_path / 'target' / f'{i}.png', clean)
        write(tmp_path / 'input' / f'{i}.png', clean + 25)
    ds = dataset(tmp_path, phase='train', gt_size=24, use_hflip=True, use_rot=True)
    np.random.seed(0)
    corners = set()
    for _ in range(20):
        item = ds[0]
        assert item['lq'].shape == item['gt'].shape == (3, 24, 24)
        assert torch.allclose(item['lq'] - item['gt'], torch.full_like(item['lq'], 25 / 255), atol=1e-6)
        corners.add(float(item['gt'][0, 0, 0]))
    assert len(corners) > 5, 'crops should land at random places'


# ---- bad input: each error names the file and the problem ------------------------------------


def test_empty_folder(tmp_path):
    with pytest.raises(LayoutError, match=f'{tmp_path}: dataset folder is empty'):
        dataset(tmp_path)


def test_missing_folder(tmp_path):
    with pytest.raises(LayoutError, match='nowhere: dataset folder not found'):
        dataset(tmp_path / 'nowhere')


def test_rainy_image_without_clean_partner_names_both_paths(tmp_path):
    make_rain200(tmp_path)
    (tmp_path / 'norain' / 'norain-2.png').unlink()
    with pytest.raises(LayoutError) as error:
        dataset(tmp_path, layout='rain200')
    message = str(error.value)
    assert 'have no clean partner' in message
    assert str(tmp_path / 'rain/X2/norain-2x2.png') in message and str(tmp_path / 'norain/norain-2') in message


def test_auto_detection_reports_what_each_candidate_failed_on(tmp_path):
    make_input_target(tmp_path)
    (tmp_path / 'target' / 'c.bmp').unlink()
    with pytest.raises(LayoutError, match=r'no layout pairs every rainy image:\n  input_target: .*input/c.png'):
        dataset(tmp_path)


def test_rainy_names_that_do_not_fit_the_layout(tmp_path):
    make_rain200(tmp_path)
    write(tmp_path / 'rain/X2/stray.png', clean_image(1))
    with pytest.raises(LayoutError, match=r"1 rainy file\(s\) do not fit layout 'rain200'.*stray.png"):
        dataset(tmp_path, layout='rain200')


def test_pair_sizes_differ(tmp_path):
    write(tmp_path / 'input' / 'a.png', clean_image(1, size=40))
    write(tmp_path / 'target' / 'a.png', clean_image(1, size=32))
    ds = dataset(tmp_path)
    with pytest.raises(DatasetError, match=r'pair sizes differ: .*input/a.png is 40x40, .*target/a.png is 32x32'):
        ds[0]


@pytest.mark.parametrize('corruption, message', [
    (lambda data: data[:len(data) // 2], 'truncated PNG'),
    (lambda data: b'', 'empty file'),
    (lambda data: b'not an image at all', 'not a readable image'),
])
def test_unreadable_or_truncated_images(tmp_path, corruption, message):
    make_input_target(tmp_path)
    path = tmp_path / 'input' / 'a.png'
    path.write_bytes(corruption(path.read_bytes()))
    ds = dataset(tmp_path)
    with pytest.raises(ImageReadError, match=f'{path}: {message}'):
        ds[0]


def test_truncated_jpeg(tmp_path):
    path = write(tmp_path / 'a.jpg', photo(0, (40, 40)))
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(ImageReadError, match='a.jpg: truncated JPEG'):
        read_image(path)


def test_unknown_layout(tmp_path):
    make_rain200(tmp_path)
    with pytest.raises(LayoutError, match="unknown layout 'rain300'; known layouts: auto, rain200"):
        dataset(tmp_path, layout='rain300')


def test_gt_size_larger_than_an_image(tmp_path):
    make_input_target(tmp_path)
    ds = dataset(tmp_path, phase='train', gt_size=64)
    with pytest.raises(DatasetError, match=r'input/a.png: image is 40x40, smaller than gt_size 64'):
        ds[0]


def test_train_phase_needs_gt_size(tmp_path):
    make_input_target(tmp_path)
    with pytest.raises(InvalidOption, match='the train phase needs gt_size'):
        dataset(tmp_path, phase='train')


def test_list_file_that_does_not_exist(tmp_path):
    make_input_target(tmp_path)
    with pytest.raises(LayoutError, match='real_test_1000.txt: list file not found'):
        dataset(tmp_path, list_file='real_test_1000.txt')


# ---- image decoding ------------------------------------------------------------------------------


def test_gray_alpha_and_16_bit_images_become_three_channel_floats(tmp_path):
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    bgra = np.dstack([np.full((8, 8, 3), 200, np.uint8), np.zeros((8, 8), np.uint8)])
    deep = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)
    for name, img in (('gray.png', gray), ('alpha.png', bgra), ('deep.png', deep)):
        write(tmp_path / name, img)
    gray_read, alpha_read, deep_read = (read_image(tmp_path / n) for n in ('gray.png', 'alpha.png', 'deep.png'))
    for img in (gray_read, alpha_read, deep_read):
        assert img.shape == (8, 8, 3) and img.dtype == np.float32 and 0 <= img.min() and img.max() <= 1
    assert np.allclose(gray_read[..., 1], gray / 255)
    assert np.allclose(alpha_read, 200 / 255)
    assert np.allclose(deep_read[..., 2], deep / 65535)  # 16-bit precision kept, not cut to 8 bits


def test_missing_image_file(tmp_path):
    with pytest.raises(ImageReadError, match='nothing.png: cannot read: No such file'):
        read_image(tmp_path / 'nothing.png')


# ---- rain synthesis ------------------------------------------------------------------------------


def synthesis(root, phase, **options):
    return build_dataset({
        'name': 'synth',
        'type': 'RainSynthesisDataset',
        'dataroot_gt': str(root),
        'phase': phase,
        **options
    })


@pytest.fixture
def clean_photos(tmp_path):
    for i in range(3):
        write(tmp_path / f'{i}.png', photo(i, (48, 64)))
    return tmp_path


def test_synthesis_validation_is_reproducible(clean_photos):
    first, second = synthesis(clean_photos, 'val'), synthesis(clean_photos, 'val')
    assert torch.equal(first[1]['lq'], second[1]['lq'])
    assert not torch.equal(first[0]['lq'] - first[0]['gt'], first[1]['lq'] - first[1]['gt'])
    assert not torch.equal(first[0]['lq'], synthesis(clean_photos, 'val', seed=7)[0]['lq'])
    item = first[0]
    assert item['lq'].shape == item['gt'].shape == (3, 48, 64)
    assert (item['lq'] >= item['gt'] - 1e-6).all(), 'screen-blended rain only brightens'
    assert (item['lq'] - item['gt']).abs().mean() > 0.005


def test_synthesis_training_varies_and_crops(clean_photos):
    ds = synthesis(clean_photos, 'train', gt_size=32, rain={'density': [0.01, 0.02], 'haze': [0.1, 0.2]})
    a, b = ds[0], ds[0]
    assert a['lq'].shape == (3, 32, 32)
    assert not torch.equal(a['lq'], b['lq'])


def test_synthesis_options_are_checked(clean_photos, tmp_path):
    with pytest.raises(ValueError, match='unknown rain option'):
        synthesis(clean_photos, 'val', rain={'dropsize': [1, 2]})
    with pytest.raises(ValueError, match=r'angle range \[30, -30\] has low > high'):
        synthesis(clean_photos, 'val', rain={'angle': [30, -30]})
    (tmp_path / 'empty').mkdir()
    with pytest.raises(LayoutError, match='no clean photos found'):
        synthesis(tmp_path / 'empty', 'val')


def test_real_rainy_photos_without_ground_truth_use_basicsr_single_image_dataset(tmp_path):
    write(tmp_path / 'rainy_photo.jpg', photo(2, (37, 53)))
    ds = build_dataset({
        'name': 'real',
        'type': 'SingleImageDataset',
        'dataroot_lq': str(tmp_path),
        'io_backend': {
            'type': 'disk'
        },
        'phase': 'test'
    })
    assert ds[0]['lq'].shape == (3, 37, 53) and ds[0]['lq_path'].endswith('rainy_photo.jpg')


def test_dataset_is_registered():
    from basicsr.utils.registry import DATASET_REGISTRY
    assert DATASET_REGISTRY.get('PairedDerainDataset') is PairedDerainDataset
