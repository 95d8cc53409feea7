"""The model zoo against a real HTTP server on 127.0.0.1: download, verification, cache reuse, offline
folders, errors in one line, and zoo names wherever weights are taken."""
import cv2
import hashlib
import http.server
import pytest
import threading
import torch
import yaml

from mh2f_plugin.cli.main import main
from mh2f_plugin.weights import zoo
import official_layouts
from helpers import REPO, check_ok, make_input_target, needs_realdata, photo, realdata_file, run_basicsr, write_yaml

COMMIT = '0' * 40


def error_line(err):
    """The one ``basicsr <verb>: error:`` line of ``err`` (progress bars may precede it; no traceback)."""
    lines = [line for line in err.splitlines() if ': error: ' in line]
    assert len(lines) == 1 and 'Traceback' not in err, err
    return lines[0]


class Server:
    """Serves ``files`` (``{url path: bytes}``) on 127.0.0.1 and records every request path."""

    def __init__(self, files):
        self.files, self.requests = files, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):

            def do_GET(self):
                server.requests.append(self.path)
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.url = f'http://127.0.0.1:{self.httpd.server_address[1]}/'
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def synthetic_zoo(tmp_path, monkeypatch):
    """A catalogue of two synthetic official checkpoints (one with a wrong sha256) served locally;
    ``MH2F_ZOO_MIRROR`` points at the server and ``MH2F_ZOO_DIR`` at an empty folder."""
    torch.manual_seed(0)
    files, entries = {}, {}
    for name, sha_ok in (('tiny-prn', True), ('tiny-bad', False)):
        path = tmp_path / f'{name}.pth'
        torch.save(official_layouts.prenet(recurrent='none'), path)
        data = path.read_bytes()
        files[f'/someone/derain/raw/{COMMIT}/logs/{name}.pth'] = data
        entries[name] = {
            'arch': {
                'type': 'PRN',
                'num_feat': 8
            },
            'trained_on': 'nothing',
            'url': f'https://github.com/someone/derain/raw/{COMMIT}/logs/{name}.pth',
            'sha256': hashlib.sha256(data).hexdigest() if sha_ok else 'f' * 64
        }
    server = Server(files)
    monkeypatch.setenv('MH2F_ZOO_CATALOGUE', str(write_yaml(tmp_path / 'catalogue.yml', entries)))
    monkeypatch.setenv('MH2F_ZOO_MIRROR', server.url)
    monkeypatch.setenv('MH2F_ZOO_DIR', str(tmp_path / 'zoo'))
    yield server
    server.close()


def test_download_verifies_converts_and_is_reused_without_a_second_request(synthetic_zoo, tmp_path, capsys):
    assert main(['zoo', 'get', 'tiny-prn']) == 0
    assert synthetic_zoo.requests == [f'/someone/derain/raw/{COMMIT}/logs/tiny-prn.pth']
    original = tmp_path / 'zoo' / 'someone_derain' / 'logs' / 'tiny-prn.pth'
    converted = torch.load(str(original) + zoo.CONVERTED_SUFFIX)
    assert {'type': 'PRN', 'num_feat': 8, 'recurrent': 'none'}.items() <= converted['network_g'].items()
    assert main(['zoo', 'get', 'tiny-prn']) == 0
    assert len(synthetic_zoo.requests) == 1, 'the cached file is used'
    net_path, network_opt = zoo.fetch('tiny-prn')
    assert net_path.endswith(zoo.CONVERTED_SUFFIX) and network_opt['type'] == 'PRN'


def test_checksum_mismatch_is_refused_and_the_file_never_used(synthetic_zoo, tmp_path, capsys):
    assert main(['zoo', 'get', 'tiny-bad']) == 2
    err = error_line(capsys.readouterr().err)
    assert f"sha256 mismatch for zoo:tiny-bad: expected {'f' * 64}, found " in err
    folder = tmp_path / 'zoo' / 'someone_derain' / 'logs'
    assert not (folder / 'tiny-bad.pth').exists() and (folder / 'tiny-bad.pth.corrupt').exists()
    assert not list(folder.glob('*' + zoo.CONVERTED_SUFFIX))


def test_unreachable_server_is_one_line_naming_url_and_where_to_put_the_file(synthetic_zoo, monkeypatch, capsys):
    synthetic_zoo.close()
    assert main(['zoo', 'get', 'tiny-prn']) == 2
    err = error_line(capsys.readouterr().err)
    assert f'{synthetic_zoo.url}someone/derain/raw/{COMMIT}/logs/tiny-prn.pth: download failed' in err
    assert 'download it by hand to ' in err and 'someone_derain/logs/tiny-prn.pth' in err


