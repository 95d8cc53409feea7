"""The catalogue of user mistakes: each ends in one line ``basicsr <verb>: error: <file>: <what>``, exit 2,
and leaves nothing that looks complete; a rerun finishes the work."""
import cv2
import io
import numpy as np
import os
import pytest
import re
import torch
import yaml
from PIL import Image

from mh2f_plugin import compat
from mh2f_plugin.cli.main import main
from mh2f_plugin.data import image_io, lmdb_store
from mh2f_plugin.data.image_io import ImageReadError, decode_raw
from mh2f_plugin.utils.options import check_options, with_prepared_options
from helpers import (eval_options, make_input_target, make_paired_folder, photo, run_basicsr, tiny_network,
                     train_options, write, write_yaml)


@pytest.fixture(autouse=True)
def fresh_basicsr_logger():
    """BasicSR's logger keeps the stream it was first set up with; pytest replaces stderr per test."""
    import logging
    from basicsr.utils import logger
    for handler in logging.getLogger('basicsr').handlers:
        handler.close()
    logging.getLogger('basicsr').handlers.clear()
    logger.initialized_logger.pop('basicsr', None)


def error_line(capsys, verb):
    """The one ``basicsr <verb>: error:`` line on stderr (progress bars and logs aside), no traceback."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if ': error: ' in line]
    assert len(lines) == 1 and lines[0].startswith(f'basicsr {verb}: error: ') and 'Traceback' not in err, err[-3000:]
    return lines[0]


# ---------------------------------------------------------------- options, checked after --force_yml


@pytest.mark.parametrize('change, force_yml, message', [
    (None, ['network_g:type=Nope'], "unknown arch 'Nope' at 'network_g:type'"),
    (lambda o: o['train']['optim_g'].update(lr='1e-3'), [], "'train:optim_g:lr' must be a positive number"),
    (lambda o: o['network_g'].update(num_feats=32), [], "SRVGGNetCompact has no argument 'num_feats'; did you mean "
     "'num_feat'?"),
    (lambda o: o['path'].update(pretrain_network_g='absent.pth'), [], "'path:pretrain_network_g': absent.pth: file not "
     'found'),
    (lambda o: o['datasets']['train'].pop('io_backend'), [], "missing key 'datasets:train:io_backend:type'"),
    (None, ['train:total_iter=-5'], "'train:total_iter' must be a positive integer, got -5"),
    (None, ['train:scheduler:milestones=[1, 2'], "--force_yml 'train:scheduler:milestones=[1, 2': not a YAML value"),
    (None, ['train:optim_g:lr=!!float abc'], "--force_yml 'train:optim_g:lr=!!float abc': not a YAML value"),
    (None, ['train:scheduler:milestones=[abc]'], "'train:scheduler:milestones' must be a list of numbers, got ['abc']"),
    (None, ['name=a=b'], "--force_yml 'name=a=b': a value cannot hold '='"),
    (lambda o: o['network_g'].update(num_feat=-8), [], "'network_g': SRVGGNetCompact: num_feat must be a positive "
     'integer, got -8'),
    (lambda o: o.update(network_g=dict(type='MH2FNet', num_feat=8.5)), [], "'network_g': MH2FNet: num_feat must be a "
     'positive integer, got 8.5'),
    (lambda o: o.update(network_g=dict(type='MH2FNet', growth=-4)), [], "'network_g': MH2FNet: growth must be a "
     'positive integer, got -4'),
    (lambda o: o.update(name='../elsewhere'), [], "'name' must be a plain folder name (no /, not . or ..), got "
     "'../elsewhere'"),
    (None, ['nosuchsection:key=1'], "--force_yml 'nosuchsection:key=1': no section 'nosuchsection'"),
    (None, ['train:total_iter'], "--force_yml 'train:total_iter': expected key:key=value"),
    (lambda o: o['datasets']['train'].update(dataroot_lq='nowhere'), [], "'datasets:train:dataroot_lq': nowhere: no "
     'such folder'),
    (lambda o: o.update(network_g=dict(type='MH2FNet', final_fusion='sum')), [],
     "'network_g': MH2FNet: final_fusion must be one of 'rpf', 'add', 'concat', got 'sum'"),
])
def test_options_mistakes_end_in_one_line(tmp_path, monkeypatch, capsys, paired_data, change, force_yml, message):
    options = train_options('broken', paired_data)
    if change:
        change(options)
    path = write_yaml(tmp_path / 'broken.yml', options)
    monkeypatch.chdir(tmp_path)
    argv = ['train', '-opt', str(path)] + (['--force_yml'] + force_yml if force_yml else [])
    assert main(argv) == 2
    line = error_line(capsys, 'train')
    assert str(path) in line and message in line
    assert not (tmp_path / 'experiments').exists(), 'refused before BasicSR set anything up'


def test_a_key_given_twice_is_refused_with_its_line(tmp_path, capsys, paired_data):
    """YAML keeps the last of two equal keys silently."""
    text = yaml.safe_dump(train_options('twice', paired_data), sort_keys=False)
    text = text.replace('  total_iter: 20\n', '  total_iter: 20\n  total_iter: 40\n')
    (tmp_path / 'twice.yml').write_text(text)
    line_number = text.splitlines().index('  total_iter: 40') + 1
    assert main(['train', '-opt', str(tmp_path / 'twice.yml')]) == 2
    assert f"twice.yml:{line_number}: duplicate key 'total_iter' (first at line {line_number - 1}); remove one" in \
        error_line(capsys, 'train')


def test_a_param_key_the_checkpoint_lacks_is_refused(tmp_path, capsys, paired_data):
    """BasicSR took 'params' silently when 'params_ema' was asked for."""
    torch.save({'params': {}}, tmp_path / 'w.pth')
    options = eval_options('keys', paired_data, tmp_path / 'w.pth')
    options['path']['param_key_g'] = 'params_ema'
    assert main(['test', '-opt', str(write_yaml(tmp_path / 'keys.yml', options))]) == 2
    line = error_line(capsys, 'test')
    assert "'path:param_key_g': " in line
    assert "w.pth has no 'params_ema' (it has params); set param_key_g: params" in line
    options['path']['param_key_g'] = 'params'
    check_options(str(write_yaml(tmp_path / 'keys.yml', options)), is_train=False)


@pytest.mark.parametrize('command', ['derain', 'compare', 'convert-weights'])
def test_a_param_key_flag_the_file_lacks_is_refused_listing_its_keys(tmp_path, capsys, tiny_weights, command):
    """derain ran with 'params' when --param-key params_ema was asked for, and said nothing."""
    cv2.imwrite(str(tmp_path / 'a.png'), photo(0, (20, 24)))
    make_input_target(tmp_path / 'data')
    flags = {
        'derain': [tmp_path / 'a.png', tmp_path / 'out', '--weights', tiny_weights],
        'compare': ['--weights', f'W={tiny_weights}', '--data', tmp_path / 'data', '--out', tmp_path / 'out'],
        'convert-weights': [tiny_weights, tmp_path / 'out.pth'],
    }[command]
    assert main([command] + [str(f) for f in flags] + ['--param-key', 'params_ema']) == 2
    assert "w.pth: no 'params_ema' in the checkpoint (it has params, network_g)" in error_line(capsys, command)
    assert not (tmp_path / 'out').exists() and not (tmp_path / 'out.pth').exists()


def test_a_second_training_of_the_same_name_is_refused_while_one_runs(tmp_path, monkeypatch, capsys, paired_data):
    """The second run archived the first's live folder; both then wrote into one, and the first's
    final model was lost."""
    import fcntl
    path = write_yaml(tmp_path / 'twin.yml', train_options('twin', paired_data, total_iter=2))
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'experiments').mkdir()
    with open(tmp_path / 'experiments' / '.twin.lock', 'a') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # as the first run holds it
        assert main(['train', '-opt', str(path)]) == 2
        assert "experiments/twin: another basicsr train of 'twin' is running" in error_line(capsys, 'train')
        assert not (tmp_path / 'experiments' / 'twin').exists()
    assert main(['train', '-opt', str(path)]) == 0


def test_a_resume_state_of_another_experiment_is_named(tmp_path, monkeypatch, capsys, paired_data):
    """It was reported as a missing options file (BasicSR copies the file into a folder it never made)."""
    state = tmp_path / 'experiments' / 'runa' / 'training_states' / '2.state'
    state.parent.mkdir(parents=True)
    torch.save({'iter': 2}, state)
    options = train_options('runb', paired_data)
    options['path']['resume_state'] = str(state)
    monkeypatch.chdir(tmp_path)
    assert main(['train', '-opt', str(write_yaml(tmp_path / 'b.yml', options))]) == 2
    line = error_line(capsys, 'train')
    assert f"'path:resume_state': {state} is a state of experiment 'runa'" in line and 'set name: runa' in line


def test_ssim_of_images_smaller_than_its_window_is_refused(tmp_path, monkeypatch, capsys):
    """BasicSR logged SSIM as nan for such images, with no error."""
    from basicsr.archs import build_network
    small = make_paired_folder(tmp_path / 'small', 1, size=(9, 12))
    torch.save({'params': build_network(tiny_network()).state_dict()}, tmp_path / 'w.pth')
    options = eval_options('small', {'val': small}, tmp_path / 'w.pth')
    options['model_type'] = 'DerainModel'
    options['val']['metrics']['ssim'] = {'type': 'calculate_ssim', 'crop_border': 0, 'test_y_channel': True}
    monkeypatch.chdir(tmp_path)
    assert main(['test', '-opt', str(write_yaml(tmp_path / 's.yml', options))]) == 2
    assert "lq/000.png: 12x9 pixels, less crop_border 0 at each side, is smaller than the 11x11 window of the " \
        "metric 'ssim' (calculate_ssim)" in error_line(capsys, 'test')


def test_a_training_set_smaller_than_one_batch_is_refused(tmp_path, monkeypatch, capsys, paired_data):
    """BasicSR drops incomplete batches: 4 pairs at batch 8 would run no iteration, then save and
    validate the untrained network as if training had finished."""
    path = write_yaml(tmp_path / 'small.yml', train_options('small', paired_data))
    monkeypatch.chdir(tmp_path)
    assert main(['train', '-opt', str(path), '--force_yml', 'datasets:train:batch_size_per_gpu=8']) == 2
    line = error_line(capsys, 'train')
    assert line.endswith(f"{paired_data['train'] / 'lq'}: 4 training pairs x dataset_enlarge_ratio 1 over 1 "
                         'process(es) give no full batch of batch_size_per_gpu 8, so no iteration would run; '
                         'lower batch_size_per_gpu or raise dataset_enlarge_ratio')
    assert not list((tmp_path / 'experiments').rglob('*.pth')), 'no untrained network saved as a result'
    assert main(['train', '-opt', str(path), '--force_yml', 'datasets:train:batch_size_per_gpu=4']) == 0


def test_training_runs_total_iter_when_the_last_batch_of_an_epoch_is_dropped(tmp_path, monkeypatch, paired_data):
    """4 pairs at batch 3: 1 iteration per epoch, where BasicSR counts 2 and would stop after 6 of 10."""
    options = train_options('uneven', paired_data, total_iter=10)
    options['datasets']['train']['batch_size_per_gpu'] = 3
    options['logger'].update(print_freq=1, use_tb_logger=False)
    monkeypatch.chdir(tmp_path)
    assert main(['train', '-opt', str(write_yaml(tmp_path / 'uneven.yml', options))]) == 0
    log = next((tmp_path / 'experiments' / 'uneven').glob('train_*.log')).read_text()
    assert 'Iterations per epoch (incomplete batches dropped): 1; epochs: 10' in log
    assert 'Require iter number per epoch' not in log, "BasicSR's wrong count reached the log"
    assert 'Number of train images: 4' in log, "BasicSR's statistics are kept"
    assert re.findall(r'iter: +(\d+),', log)[-1] == '10'


def test_a_test_file_without_val_is_refused(tmp_path, capsys, paired_data):
    dataset = {
        'name': 'x',
        'type': 'PairedDerainDataset',
        'dataroot': str(paired_data['val']),
        'io_backend': {
            'type': 'disk'
        }
    }
    options = {
        'name': 't',
        'model_type': 'SRModel',
        'num_gpu': 0,
        'network_g': {
            'type': 'MH2FNet'
        },
        'path': {},
        'datasets': {
            'test_1': dataset
        }
    }
    assert main(['test', '-opt', str(write_yaml(tmp_path / 't.yml', options))]) == 2
    assert "missing key 'val' (basicsr test needs it" in error_line(capsys, 'test')


def test_typos_in_optional_keys_are_warned_about(tmp_path, paired_data):
    options = train_options('typo', paired_data, model_type='DerainModel')
    options['datasets']['train'] = {
        **options['datasets']['train'], 'type': 'PairedDerainDataset',
        'dataroot': str(paired_data['train']),
        'layout': 'regex',
        'lq_folder': 'lq',
        'gt_folder': 'gt',
        'pattern': '(.+)',
        'use_hflp': True
    }
    options['val']['tile_overlp'] = 8
    _, warnings = check_options(str(write_yaml(tmp_path / 'o.yml', options)), is_train=True)
    assert "'datasets:train:use_hflp' is not an option of PairedDerainDataset, ignored; did you mean 'use_hflip'?" \
        in warnings
    assert "'val:tile_overlp' is not a validation option, ignored; did you mean 'tile_overlap'?" in warnings


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks a machine without CUDA')
def test_num_gpu_without_cuda_falls_back_to_the_cpu_with_a_warning(tmp_path, paired_data):
    options = train_options('gpu', paired_data)
    options['num_gpu'] = 1
    _, warnings = check_options(str(write_yaml(tmp_path / 'o.yml', options)), is_train=True)
    assert warnings == [
        'num_gpu is 1 but this machine has no CUDA GPU: running on the CPU instead '
        '(set num_gpu: 0, or auto, to say so)'
    ]
    parse = with_prepared_options(lambda root_path, is_train: ({'num_gpu': 1, 'path': {}}, None))
    assert parse('.', True)[0]['num_gpu'] == 0


# ---------------------------------------------------------------- data errors in DataLoader workers


def test_a_dataset_error_in_a_dataloader_worker_is_one_line(tmp_path, paired_data):
    data = tmp_path / 'data'
    make_input_target(data)
    truncated = (data / 'input' / 'b_2.png').read_bytes()
    (data / 'input' / 'b_2.png').write_bytes(truncated[:len(truncated) // 2])
    options = train_options('workers', paired_data, model_type='DerainModel')
    options['datasets']['train'] = {
        'name': 'w',
        'type': 'PairedDerainDataset',
        'dataroot': str(data),
        'io_backend': {
            'type': 'disk'
        },
        'gt_size': 16,
        'num_worker_per_gpu': 2,
        'batch_size_per_gpu': 3,
        'dataset_enlarge_ratio': 4
    }
    result = run_basicsr(['train', '-opt', write_yaml(tmp_path / 'w.yml', options)], cwd=tmp_path)
    assert result.returncode == 2
    assert 'Traceback' not in result.stderr and 'DataLoader worker' not in result.stderr
    lines = [line for line in result.stderr.splitlines() if ': error: ' in line]
    assert lines == [f"basicsr train: error: {data / 'input' / 'b_2.png'}: truncated PNG (no IEND chunk)"]


# ---------------------------------------------------------------- weights files in basicsr test


def test_a_bad_weights_file_in_basicsr_test_is_one_line(tmp_path, capsys, paired_data, monkeypatch):
    (tmp_path / 'w.pth').write_text('not weights')
    monkeypatch.chdir(tmp_path)
    options = write_yaml(tmp_path / 't.yml', eval_options('t', paired_data, tmp_path / 'w.pth'))
    assert main(['test', '-opt', str(options)]) == 2
    assert f"{tmp_path / 'w.pth'}: not a PyTorch weights file" in error_line(capsys, 'test')


# ---------------------------------------------------------------- LMDB


def test_non_ascii_names_get_keys_basicsr_reads(tmp_path):
    src = tmp_path / 'src'
    for name in ('pluie été', 'Regen%1', '雨'):
        write(src / 'input' / f'{name}.png', photo(1, (20, 24)))
        write(src / 'target' / f'{name}.png', photo(1, (20, 24)))
    assert main(['lmdb', str(src), str(tmp_path / 'out'), '--workers', '1']) == 0
    keys = list(lmdb_store.read_meta_info(str(tmp_path / 'out' / 'lq.lmdb')))
    assert sorted(keys) == ['input/%E9%9B%A8', 'input/Regen%251', 'input/pluie_%C3%A9t%C3%A9']
    assert all(key.isascii() for key in keys)
    from urllib.parse import unquote
    assert unquote('input/pluie_%C3%A9t%C3%A9') == 'input/pluie_été'
    assert main(['lmdb', '--verify', str(tmp_path / 'out')]) == 0
    from basicsr.data import build_dataset
    dataset = build_dataset({
        'name': 'd',
        'type': 'PairedDerainDataset',
        'dataroot': str(tmp_path / 'out'),
        'io_backend': {
            'type': 'lmdb'
        },
        'phase': 'val'
    })
    assert [tuple(item['lq'].shape) for item in dataset] == [(3, 20, 24)] * 3  # BasicSR's reader encodes as ASCII


@pytest.mark.parametrize('crash_in', ['write_text_atomically', 'rename'])
def test_a_conversion_killed_at_its_start_or_end_is_finished_by_a_rerun(tmp_path, monkeypatch, crash_in):
    src = tmp_path / 'src'
    make_input_target(src)
    out = tmp_path / 'out'
    real = lmdb_store.write_text_atomically if crash_in == 'write_text_atomically' else os.rename

    def crash_once(*args):
        monkeypatch.setattr(lmdb_store if crash_in == 'write_text_atomically' else lmdb_store.os, crash_in, real)
        raise KeyboardInterrupt  # as a kill at this point

    monkeypatch.setattr(lmdb_store if crash_in == 'write_text_atomically' else lmdb_store.os, crash_in, crash_once)
    assert main(['lmdb', str(src), str(out), '--workers', '1']) == 130  # interrupted
    assert not out.exists(), 'nothing may look complete'
    assert main(['lmdb', str(src), str(out), '--workers', '1']) == 0
    assert main(['lmdb', '--verify', str(out)]) == 0
    assert not (tmp_path / 'out.partial').exists()


def test_corrupt_database_and_malformed_meta_info_are_one_line(tmp_path, capsys):
    src = tmp_path / 'src'
    make_input_target(src)
    assert main(['lmdb', str(src), str(tmp_path / 'out'), '--workers', '1']) == 0
    meta = tmp_path / 'out' / 'gt.lmdb' / 'meta_info.txt'
    lines = meta.read_text().splitlines()
    meta.write_text('\n'.join([lines[0], lines[1].replace(',3)', ',x)')] + lines[2:]) + '\n')
    assert main(['lmdb', '--verify', str(tmp_path / 'out')]) == 2
    assert f'{meta}:2: the shape must be (h,w,c), got ' in error_line(capsys, 'lmdb')
    (tmp_path / 'out' / 'lq.lmdb' / 'data.mdb').write_bytes(b'\0garbage' * 1000)
    assert main(['lmdb', '--verify', str(tmp_path / 'out')]) == 2
    assert f"{tmp_path / 'out' / 'lq.lmdb'}: not a readable LMDB database" in error_line(capsys, 'lmdb')


def test_pillow_size_limit_does_not_stop_a_conversion(tmp_path, monkeypatch):
    src = tmp_path / 'src'
    make_input_target(src)
    monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 100)  # every image here is "too large" for Pillow now
    with pytest.raises(Image.DecompressionBombError):
        with Image.open(src / 'input' / 'a.png'):
            pass
    assert main(['lmdb', str(src), str(tmp_path / 'out'), '--workers', '1']) == 0
    assert Image.MAX_IMAGE_PIXELS == 100, 'the limit is lifted only while reading headers'


def test_pair_sizes_are_compared_while_converting(tmp_path, capsys):
    src = tmp_path / 'src'
    make_input_target(src)
    write(src / 'target' / 'c.bmp', photo(0, (30, 20)))
    assert main(['lmdb', str(src), str(tmp_path / 'out'), '--workers', '1']) == 2
    assert 'pair sizes differ (width x height): ' in error_line(capsys, 'lmdb')
    assert not (tmp_path / 'out').exists() and not (tmp_path / 'out.partial').exists()


# ---------------------------------------------------------------- derain


@pytest.fixture
def tiny_weights(tmp_path):
    torch.manual_seed(0)
    from mh2f_plugin.archs.prenet_arch import PReNet
    net = PReNet(num_feat=4, num_iters=1, num_res=1, recurrent='none')
    torch.save({
        'params': net.state_dict(),
        'network_g': {
            'type': 'PRN',
            'num_feat': 4,
            'num_iters': 1,
            'num_res': 1
        }
    }, tmp_path / 'w.pth')
    return tmp_path / 'w.pth'


def derain(*args):
    return main(['derain'] + [str(a) for a in args])


@pytest.mark.parametrize('flags, message', [
    (['--tile', '-8'], '--tile must be a positive number of pixels, got -8'),
    (['--tile', '32', '--tile-overlap', '32'], '--tile-overlap must be at least 0 and smaller than --tile, got 32'),
    (['--pad-multiple', '-3'], '--pad-multiple must be a positive integer, got -3'),
    (['--device', 'gpu7'], "--device 'gpu7': not a device"),
    (['--device', 'cuda:5'], '--device cuda:5: no such CUDA device on this machine'),
    (['--arch', 'PRNN'], "--arch: unknown arch 'PRNN'; did you mean 'PRN'?"),
    (['--arch', 'PRN', '--arch-opt', '{num_feats: 4}'], "--arch-opt: PRN has no argument 'num_feats'; did you mean "
     "'num_feat'?"),
    (['--arch', 'PRN', '--arch-opt', '{recurrent: tree}'], "--arch-opt: PRN: recurrent must be one of"),
    (['--arch-opt', '{num_feat: [unclosed'], '--arch-opt'),
    (['--arch', 'PRN', '--arch-opt', '{num_feat: -8}'], '--arch-opt: PRN: num_feat must be a positive integer, got -8'),
    (['--arch', 'MH2FNet:{num_feat: 4.5}'], '--arch: MH2FNet: num_feat must be a positive integer, got 4.5'),
])
def test_derain_flag_mistakes_are_one_line(tmp_path, capsys, tiny_weights, flags, message):
    cv2.imwrite(str(tmp_path / 'a.png'), photo(0, (20, 24)))
    assert derain(tmp_path / 'a.png', tmp_path / 'out', '--weights', tiny_weights, *flags) == 2
    assert message in error_line(capsys, 'derain')
    assert not (tmp_path / 'out').exists()


def test_derain_never_overwrites_or_collides(tmp_path, capsys, tiny_weights):
    photos = tmp_path / 'photos'
    photos.mkdir()
    cv2.imwrite(str(photos / 'a.png'), photo(0, (20, 24)))
    original = (photos / 'a.png').read_bytes()
    assert derain(photos, photos, '--weights', tiny_weights) == 2
    assert 'is inside the input folder' in error_line(capsys, 'derain')
    assert derain(photos, photos / 'out', '--weights', tiny_weights) == 2
    assert 'is inside the input folder' in error_line(capsys, 'derain')
    assert derain(photos, photos, '--weights', tiny_weights, '--output-inside-input') == 2
    assert 'a.png: is an input image; it would be overwritten' in error_line(capsys, 'derain')
    assert (photos / 'a.png').read_bytes() == original
    assert derain(photos, tmp_path / 'out', '--weights', tiny_weights) == 0
    assert derain(photos, tmp_path / 'out', '--weights', tiny_weights) == 2
    assert "out/a.png: already exists (pass --overwrite" in error_line(capsys, 'derain')
    assert derain(photos, tmp_path / 'out', '--weights', tiny_weights, '--overwrite') == 0


def test_side_by_side_files_follow_the_same_rules(tmp_path, capsys, tiny_weights):
    """Side-by-side files overwrote existing files, and collided with results."""
    photos = tmp_path / 'photos'
    photos.mkdir()
    cv2.imwrite(str(photos / 'p0.png'), photo(0, (20, 24)))
    cv2.imwrite(str(photos / 'r_side_by_side.png'), photo(1, (20, 24)))
    kept = (photos / 'r_side_by_side.png').read_bytes()
    assert derain(photos / 'p0.png', photos / 'r.png', '--weights', tiny_weights, '--side-by-side') == 2
    assert 'photos/r_side_by_side.png: already exists (pass --overwrite' in error_line(capsys, 'derain')
    assert (photos / 'r_side_by_side.png').read_bytes() == kept and not (photos / 'r.png').exists()
    (tmp_path / 'out').mkdir()
    (tmp_path / 'out' / 'p0_side_by_side.png').write_bytes(b'mine')
    assert derain(photos / 'p0.png', tmp_path / 'out', '--weights', tiny_weights, '--side-by-side') == 2
    assert 'out/p0_side_by_side.png: already exists' in error_line(capsys, 'derain')
    assert (tmp_path / 'out' / 'p0_side_by_side.png').read_bytes() == b'mine'
    cv2.imwrite(str(photos / 'p0_side_by_side.png'), photo(2, (20, 24)))
    (photos / 'r_side_by_side.png').unlink()
    assert derain(photos, tmp_path / 'out2', '--weights', tiny_weights, '--side-by-side') == 2
    assert 'would both be written to ' in error_line(capsys, 'derain')
    assert not (tmp_path / 'out2').exists()


def test_16_bit_into_an_8_bit_format_is_refused_unless_scaled(tmp_path, capsys, tiny_weights):
    """A 16-bit PNG derained to out.jpg came out saturated."""
    deep = (photo(0, (20, 24)).astype(np.uint16) * 257)
    cv2.imwrite(str(tmp_path / 'deep.png'), deep)
    assert derain(tmp_path / 'deep.png', tmp_path / 'out.jpg', '--weights', tiny_weights) == 2
    assert 'out.jpg: .jpg holds 8 bits, and ' in error_line(capsys, 'derain')
    assert not (tmp_path / 'out.jpg').exists()
    assert derain(tmp_path / 'deep.png', tmp_path / 'out.png', '--weights', tiny_weights) == 0
    assert derain(tmp_path / 'deep.png', tmp_path / 'out.bmp', '--weights', tiny_weights, '--to-8-bit') == 0
    reference = cv2.imread(str(tmp_path / 'out.png'), cv2.IMREAD_UNCHANGED)
    scaled = cv2.imread(str(tmp_path / 'out.bmp'), cv2.IMREAD_UNCHANGED)
    assert reference.dtype == np.uint16 and scaled.dtype == np.uint8
    assert np.abs(reference / 257 - scaled).max() <= 0.5 + 1e-9


def test_an_output_name_with_an_unknown_extension_is_refused(tmp_path, capsys, tiny_weights):
    cv2.imwrite(str(tmp_path / 'a.png'), photo(0, (20, 24)))
    assert derain(tmp_path / 'a.png', tmp_path / 'out.gif', '--weights', tiny_weights) == 2
    assert 'out.gif: derain writes .png, .jpg' in error_line(capsys, 'derain')
    assert not (tmp_path / 'out.gif').exists()


def bomb_png(path, side=100000):
    """A PNG whose header claims ``side x side`` pixels, with almost no data (a decompression bomb)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))

    header = struct.pack('>IIBBBBB', side, side, 8, 2, 0, 0, 0)
    path.write_bytes(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', header) + chunk(b'IDAT', zlib.compress(b'\0' * 10)) +
                     chunk(b'IEND', b''))
    return path


