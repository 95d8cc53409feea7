"""``basicsr web``: what the page may offer and read, restoring as derain does, cancelling, and
the page itself in a real browser (Debian's Chromium through Playwright)."""
import cv2
import importlib.util
import numpy as np
import pytest
import socket
import subprocess
import sys
import threading
import time
import torch
import web_page
from argparse import Namespace
from basicsr.archs import build_network

from mh2f_plugin.cli.flags import resolve_numerics
from mh2f_plugin.errors import NotARestorerError, OptionsError, user_message
from mh2f_plugin.web import jobs
from mh2f_plugin.weights import zoo
from helpers import BASICSR, REPO, TINY_SR_X4, check_ok, noisy, photo, run_basicsr, subprocess_env, write_yaml

TINY = {'type': 'PRN', 'num_feat': 4, 'num_iters': 2, 'num_res': 1}
SMALL_MH2F = {'type': 'MH2FNet', 'num_feat': 8, 'num_blocks': 2}


def save_checkpoint(path, network_opt, seed=0):
    """A BasicSR checkpoint that names its network, with random weights."""
    torch.manual_seed(seed)
    torch.save({'params': build_network(dict(network_opt)).state_dict(), 'network_g': network_opt}, path)
    return path


def torch_float32_restorer(**tiles):
    """A ``Restorer`` in float32 on PyTorch, as ``derain --amp off --engine torch`` runs."""
    args = Namespace(amp='off', channels_last='auto', winograd='auto', engine='torch')
    device = torch.device('cpu')
    return jobs.Restorer(lambda net, opt: resolve_numerics(args, net, device, opt, verbose=False), device, **tiles)


def test_typed_paths_may_not_leave_the_given_folders(tmp_path):
    allowed, outside = tmp_path / 'allowed', tmp_path / 'outside'
    allowed.mkdir()
    outside.mkdir()
    weights = save_checkpoint(outside / 'w.pth', TINY)
    (allowed / 'link.pth').symlink_to(weights)
    choice = jobs.typed_checkpoint(str(allowed / 'w.pth'), '', [str(allowed)])
    assert choice.weights == str(allowed / 'w.pth') and choice.network_opt is None
    for escaping in (weights, allowed / '..' / 'outside' / 'w.pth', allowed / 'link.pth'):
        with pytest.raises(OptionsError, match='outside the folders this page may read'):
            jobs.typed_checkpoint(str(escaping), '', [str(allowed)])
    with pytest.raises(OptionsError, match='--folder'):
        jobs.typed_checkpoint(str(allowed / 'w.pth'), '', [])
    with pytest.raises(OptionsError, match="unknown arch 'PRNN'"):
        jobs.typed_checkpoint(str(allowed / 'w.pth'), 'PRNN', [str(allowed)])


def test_experiments_offer_their_latest_model_with_their_network(tmp_path):
    models = tmp_path / 'experiments' / 'run1' / 'models'
    models.mkdir(parents=True)
    for iteration in (500, 1000):
        save_checkpoint(models / f'net_g_{iteration}.pth', TINY)
    write_yaml(tmp_path / 'experiments' / 'run1' / 'train.yml', {'network_g': TINY})
    (tmp_path / 'experiments' / 'no_models').mkdir()
    choices = jobs.experiment_choices([str(tmp_path / 'experiments'), str(tmp_path / 'absent')])
    assert list(choices) == ['run1']
    assert choices['run1'].weights.endswith('net_g_1000.pth') and choices['run1'].network_opt['type'] == 'PRN'
    save_checkpoint(models / 'net_g_latest.pth', TINY)
    assert jobs.experiment_choices([str(tmp_path / 'experiments')])['run1'].weights.endswith('net_g_latest.pth')


def test_zoo_choices_offer_what_zoo_get_offers_with_the_training_set(tmp_path):
    offered = dict((name, shown) for shown, name in jobs.zoo_choices(str(tmp_path)))
    for name, item in zoo.catalogue().items():
        assert (name in offered) == (not item.by_hand)
        if name in offered:
            assert item.trained_on.split(';')[0] in offered[name]
    by_hand = next(item for item in zoo.catalogue().values() if item.by_hand)
    path = tmp_path / by_hand.relative_path
    path.parent.mkdir(parents=True)
    path.write_bytes(b'supplied by hand')
    assert by_hand.name in [name for _, name in jobs.zoo_choices(str(tmp_path))]


