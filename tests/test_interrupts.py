"""Ctrl-C keeps working after every command run in-process (from Python or a notebook).

The Ctrl-C test of ``basicsr lmdb`` once failed in the full suite, SIGINT being ignored in the pytest
process. No command changes the handler (this test, and a probe of it around each of the suite's
tests); a process started in the background of a non-interactive shell (``bash -c 'pytest &'``)
inherits SIGINT ignored, and that is how that suite had been started.
"""
import signal
import torch

from mh2f_plugin.cli.main import main
from helpers import (eval_options, make_input_target, make_paired_folder, photo, tiny_network, train_options, write,
                     write_yaml)


def test_no_in_process_command_leaves_sigint_changed(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    data = {'train': make_paired_folder(tmp_path / 'train', 2), 'val': make_paired_folder(tmp_path / 'val', 1)}
    make_input_target(tmp_path / 'pairs')
    from basicsr.archs import build_network
    torch.save({'params': build_network(tiny_network()).state_dict(), 'network_g': tiny_network()}, tmp_path / 'w.pth')
    write(tmp_path / 'photo.png', photo(0, (24, 32)))
    training = train_options('sigint', data, total_iter=2)
    commands = [
        ['train', '-opt', str(write_yaml(tmp_path / 'train.yml', training))],
        ['test', '-opt',
         str(write_yaml(tmp_path / 'test.yml', eval_options('sigint_test', data, tmp_path / 'w.pth')))],
        ['derain',
         str(tmp_path / 'photo.png'),
         str(tmp_path / 'out.png'), '--weights',
         str(tmp_path / 'w.pth')],
        ['lmdb', str(tmp_path / 'pairs'),
         str(tmp_path / 'pairs.lmdb'), '--workers', '2'],
        [
            'compare', '--weights', f'W={tmp_path / "w.pth"}', '--data',
            str(tmp_path / 'pairs'), '--out',
            str(tmp_path / 'cmp')
        ],
        ['zoo', 'list'],
        ['list', 'archs'],
    ]
    before = signal.getsignal(signal.SIGINT)
    for command in commands:
        assert main(command) == 0, command
        assert signal.getsignal(signal.SIGINT) is before, f'basicsr {command[0]} changed the SIGINT handler'
    capsys.readouterr()