def test_a_decompression_bomb_is_refused_from_its_header_everywhere(tmp_path, capsys, tiny_weights):
    bomb_png(tmp_path / 'bomb.png')
    assert derain(tmp_path / 'bomb.png', tmp_path / 'out.png', '--weights', tiny_weights) == 2
    assert 'bomb.png: 100000x100000 is 10,000,000,000 pixels, over the limit of 178,956,970' in \
        error_line(capsys, 'derain')
    make_input_target(tmp_path / 'data')
    bomb_png(tmp_path / 'data' / 'input' / 'a.png')
    assert main(['lmdb', str(tmp_path / 'data'), str(tmp_path / 'lmdb'), '--workers', '1']) == 2
    assert 'a.png: 100000x100000 is 10,000,000,000 pixels, over the limit' in error_line(capsys, 'lmdb')
    with pytest.raises(ImageReadError, match='over the limit of 178,956,970'):
        decode_raw((tmp_path / 'bomb.png').read_bytes(), 'bomb.png')


def test_the_pixel_limit_can_be_raised_or_lowered(tmp_path, capsys, monkeypatch, tiny_weights):
    cv2.imwrite(str(tmp_path / 'a.png'), photo(0, (20, 24)))
    monkeypatch.setenv('MH2F_MAX_IMAGE_PIXELS', '400')
    assert derain(tmp_path / 'a.png', tmp_path / 'out.png', '--weights', tiny_weights) == 2
    assert 'a.png: 24x20 is 480 pixels, over the limit of 400' in error_line(capsys, 'derain')
    monkeypatch.setenv('MH2F_MAX_IMAGE_PIXELS', '0')
    assert derain(tmp_path / 'a.png', tmp_path / 'out.png', '--weights', tiny_weights) == 0
    monkeypatch.setenv('MH2F_MAX_IMAGE_PIXELS', 'lots')
    assert derain(tmp_path / 'a.png', tmp_path / 'out2.png', '--weights', tiny_weights) == 2
    assert "MH2F_MAX_IMAGE_PIXELS='lots': must be a whole number of pixels" in error_line(capsys, 'derain')


