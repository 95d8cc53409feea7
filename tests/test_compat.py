"""Each BasicSR 1.4.2 compatibility fix, checked where it acts (end-to-end checks are in test_cli)."""
import io
import numpy as np
import os
import pytest
import subprocess
import sys
import torch
from pathlib import Path

import mh2f_plugin  # noqa: F401  (applies the fixes)
from mh2f_plugin import compat
from helpers import subprocess_env


def test_basicsr_imports_with_current_torchvision():
    import basicsr.data.degradations as degradations
    from torchvision.transforms.functional import rgb_to_grayscale
    assert degradations.rgb_to_grayscale is rgb_to_grayscale


def save_as_if_on_cuda(obj, path):
    """``torch.save`` whose tensors are recorded as CUDA tensors, as a GPU run writes them."""
    buffer = io.BytesIO()
    torch.save(obj, buffer, _use_new_zipfile_serialization=False)
    data = buffer.getvalue()
    assert data.count(b'X\x03\x00\x00\x00cpu') >= 1  # the pickled location string of each storage
    Path(path).write_bytes(data.replace(b'X\x03\x00\x00\x00cpu', b'X\x06\x00\x00\x00cuda:0'))


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the machine without CUDA')
def test_resume_state_from_a_gpu_run_loads_onto_the_cpu_and_bad_states_are_skipped(tmp_path):
    run = tmp_path / 'experiments' / 'run'
    states, models = run / 'training_states', run / 'models'
    states.mkdir(parents=True)
    models.mkdir()
    weight = torch.nn.Parameter(torch.ones(2))
    optimizer = torch.optim.Adam([weight])
    weight.sum().backward()
    optimizer.step()
    for it in (5, 10, 15):
        save_as_if_on_cuda({
            'epoch': 1,
            'iter': it,
            'optimizers': [optimizer.state_dict()],
            'schedulers': []
        }, states / f'{it}.state')
        save_as_if_on_cuda({'params': {'w': weight.detach()}}, models / f'net_g_{it}.pth')
    with pytest.raises(RuntimeError, match='CUDA'):
        torch.load(states / '10.state')  # what BasicSR's own resume does here
    (states / '15.state').write_bytes((states / '15.state').read_bytes()[:40])  # killed mid-write
    (states / 'notes.state').write_text('not a state')
    opt = {
        'name': 'run',
        'num_gpu': 0,
        'auto_resume': True,
        'root_path': str(tmp_path),
        'is_train': True,
        'network_g': {},
        'path': {
            'models': str(models)
        }
    }
    state = compat.load_resume_state(opt)
    assert state['iter'] == 10
    assert opt['path']['resume_state'].endswith('10.state')
    assert opt['path']['pretrain_network_g'].endswith('net_g_10.pth')
    assert state['optimizers'][0]['state'][0]['exp_avg'].device.type == 'cpu'


def test_no_resume_without_a_state(tmp_path):
    opt = {'name': 'run', 'num_gpu': 0, 'auto_resume': True, 'root_path': str(tmp_path), 'path': {}}
    assert compat.load_resume_state(opt) is None


def test_float_jpeg_quality_is_accepted():
    from basicsr.data.degradations import random_add_jpg_compression
    img = np.random.default_rng(0).random((16, 16, 3)).astype(np.float32)
    out = random_add_jpg_compression(img, quality_range=(30.2, 60.7))
    assert out.shape == img.shape and out.dtype == np.float32 and not np.array_equal(out, img)


def test_local_rank_spelling_of_torch_launchers():
    """torch's launchers pass ``--local-rank``; BasicSR's parser knows only ``--local_rank``."""
    from mh2f_plugin.cli.main import build_parser
    from mh2f_plugin.cli.pipeline import basicsr_argv
    args = build_parser().parse_args(['train', '-opt', 'a.yml', '--local-rank=1', '--launcher', 'pytorch'])
    assert basicsr_argv(args) == ['-opt', 'a.yml', '--launcher', 'pytorch', '--local_rank', '1']
    assert build_parser().parse_args(['test', '-opt', 'a.yml', '--local-rank', '0']).local_rank == 0


