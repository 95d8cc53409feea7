"""The ``basicsr`` command: BasicSR's training and test pipelines on CPU, resume, distributed, errors."""
import os
import pytest
import re
import torch

import mh2f_plugin
from mh2f_plugin.cli.main import main
from conftest import REPO, TORCHRUN, check_ok, run_basicsr, subprocess_env, write_yaml


def tiny_network():
    """A two-layer SRVGGNetCompact at scale 1: the network of the CLI tests."""
    return {'type': 'SRVGGNetCompact', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_conv': 2, 'upscale': 1}


def paired_folders(name, folder):
    """A ``PairedImageDataset`` over ``folder/gt`` and ``folder/lq``."""
    return {
        'name': name,
        'type': 'PairedImageDataset',
        'dataroot_gt': str(folder / 'gt'),
        'dataroot_lq': str(folder / 'lq'),
        'io_backend': {
            'type': 'disk'
        }
    }


def train_options(name, data, total_iter=20, model_type='SRModel'):
    """A tiny SRVGGNetCompact run on the paired test data, validating and saving at the end."""
    return {
        'name': name,
        'model_type': model_type,
        'scale': 1,
        'num_gpu': 0,
        'manual_seed': 0,
        'datasets': {
            'train':
            dict(
                paired_folders('tiny', data['train']),
                gt_size=32,
                use_hflip=True,
                use_rot=False,
                num_worker_per_gpu=0,
                batch_size_per_gpu=2),
            'val':
            paired_folders('tiny_val', data['val']),
        },
        'network_g': tiny_network(),
        'path': {
            'pretrain_network_g': None,
            'strict_load_g': True,
            'resume_state': None
        },
        'train': {
            'optim_g': {
                'type': 'Adam',
                'lr': 1e-3,
                'betas': [0.9, 0.99]
            },
            'scheduler': {
                'type': 'MultiStepLR',
                'milestones': [10],
                'gamma': 0.5
            },
            'total_iter': total_iter,
            'warmup_iter': -1,
            'pixel_opt': {
                'type': 'L1Loss',
                'loss_weight': 1.0,
                'reduction': 'mean'
            },
        },
        'val': {
            'val_freq': 20,
            'save_img': False,
            'metrics': {
                'psnr': {
                    'type': 'calculate_psnr',
                    'crop_border': 0,
                    'test_y_channel': True
                },
                'ssim': {
                    'type': 'calculate_ssim',
                    'crop_border': 0,
                    'test_y_channel': True
                },
            }
        },
        'logger': {
            'print_freq': 10,
            'save_checkpoint_freq': 20,
            'use_tb_logger': True
        },
        'dist_params': {
            'backend': 'nccl',
            'port': 29500
        },
    }


def eval_options(name, data, weights):
    return {
        'name': name,
        'model_type': 'SRModel',
        'scale': 1,
        'num_gpu': 0,
        'manual_seed': 0,
        'datasets': {
            'test_1': paired_folders('tiny_test', data['val'])
        },
        'network_g': tiny_network(),
        'path': {
            'pretrain_network_g': str(weights),
            'strict_load_g': True,
            'param_key_g': 'params'
        },
        'val': {
            'save_img': True,
            'metrics': {
                'psnr': {
                    'type': 'calculate_psnr',
                    'crop_border': 0
                }
            }
        },
    }


def read_logs(folder, prefix):
    return '\n'.join(path.read_text() for path in sorted(folder.glob(f'{prefix}_*.log')))


def test_train_resume_and_test_on_cpu(tmp_path, paired_data):
    options = write_yaml(tmp_path / 'train.yml', train_options('tiny_run', paired_data))
    check_ok(run_basicsr(['train', '-opt', options], cwd=tmp_path))

    run = tmp_path / 'experiments' / 'tiny_run'
    assert (run / 'models' / 'net_g_20.pth').is_file()
    assert (run / 'training_states' / '20.state').is_file()
    assert (tmp_path / 'tb_logger' / 'tiny_run').is_dir()
    log = read_logs(run, 'train')
    assert re.search(r'Validation tiny_val\s+# psnr: [\d.]+.*\s+# ssim: 0\.\d+', log, re.S), log[-2000:]

    # --auto_resume continues from iteration 20 on CPU (BasicSR maps the state to CUDA otherwise).
    check_ok(
        run_basicsr(['train', '-opt', options, '--auto_resume', '--force_yml', 'train:total_iter=40'], cwd=tmp_path))
    log = read_logs(run, 'train')
    assert 'Resuming training from epoch' in log and 'iter: 20.' in log
    assert re.search(r'\[epoch:\s*\d+, iter:\s+30, lr:\(5\.000e-04,\)\]', log), 'scheduler state not resumed'
    assert (run / 'models' / 'net_g_40.pth').is_file()

    # basicsr test works without val.suffix and writes the images.
    weights = run / 'models' / 'net_g_40.pth'
    test_yml = write_yaml(tmp_path / 'test.yml', eval_options('tiny_test_run', paired_data, weights))
    check_ok(run_basicsr(['test', '-opt', test_yml], cwd=tmp_path))
    results = tmp_path / 'results' / 'tiny_test_run'
    written = sorted(p.name for p in (results / 'visualization' / 'tiny_test').glob('*.png'))
    assert written == ['000_tiny_test_run.png', '001_tiny_test_run.png']
    assert re.search(r'Validation tiny_test\s+# psnr: [\d.]+', read_logs(results, 'test'))


def test_torchrun_two_cpu_processes_keep_identical_weights(tmp_path, paired_data):
    options = train_options('ddp_run', paired_data, total_iter=6, model_type='RankDumpModel')
    options['logger'].update(print_freq=2, save_checkpoint_freq=6, use_tb_logger=False)
    options['val']['val_freq'] = 3  # validation on rank 0 while rank 1 trains on: must not hang
    options['network_g'] = {'type': 'MH2FNet', 'num_feat': 8, 'num_blocks': 2}
    options['train']['pixel_opt'] = {'type': 'L1SSIMLoss'}
    options['datasets']['train'].update(
        type='PairedDerainDataset',
        dataroot=str(paired_data['train']),
        layout='regex',
        lq_folder='lq',
        gt_folder='gt',
        pattern='(.+)')
    path = write_yaml(tmp_path / 'ddp.yml', options)
    result = run_basicsr(['train', '-opt', path, '--launcher', 'pytorch'],
                         cwd=tmp_path,
                         env={'BASICSR_PLUGINS': 'rank_dump_plugin'},
                         launcher=[TORCHRUN, '--standalone', '--nproc_per_node=2'])
    check_ok(result)
    run = tmp_path / 'experiments' / 'ddp_run'
    log = read_logs(run, 'train')
    assert 'World size (gpu number): 2' in log
    assert len(re.findall(r'Validation tiny_val\s+# psnr', log)) >= 2
    assert re.search(r'iter:\s+6, ', log)
    rank0, rank1 = (torch.load(run / f'rank{r}.pth') for r in (0, 1))
    assert rank0.keys() == rank1.keys()
    # Each rank seeds its own initialisation (seed + rank): equality proves DDP synchronised them.
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key


def test_subprocesses_run_the_checkout_under_test(tmp_path, monkeypatch):
    """``run_basicsr`` puts this checkout first on PYTHONPATH, keeping what was there after it."""
    decoy = tmp_path / 'decoy' / 'mh2f_plugin'
    decoy.mkdir(parents=True)
    (decoy / '__init__.py').write_text('raise ImportError("the decoy was imported")\n')
    monkeypatch.setenv('PYTHONPATH', str(decoy.parent))
    result = check_ok(run_basicsr(['--version'], cwd=tmp_path))
    assert f"mh2f_plugin {mh2f_plugin.__version__} ({REPO / 'mh2f_plugin'})" in result.stdout
    assert str(decoy.parent) in subprocess_env()['PYTHONPATH'].split(os.pathsep)[2:]


def test_list_names_each_registration_with_its_package(tmp_path):
    result = check_ok(run_basicsr(['list'], cwd=tmp_path, env={'BASICSR_PLUGINS': 'rank_dump_plugin'}))
    lines = result.stdout.splitlines()
    for kind in ('arch', 'loss', 'dataset', 'model', 'metric'):
        assert any(line.startswith(f'{kind} (') for line in lines)
    assert re.search(r'^\s+RankDumpModel\s+rank_dump_plugin$', result.stdout, re.M)
    assert re.search(r'^\s+SwinIR\s+basicsr$', result.stdout, re.M)


@pytest.mark.parametrize('breakage, message', [
    (lambda o: o['train']['optim_g'].pop('type'), "missing key 'train:optim_g:type'"),
    (lambda o: o.pop('datasets'), "missing key 'datasets'"),
    (lambda o: o['datasets']['train'].pop('batch_size_per_gpu'), "missing key 'datasets:train:batch_size_per_gpu'"),
    (lambda o: o['network_g'].update(type='NoSuchNet'), "unknown arch 'NoSuchNet' at 'network_g:type'"),
    (lambda o: o['datasets']['val'].update(type='NoSuchSet'), "unknown dataset 'NoSuchSet' at 'datasets:val:type'"),
    (lambda o: o['train']['pixel_opt'].update(type='NoSuchLoss'), "unknown loss 'NoSuchLoss'"),
    (lambda o: o['val']['metrics']['psnr'].update(type='psnr'), "unknown metric 'psnr'"),
])
def test_broken_options_end_in_one_clear_error(tmp_path, monkeypatch, capsys, paired_data, breakage, message):
    options = train_options('broken', paired_data)
    breakage(options)
    path = write_yaml(tmp_path / 'broken.yml', options)
    monkeypatch.chdir(tmp_path)
    assert main(['train', '-opt', str(path)]) == 2
    stderr = capsys.readouterr().err
    assert message in stderr and str(path) in stderr
    assert not (tmp_path / 'experiments').exists()


def test_broken_options_through_the_installed_command(tmp_path, paired_data):
    options = train_options('broken', paired_data)
    options['network_g']['type'] = 'NoSuchNet'
    result = run_basicsr(['train', '-opt', write_yaml(tmp_path / 'broken.yml', options)], cwd=tmp_path)
    assert result.returncode == 2
    assert "unknown arch 'NoSuchNet'" in result.stderr and 'Traceback' not in result.stderr


def test_missing_options_file_and_bad_yaml(tmp_path, capsys):
    assert main(['test', '-opt', str(tmp_path / 'absent.yml')]) == 2
    assert 'absent.yml: options file not found' in capsys.readouterr().err
    (tmp_path / 'bad.yml').write_text('name: [unclosed\n')
    assert main(['test', '-opt', str(tmp_path / 'bad.yml')]) == 2
    assert 'bad.yml: not valid YAML' in capsys.readouterr().err


def test_unimportable_plugin_is_named(monkeypatch, capsys):
    monkeypatch.setenv('BASICSR_PLUGINS', 'no_such_plugin_module')
    assert main(['list']) == 2
    assert "plugin 'no_such_plugin_module' could not be imported" in capsys.readouterr().err


def test_unknown_command_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(['fly'])
    assert exit_info.value.code == 2 and "invalid choice: 'fly'" in capsys.readouterr().err


def test_test_options_need_no_training_keys(tmp_path, paired_data):
    from mh2f_plugin.cli.options import OptionsError, check_options
    torch.save({'params': {}}, tmp_path / 'w.pth')
    path = write_yaml(tmp_path / 'test.yml', eval_options('t', paired_data, tmp_path / 'w.pth'))
    assert check_options(str(path), is_train=False)[0]['network_g']['type'] == 'SRVGGNetCompact'
    with pytest.raises(OptionsError, match="missing key 'datasets:train'"):
        check_options(str(path), is_train=True)