def test_derain_collision_names_both_files(tmp_path, capsys, tiny_weights):
    photos = tmp_path / 'photos'
    photos.mkdir()
    cv2.imwrite(str(photos / 'a.png'), photo(0, (20, 24)))
    cv2.imwrite(str(photos / 'a.jpg'), photo(1, (20, 24)))
    assert derain(photos, tmp_path / 'out', '--weights', tiny_weights) == 2
    line = error_line(capsys, 'derain')
    assert 'a.jpg and ' in line and 'a.png would both be written to ' in line


def test_a_failed_write_leaves_nothing_and_says_why(tmp_path, capsys, tiny_weights, monkeypatch):
    cv2.imwrite(str(tmp_path / 'a.png'), photo(0, (20, 24)))
    (tmp_path / 'file').write_text('')
    assert derain(tmp_path / 'a.png', tmp_path / 'file' / 'out', '--weights', tiny_weights) == 2
    assert 'Not a directory' in error_line(capsys, 'derain')

    def disk_full(*args):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(image_io.os, 'replace', disk_full)
    assert derain(tmp_path / 'a.png', tmp_path / 'out', '--weights', tiny_weights) == 2
    assert f"{tmp_path / 'out' / 'a.png'}: cannot write: No space left on device" in error_line(capsys, 'derain')
    assert list((tmp_path / 'out').iterdir()) == []