def test_a_folder_of_downloaded_files_needs_no_request(synthetic_zoo, tmp_path, capsys):
    offline = tmp_path / 'offline' / 'someone_derain' / 'logs'
    offline.mkdir(parents=True)
    (offline / 'tiny-prn.pth').write_bytes((tmp_path / 'tiny-prn.pth').read_bytes())
    assert main(['zoo', 'get', 'tiny-prn', '--zoo-dir', str(tmp_path / 'offline')]) == 0
    assert synthetic_zoo.requests == []
    assert str(offline) in capsys.readouterr().out


def test_a_damaged_converted_file_in_the_cache_is_converted_again(synthetic_zoo, tmp_path):
    """zoo get said a corrupt converted file was fine, and derain then failed on it."""
    assert main(['zoo', 'get', 'tiny-prn']) == 0
    converted = tmp_path / 'zoo' / 'someone_derain' / 'logs' / ('tiny-prn.pth' + zoo.CONVERTED_SUFFIX)
    converted.write_bytes(converted.read_bytes()[:100])
    path, _ = zoo.fetch('tiny-prn')
    assert path == str(converted) and torch.load(path, weights_only=True)['network_g']['type'] == 'PRN'
    assert len(synthetic_zoo.requests) == 1, 'converted again from the verified original, no new download'


NO_PSNR = {'Rain100H': {'ssim': 0.9}}
WORDY_PSNR = {'Rain100H': {'psnr': 'high'}}


@pytest.mark.parametrize('change, message', [
    (lambda item: item.update(url='https://example.org/w.pth'), "entry 'mine': url must be https://github.com/"),
    (lambda item: item.update(published=NO_PSNR), "entry 'mine': published 'Rain100H' must give psnr"),
    (lambda item: item.update(published=WORDY_PSNR), "published 'Rain100H' must give psnr"),
])
def test_a_catalogue_of_your_own_is_checked(tmp_path, monkeypatch, capsys, change, message):
    item = {
        'arch': {
            'type': 'PRN'
        },
        'trained_on': 'x',
        'url': f'https://github.com/a/b/raw/{COMMIT}/w.pth',
        'sha256': 'f' * 64
    }
    change(item)
    monkeypatch.setenv('MH2F_ZOO_CATALOGUE', str(write_yaml(tmp_path / f'cat{len(message)}.yml', {'mine': item})))
    assert main(['zoo', 'list']) == 2
    err = capsys.readouterr().err
    assert message in err and 'Traceback' not in err


def test_a_published_figure_without_ssim_is_listed(tmp_path, monkeypatch, capsys):
    item = {
        'arch': {
            'type': 'PRN'
        },
        'trained_on': 'x',
        'url': f'https://github.com/a/b/raw/{COMMIT}/w.pth',
        'sha256': 'f' * 64,
        'published': {
            'Rain100H': {
                'psnr': 29.5
            }
        }
    }
    monkeypatch.setenv('MH2F_ZOO_CATALOGUE', str(write_yaml(tmp_path / 'ssimless.yml', {'mine': item})))
    assert main(['zoo', 'list']) == 0
    assert '| Rain100H 29.50 |' in capsys.readouterr().out


def test_unknown_name_lists_close_ones(synthetic_zoo, capsys):
    assert main(['zoo', 'get', 'tiny-pnr']) == 2
    assert 'zoo:tiny-pnr: no such zoo name; close: tiny-prn' in capsys.readouterr().err


def test_zoo_names_work_in_derain_compare_and_pretrain_network_g(synthetic_zoo, tmp_path, monkeypatch, capsys):
    cv2.imwrite(str(tmp_path / 'street.png'), photo(2, (23, 31)))
    assert main(['derain', str(tmp_path / 'street.png'), str(tmp_path / 'out.png'), '--weights', 'tiny-prn']) == 0
    assert cv2.imread(str(tmp_path / 'out.png')).shape == (23, 31, 3)
    make_input_target(tmp_path / 'data')
    assert main([
        'compare', '--weights', 'tiny-prn', '--data',
        str(tmp_path / 'data'), '--size', '32x32', '--out',
        str(tmp_path / 'cmp'), '--figure', 'none'
    ]) == 0
    assert '| tiny-prn | 0.006 |' in capsys.readouterr().out  # PRN at width 8: 6,499 parameters
    options = yaml.safe_load((REPO / 'options' / 'test_prn6_rain100h.yml').read_text())
    options['path']['pretrain_network_g'] = 'zoo:tiny-prn'
    options['datasets']['test_1'].update(dataroot=str(tmp_path / 'data'))
    options['val']['save_img'] = False
    monkeypatch.chdir(tmp_path)
    assert main(['test', '-opt', str(write_yaml(tmp_path / 'test.yml', options))]) == 0
    assert '| Rain100H |' in capsys.readouterr().out
    assert len(synthetic_zoo.requests) == 1