def test_test_mode_options_get_an_empty_suffix(tmp_path, monkeypatch):
    import basicsr.test
    (tmp_path / 'o.yml').write_text('name: x\nnum_gpu: 0\nmanual_seed: 1\ndatasets: {}\npath: {}\n'
                                    'val: {save_img: true}\n')
    monkeypatch.setattr('sys.argv', ['basicsr test', '-opt', str(tmp_path / 'o.yml')])
    opt, _ = basicsr.test.parse_options(str(tmp_path), is_train=False)
    assert opt['val']['suffix'] is None


def test_force_yml_values_are_yaml_in_basicsr_too(tmp_path, monkeypatch):
    """BasicSR evaluated list values with eval: '[a, b]' was a NameError, '[1, 2' a SyntaxError."""
    import basicsr.test
    (tmp_path / 'o.yml').write_text('name: x\nnum_gpu: 0\nmanual_seed: 1\ndatasets: {}\npath: {}\n'
                                    'val: {save_img: true}\n')
    monkeypatch.setattr('sys.argv', [
        'basicsr test', '-opt',
        str(tmp_path / 'o.yml'), '--force_yml', 'val:save_img=no', 'val:names=[a, b]', 'val:rate=!!float 1e-3'
    ])
    opt, _ = basicsr.test.parse_options(str(tmp_path), is_train=False)
    assert opt['val']['save_img'] is False and opt['val']['names'] == ['a', 'b'] and opt['val']['rate'] == 1e-3
    with pytest.raises(ValueError, match='not a YAML value'):
        compat.force_yml_value('[1, 2')
    assert compat.force_yml_value('none') is None and compat.force_yml_value('~') is None


def test_cpu_model_is_wrapped_without_device_ids(monkeypatch):
    from basicsr.models.base_model import BaseModel
    wrapped = {}

    class FakeDDP:

        def __init__(self, module, **kwargs):
            wrapped.update(kwargs, module=module)

    monkeypatch.setattr(compat, 'DistributedDataParallel', FakeDDP)
    model = BaseModel({'num_gpu': 0, 'is_train': True, 'dist': True})
    net = torch.nn.Linear(2, 2)
    assert isinstance(model.model_to_device(net), FakeDDP)
    assert wrapped['module'] is net and 'device_ids' not in wrapped


def test_slurm_launcher_without_gpus_uses_gloo(tmp_path, monkeypatch):
    import socket
    import torch.distributed as dist
    from basicsr.utils.dist_util import init_dist
    scontrol = tmp_path / 'scontrol'
    scontrol.write_text('#!/bin/sh\necho 127.0.0.1\n')
    scontrol.chmod(0o755)
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    monkeypatch.setenv('PATH', f"{tmp_path}:{os.environ['PATH']}")
    slurm = {'SLURM_PROCID': '0', 'SLURM_NTASKS': '1', 'SLURM_NODELIST': 'node1', 'SLURM_LOCALID': '0'}
    for key, value in slurm.items():
        monkeypatch.setenv(key, value)
    for key in ('MASTER_ADDR', 'MASTER_PORT', 'WORLD_SIZE', 'RANK', 'LOCAL_RANK'):
        monkeypatch.delenv(key, raising=False)
    init_dist('slurm', port=port)
    try:
        assert dist.get_backend() == 'gloo' and dist.get_world_size() == 1
        assert os.environ['MASTER_ADDR'] == '127.0.0.1' and os.environ['MASTER_PORT'] == str(port)
    finally:
        dist.destroy_process_group()


def test_a_basicsr_the_fixes_do_not_fit_ends_the_command_in_one_line(tmp_path):
    """It printed a traceback at import, even for basicsr --help."""
    script = """
import sys, types
import torchvision.transforms.functional as functional
shim = types.ModuleType('torchvision.transforms.functional_tensor')  # as compat does, before basicsr
shim.rgb_to_grayscale = functional.rgb_to_grayscale
sys.modules[shim.__name__] = shim
import basicsr.train
basicsr.train.load_resume_state = lambda opt: None  # a BasicSR whose code the fix does not know
sys.argv = ['/usr/bin/basicsr', '--help']
import mh2f_plugin
"""
    (tmp_path / 'run.py').write_text(script)
    result = subprocess.run([sys.executable, str(tmp_path / 'run.py')],
                            capture_output=True,
                            text=True,
                            env=subprocess_env())
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.startswith('basicsr: error: __main__.<lambda> is not the BasicSR 1.4.2 code that ')
    assert result.stderr.count('\n') == 1 and 'Traceback' not in result.stderr