@pytest.mark.parametrize(
    'make',
    [
        lambda: (np.arange(20 * 24 * 3, dtype=np.uint16).reshape(20, 24, 3) * 40),  # 16-bit colour
        lambda: photo(2, (20, 24))[..., 0],  # grayscale
        lambda: np.concatenate([photo(2, (20, 24)),
                                np.arange(20 * 24, dtype=np.uint8).reshape(20, 24, 1)], 2),  # alpha
    ])
def test_derain_keeps_bit_depth_channels_and_alpha(tmp_path, tiny_weights, make):
    source = make()
    cv2.imwrite(str(tmp_path / 'in.png'), source)
    assert derain(tmp_path / 'in.png', tmp_path / 'out.png', '--weights', tiny_weights) == 0
    result = cv2.imread(str(tmp_path / 'out.png'), cv2.IMREAD_UNCHANGED)
    assert result.dtype == source.dtype and result.shape == source.shape
    if source.ndim == 3 and source.shape[2] == 4:
        assert np.array_equal(result[..., 3], source[..., 3]), 'alpha carried over unchanged'


def test_exif_orientation_is_honoured(tmp_path, tiny_weights):
    stored = photo(0, (20, 36))  # landscape pixels, shown portrait by orientation 6 (rotate 90 clockwise)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored[..., ::-1]).save(tmp_path / 'p.jpg', exif=exif, quality=95)
    assert decode_raw((tmp_path / 'p.jpg').read_bytes(), 'p.jpg').shape == (36, 20, 3)
    assert derain(tmp_path / 'p.jpg', tmp_path / 'out.png', '--weights', tiny_weights) == 0
    assert cv2.imread(str(tmp_path / 'out.png')).shape == (36, 20, 3)