@needs_realdata
def test_every_official_file_downloads_verifies_and_converts(tmp_path):
    """Every catalogue entry but those downloaded by hand, served from ../shared/realdata on 127.0.0.1
    (a TensorFlow checkpoint's data file too): each file's sha256 checked, each converted once and
    then reused."""
    files = {}
    downloaded = [item for item in zoo.catalogue().values() if not item.by_hand]
    for item in downloaded:
        for url, relative, _ in item.files():
            files['/' + url[len(zoo.GITHUB):]] = realdata_file(item, relative).read_bytes()
    server = Server(files)
    names = [item.name for item in downloaded]
    try:
        env = {'MH2F_ZOO_MIRROR': server.url, 'MH2F_ZOO_DIR': str(tmp_path / 'zoo')}
        result = check_ok(run_basicsr(['zoo', 'get'] + names, cwd=tmp_path, env=env, timeout=900))
        assert sorted(server.requests) == sorted(files)
        for name in names:
            assert (tmp_path / 'zoo' / (zoo.entry(name).relative_path + zoo.CONVERTED_SUFFIX)).is_file()
            assert f'{name}: ' in result.stdout
        check_ok(run_basicsr(['zoo', 'get'] + names, cwd=tmp_path, env=env))
        assert len(server.requests) == len(files)
    finally:
        server.close()


def test_zoo_list_renders_the_catalogue():
    from mh2f_plugin.cli.commands.zoo import catalogue_table
    table = catalogue_table()
    assert table.count('\n') == len(zoo.catalogue()) + 1
    assert '| `prenet6-rain100h` | PReNet | ' in table and 'Rain100H 29.46/0.899' in table
    for item in zoo.catalogue().values():
        assert item.relative_path.count('/') >= 2 and (item.by_hand or len(item.sha256) == 64)


def test_the_manual_shows_the_catalogue_as_zoo_list_prints_it():
    from mh2f_plugin.cli.commands.zoo import catalogue_table
    assert catalogue_table() in (REPO / 'docs' / 'weights.md').read_text(encoding='utf-8')


def test_a_file_downloaded_by_hand_is_added_once_then_checked(tmp_path, monkeypatch, capsys):
    """Restormer, MPRNet, DRSformer and NeRD-Rain publish on cloud drives: the user downloads the
    file, hands it over once, and its sha256 is recorded and checked at every later use."""
    from basicsr.archs import build_network
    options = {'type': 'Restormer', 'num_feat': 8, 'num_blocks': [1, 1, 1, 1], 'num_refinement_blocks': 1}
    write_yaml(
        tmp_path / 'catalogue.yml', {
            'tiny-restormer': {
                'arch': {
                    'type': 'Restormer'
                },
                'trained_on': 'nothing',
                'page': 'https://github.com/someone/derain/tree/main',
                'file': 'deraining.pth'
            }
        })
    monkeypatch.setenv('MH2F_ZOO_CATALOGUE', str(tmp_path / 'catalogue.yml'))
    monkeypatch.setenv('MH2F_ZOO_DIR', str(tmp_path / 'zoo'))
    torch.save({'params': build_network(dict(options)).state_dict()}, tmp_path / 'downloaded.pth')
    assert main(['zoo', 'get', 'tiny-restormer']) == 2
    assert ('download deraining.pth by hand from https://github.com/someone/derain/tree/main, then run basicsr zoo '
            'get tiny-restormer --file PATH') in error_line(capsys.readouterr().err)
    assert main(['zoo', 'get', 'tiny-restormer', '--file', str(tmp_path / 'downloaded.pth')]) == 0
    kept = tmp_path / 'zoo' / 'by-hand' / 'tiny-restormer' / 'deraining.pth'
    assert (kept.parent / 'deraining.pth.sha256').read_text().strip() == hashlib.sha256(kept.read_bytes()).hexdigest()
    path, network_opt = zoo.fetch('tiny-restormer')
    assert path.endswith(zoo.CONVERTED_SUFFIX) and torch.load(path)['network_g']['num_feat'] == 8
    changed = bytearray(kept.read_bytes())
    changed[-1] ^= 0xFF
    kept.write_bytes(bytes(changed))  # the file changed since it was added
    assert main(['zoo', 'get', 'tiny-restormer']) == 2
    assert 'is not the one recorded when it was added' in error_line(capsys.readouterr().err)
    assert main(['zoo', 'get', 'prn6-rain100h', '--file', str(tmp_path / 'downloaded.pth')]) == 2