def test_a_photo_is_restored_as_derain_restores_it(tmp_path):
    """16 bits and gray stay 16 bits and gray; the result equals ``basicsr derain``'s, pixel for pixel."""
    weights = save_checkpoint(tmp_path / 'w.pth', TINY)
    gray16 = cv2.cvtColor(noisy(photo(1, (120, 200)), 1), cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257
    cv2.imwrite(str(tmp_path / 'rainy.png'), gray16)
    restorer = torch_float32_restorer()
    result = restorer.run(
        jobs.ModelChoice('tiny', str(weights)), jobs.read_photo(str(tmp_path / 'rainy.png')), str(tmp_path),
        threading.Event())
    flags = ['--weights', weights, '--amp', 'off', '--engine', 'torch']
    check_ok(run_basicsr(['derain', tmp_path / 'rainy.png', tmp_path / 'cli.png'] + flags, cwd=tmp_path))
    ours, cli = (cv2.imread(path, cv2.IMREAD_UNCHANGED) for path in (result.path, str(tmp_path / 'cli.png')))
    assert ours.dtype == np.uint16 and ours.shape == (120, 200)
    np.testing.assert_array_equal(ours, cli)
    assert result.rgb.shape == (120, 200, 3) and result.rgb.dtype == np.uint8
    assert result.niqe is not None and result.seconds > 0


def test_tiles_report_their_progress(tmp_path):
    weights = save_checkpoint(tmp_path / 'w.pth', TINY)
    cv2.imwrite(str(tmp_path / 'rainy.png'), photo(0, (120, 200)))
    seen = []
    result = torch_float32_restorer(
        tile=64, tile_overlap=16).run(
            jobs.ModelChoice('tiny', str(weights)), jobs.read_photo(str(tmp_path / 'rainy.png')), str(tmp_path),
            threading.Event(), lambda *done: seen.append(done))
    assert result.rgb.shape == (120, 200, 3)
    total = seen[-1][1]
    assert total > 1 and seen == [(done, total) for done in range(1, total + 1)]


def test_a_network_that_changes_the_size_is_one_line_naming_the_sizes(tmp_path):
    weights = save_checkpoint(tmp_path / 'sr.pth', TINY_SR_X4)
    cv2.imwrite(str(tmp_path / 'rainy.png'), photo(0, (24, 32)))
    with pytest.raises(NotARestorerError) as error:
        torch_float32_restorer().run(
            jobs.ModelChoice('sr', str(weights)), jobs.read_photo(str(tmp_path / 'rainy.png')), str(tmp_path),
            threading.Event())
    assert user_message(error.value).startswith(f'{weights}: RRDBNet returned a 128x96 image (3 channels) for a '
                                                '32x24 image (3 channels)')


@pytest.fixture
def slow_net(monkeypatch):
    """Registers ``SlowNet`` (tests/plugins/slow_plugin.py) in this process."""
    monkeypatch.syspath_prepend(str(REPO / 'tests' / 'plugins'))
    import slow_plugin  # noqa: F401


def test_a_cancel_stops_the_network_between_its_layers(tmp_path, slow_net):
    weights = save_checkpoint(tmp_path / 'slow.pth', {'type': 'SlowNet', 'seconds': 30})
    cv2.imwrite(str(tmp_path / 'rainy.png'), photo(0, (40, 40)))
    restorer = torch_float32_restorer()
    choice = jobs.ModelChoice('slow', str(weights))
    cancel = threading.Event()
    timer = threading.Timer(1.0, cancel.set)
    start = time.monotonic()
    timer.start()
    with pytest.raises(jobs.Cancelled):
        restorer.run(choice, jobs.read_photo(str(tmp_path / 'rainy.png')), str(tmp_path), cancel)
    assert time.monotonic() - start < 15, 'the cancelled network ran on'
    assert list(tmp_path.glob('rainy_*.png')) == []
    with pytest.raises(jobs.Cancelled):  # cancelled before it starts: nothing runs
        restorer.run(choice, jobs.read_photo(str(tmp_path / 'rainy.png')), str(tmp_path), cancel)


def test_without_gradio_the_command_names_the_extra(tmp_path):
    code = ("import sys; sys.modules['gradio'] = None; from mh2f_plugin.cli.main import main; "
            "sys.exit(main(['web']))")
    result = subprocess.run([sys.executable, '-c', code],
                            cwd=tmp_path,
                            env=subprocess_env(),
                            capture_output=True,
                            text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "basicsr web: error: basicsr web needs the web extra: pip install 'mh2f_plugin[web]' (Gradio)"
    ]


@pytest.mark.parametrize('flags, message', [
    (['--folder', 'absent'], 'absent: --folder names no folder'),
    (['--tile', '0'], '--tile must be a positive number of pixels, got 0'),
    (['--max-upload-mb', '0'], '--max-upload-mb must be positive, got 0'),
    (['--port', '0'], '--port must be 1 to 65535, got 0'),
])
def test_web_flag_mistakes_are_one_line(tmp_path, flags, message):
    result = run_basicsr(['web'] + flags, cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.strip() == f'basicsr web: error: {message}'


def test_web_help():
    result = subprocess.run([BASICSR, 'web', '--help'], env=subprocess_env(), capture_output=True, text=True)
    assert result.returncode == 0 and '--folder' in result.stdout and '127.0.0.1' in result.stdout


@pytest.mark.skipif(web_page.CHROMIUM is None, reason='no chromium on this machine (apt install chromium)')
@pytest.mark.skipif(
    not all(map(importlib.util.find_spec, ('gradio', 'playwright'))),
    reason="the web and webtest extras are not installed (pip install -e '.[web,webtest]')")
def test_the_page_in_a_real_browser(tmp_path, slow_net):
    """Two models on an uploaded photo, both results downloadable; a corrupt upload is one line and
    the page goes on; a second user is queued behind a slow run; a cancel frees the queue."""
    checkpoints = tmp_path / 'checkpoints'
    checkpoints.mkdir()
    save_checkpoint(checkpoints / 'mh2f.pth', SMALL_MH2F)
    uploaded = save_checkpoint(tmp_path / 'prn.pth', TINY)
    save_checkpoint(checkpoints / 'slow.pth', {'type': 'SlowNet', 'seconds': 6})
    save_checkpoint(checkpoints / 'slower.pth', {'type': 'SlowNet', 'seconds': 300})
    rainy = tmp_path / 'rainy.png'
    cv2.imwrite(str(rainy), noisy(photo(0, (120, 200)), 0))
    corrupt = tmp_path / 'corrupt.png'
    corrupt.write_bytes(rainy.read_bytes()[:200])
    cli = run_basicsr(['derain', corrupt, tmp_path / 'out', '--weights', uploaded], cwd=tmp_path)
    cli_message = cli.stderr.strip().split(f'{corrupt}: ', 1)[1]

    flags = ['--folder', checkpoints, '--amp', 'off', '--engine', 'torch']
    with web_page.web_server(tmp_path, flags, env={'BASICSR_PLUGINS': 'slow_plugin'}) as url, \
            web_page.browser() as chromium:
        page = web_page.open_page(chromium, url)
        web_page.upload_photo(page, rainy)
        web_page.type_checkpoint(page, checkpoints / 'mh2f.pth')
        web_page.upload_checkpoint(page, uploaded)
        page.click('#run')
        assert 'mh2f.pth: NIQE' in web_page.wait_for_text(page, 'info0', 'NIQE')
        assert 'prn.pth: NIQE' in web_page.wait_for_text(page, 'info1', 'NIQE')
        assert web_page.wait_for_text(page, 'status', 'done: 2 of 2 models')
        for index in (0, 1):
            with page.expect_download() as download:
                page.click(f'#download{index}')
            result = cv2.imread(download.value.path())
            assert result is not None and result.shape == (120, 200, 3)

        web_page.upload_photo(page, corrupt)
        page.click('#run')
        shown = web_page.wait_for_text(page, 'status', 'error:').splitlines()
        assert f'error: corrupt.png: {cli_message}' in shown, 'not the one line derain prints'
        web_page.upload_photo(page, rainy)
        page.click('#run')
        assert web_page.wait_for_text(page, 'status', 'done: 2 of 2 models')

        page, other = web_page.open_page(chromium, url), web_page.open_page(chromium, url)
        web_page.upload_photo(page, rainy)
        web_page.type_checkpoint(page, checkpoints / 'slow.pth')
        page.click('#run')
        web_page.wait_for_text(page, 'status', 'running slow.pth')
        web_page.upload_photo(other, rainy)
        web_page.type_checkpoint(other, checkpoints / 'mh2f.pth')
        other.click('#run')
        assert 'NIQE' in web_page.wait_for_text(other, 'info0', 'mh2f.pth: NIQE')
        assert 'slow.pth: NIQE' in web_page.text(page, 'info0'), 'the second user ran before the first finished'

        web_page.type_checkpoint(page, checkpoints / 'slower.pth')
        page.click('#run')
        web_page.wait_for_text(page, 'status', 'running slower.pth')
        page.click('#cancel')
        other.click('#run')
        assert web_page.wait_for_text(other, 'status', 'done: 1 of 1 models', timeout=30_000)


@pytest.mark.skipif(importlib.util.find_spec('gradio') is None, reason="the web extra is not installed")
def test_a_port_in_use_is_one_line_and_another_host_is_warned_about(tmp_path):
    with socket.socket() as taken:
        taken.bind(('0.0.0.0', 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_basicsr(['web', '--host', '0.0.0.0', '--port', port], cwd=tmp_path, timeout=300)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr[-3000:]
    assert lines[0].startswith('basicsr web: warning: listening on 0.0.0.0: anyone who can reach this machine')
    assert lines[-1].startswith(f'basicsr web: error: --host 0.0.0.0 --port {port}: cannot listen there')