# ---------------------------------------------------------------- images with trailing bytes


def test_trailing_bytes_after_a_complete_image_are_accepted_truncation_is_not(tmp_path):
    img = photo(3, (16, 20))
    jpeg = cv2.imencode('.jpg', img)[1].tobytes()
    png = cv2.imencode('.png', img)[1].tobytes()
    motion_photo = jpeg + b'\x00\x00\x00\x18ftypmp42' + bytes(range(256)) * 4  # a video appended
    assert decode_raw(motion_photo, 'm.jpg').shape == (16, 20, 3)
    assert decode_raw(png + b'trailing bytes', 'p.png').shape == (16, 20, 3)
    with Image.open(io.BytesIO(jpeg)) as check:
        check.load()
    exif = Image.Exif()
    exif[0x0112] = 1
    buffer = io.BytesIO()
    Image.fromarray(img).save(buffer, 'JPEG', exif=exif)
    with_thumbnail_markers = buffer.getvalue()
    for data, name in ((jpeg[:len(jpeg) // 2], 't.jpg'), (with_thumbnail_markers[:-300], 'e.jpg'), (png[:len(png) - 20],
                                                                                                    't.png')):
        with pytest.raises(ImageReadError, match='truncated'):
            decode_raw(data, name)


# ---------------------------------------------------------------- compatibility module


def test_compat_fails_loudly_when_basicsr_is_not_what_it_expects():

    def load_resume_state(opt):
        return None

    compat.expect_code(compat._init_dist_pytorch_cpu, 'gloo', 'a check that passes')
    with pytest.raises(compat.CompatError, match="is not the BasicSR 1.4.2 code that mh2f_plugin's fix for resuming"):
        compat.expect_code(load_resume_state, 'torch.cuda.current_device()', 'resuming on CPU')


def test_bugs_keep_their_traceback(monkeypatch):
    from mh2f_plugin.cli.commands import list_registered

    def broken(args):
        raise KeyError('a bug of ours')

    monkeypatch.setattr(list_registered, 'run', broken)
    with pytest.raises(KeyError, match='a bug of ours'):
        main(['list'])


def test_debug_shows_the_traceback_of_user_errors(monkeypatch, tmp_path):
    monkeypatch.setenv('MH2F_DEBUG', '1')
    from mh2f_plugin.errors import OptionsError
    with pytest.raises(OptionsError, match='options file not found'):
        main(['test', '-opt', str(tmp_path / 'absent.yml')])
