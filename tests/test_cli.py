"""The ``basicsr`` command: BasicSR's training and test pipelines on CPU, resume, distributed, errors."""
import os
import pytest
import re
import subprocess
import torch

import mh2f_plugin
from mh2f_plugin.cli.main import main
from helpers import REPO, TORCHRUN, check_ok, eval_options, run_basicsr, subprocess_env, train_options, write_yaml


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


def test_list_filters_by_kind_and_name(capsys):
    """basicsr list archs ended in 'unrecognized arguments'."""
    assert main(['list', 'archs']) == 0
    out = capsys.readouterr().out
    assert out.startswith('arch (') and re.search(r'^\s+PReNet\s+mh2f_plugin$', out, re.M)
    assert not any(line.startswith(f'{kind} (') for line in out.splitlines() for kind in ('loss', 'dataset'))
    assert main(['list', 'loss']) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith('loss (')
    assert main(['list', 'archs', 'PRN*']) == 0
    assert re.findall(r'^\s+(\S+)', capsys.readouterr().out, re.M) == ['PRN', 'PRN_r']
    assert main(['list', 'ssim']) == 0  # a word matches anywhere in a name, in every registry
    out = capsys.readouterr().out
    assert re.search(r'^\s+L1SSIMLoss\s', out, re.M) and re.search(r'^\s+calculate_ssim\s', out, re.M)
    assert 'PReNet' not in out
    assert main(['list', 'arcs']) == 2
    assert "list: no name matches 'arcs' in any registry (the kinds are archs, losses" in capsys.readouterr().err
    assert main(['list', 'archs', 'a', 'b']) == 2
    assert 'list takes a kind' in capsys.readouterr().err


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


def test_a_plugin_with_a_syntax_error_is_named(tmp_path, monkeypatch, capsys):
    (tmp_path / 'broken_plugin.py').write_text('def oops(:\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv('BASICSR_PLUGINS', 'broken_plugin')
    assert main(['list']) == 2
    err = capsys.readouterr().err
    assert "basicsr list: error: plugin 'broken_plugin' could not be imported: " in err
    assert 'broken_plugin.py:1: ' in err and 'Traceback' not in err


@pytest.mark.parametrize('launcher, starter', [('pytorch', 'torchrun'), ('slurm', 'srun')])
def test_a_distributed_launcher_outside_its_starter_is_one_line(tmp_path, monkeypatch, capsys, paired_data, launcher,
                                                                starter):
    for name in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT', 'SLURM_PROCID'):
        monkeypatch.delenv(name, raising=False)
    path = write_yaml(tmp_path / 'd.yml', train_options('d', paired_data))
    assert main(['train', '-opt', str(path), '--launcher', launcher]) == 2
    err = capsys.readouterr().err
    assert f'basicsr train: error: --launcher {launcher}: ' in err and f'start the command with {starter}' in err


def test_version_names_the_basicsr_commit_of_a_source_checkout(tmp_path):
    import types

    from mh2f_plugin.cli.main import basicsr_version
    checkout = tmp_path / 'BasicSR'
    (checkout / 'basicsr').mkdir(parents=True)
    git = ['git', '-C', str(checkout), '-c', 'user.name=t', '-c', 'user.email=t@t']
    subprocess.run(['git', 'init', '-q', str(checkout)], check=True)
    subprocess.run(git + ['commit', '-q', '--allow-empty', '-m', 'x'], check=True)
    commit = subprocess.run(git + ['rev-parse', '--short', 'HEAD'], capture_output=True, text=True).stdout.strip()
    from_checkout = types.SimpleNamespace(
        __file__=str(checkout / 'basicsr' / '__init__.py'), __version__='1.4.2', __gitsha__='unknown')
    assert basicsr_version(from_checkout) == f'1.4.2 (git {commit})'
    release = types.SimpleNamespace(
        __file__=str(tmp_path / 'site' / 'basicsr' / '__init__.py'), __version__='1.4.2', __gitsha__='unknown')
    assert basicsr_version(release) == '1.4.2'


def test_unknown_command_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(['fly'])
    assert exit_info.value.code == 2 and "invalid choice: 'fly'" in capsys.readouterr().err


def test_test_options_need_no_training_keys(tmp_path, paired_data):
    from mh2f_plugin.utils.options import OptionsError, check_options
    torch.save({'params': {}}, tmp_path / 'w.pth')
    path = write_yaml(tmp_path / 'test.yml', eval_options('t', paired_data, tmp_path / 'w.pth'))
    assert check_options(str(path), is_train=False)[0]['network_g']['type'] == 'SRVGGNetCompact'
    with pytest.raises(OptionsError, match="missing key 'datasets:train'"):
        check_options(str(path), is_train=True)


def test_help_lists_every_command_and_each_command_answers_help(capsys):
    from mh2f_plugin.cli.main import COMMANDS
    assert {module.NAME
            for module in COMMANDS
            } == {'train', 'test', 'derain', 'lmdb', 'compare', 'export', 'web', 'convert-weights', 'zoo', 'list'}
    with pytest.raises(SystemExit) as exit_info:
        main(['--help'])
    listing = capsys.readouterr().out
    assert exit_info.value.code == 0
    for module in COMMANDS:
        summary = module.__doc__.split('\n', 1)[0]
        assert re.search(rf'^ +{re.escape(module.NAME)}\s', listing, flags=re.M), module.NAME
        assert summary.split()[0] in listing
        with pytest.raises(SystemExit) as exit_info:
            main([module.NAME, '--help'])
        assert exit_info.value.code == 0
        assert capsys.readouterr().out.startswith(f'usage: basicsr {module.NAME} ')


@pytest.mark.parametrize('command', [['train'], ['test'], ['derain', 'in', 'out', '--weights', 'w.pth']])
def test_options_file_is_spelled_as_basicsr_does_with_the_old_spelling_kept(capsys, command):
    from mh2f_plugin.cli.main import build_parser
    assert build_parser().parse_args(command + ['-opt', 'a.yml']).opt == 'a.yml'
    assert 'deprecated' not in capsys.readouterr().err
    assert build_parser().parse_args(command + ['--opt', 'a.yml']).opt == 'a.yml'
    assert f'basicsr {command[0]}: note: --opt is deprecated and will be removed; write -opt' in capsys.readouterr().err


def test_compare_takes_several_options_files_in_either_spelling(capsys):
    from mh2f_plugin.cli.main import build_parser
    args = build_parser().parse_args(['compare', '--data', 'd', '-opt', 'a.yml', '--opt', 'b.yml', '-opt', 'c.yml'])
    assert args.opt == ['a.yml', 'b.yml', 'c.yml']
    assert capsys.readouterr().err.count('note: --opt is deprecated') == 1


def test_every_network_flag_takes_name_and_yaml_options(tmp_path, capsys):
    from mh2f_plugin.cli.main import build_parser
    parser = build_parser()
    for command in (['compare', '--data', 'd'], ['derain', 'in', 'out', '--weights',
                                                 'w'], ['convert-weights', 'a', 'b']):
        args = parser.parse_args(command + ['--arch', 'PRN:{num_feat: 8}'])
        assert args.arch in ('PRN:{num_feat: 8}', ['PRN:{num_feat: 8}'])
    assert main(['convert-weights', str(tmp_path / 'a'), str(tmp_path / 'b.pth'), '--arch', 'PRN:{num_feats: 8}']) == 2
    assert "--arch: PRN has no argument 'num_feats'; did you mean 'num_feat'?" in capsys.readouterr().err
