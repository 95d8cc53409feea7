"""basicsr lmdb: round trips, BasicSR compatibility, interruption, --verify, reader errors."""
import cv2
import lmdb
import numpy as np
import os
import pytest
import re
import signal
import subprocess
import time
import torch
from basicsr.data import build_dataset

from mh2f_plugin.cli.main import main
from mh2f_plugin.data import lmdb_store
from mh2f_plugin.data.layouts import LayoutError, Pair, find_pairs
from mh2f_plugin.data.lmdb_store import LmdbError
from mh2f_plugin.errors import DatasetError
from helpers import BASICSR, check_ok, make_rain200, photo, run_basicsr, subprocess_env, write


def make_rain1400_photos(root):
    """Rain1400 layout with textured JPEGs: 2 clean images, 3 rainy ones each."""
    for i in (901, 902):
        clean = photo(i, (40, 44))
        write(root / 'ground_truth' / f'{i}.jpg', clean)
        for j in (1, 2, 14):
            write(root / 'rainy_image' / f'{i}_{j}.jpg', np.clip(clean.astype(int) + 10 * j, 0, 255).astype(np.uint8))


def dataset(root, backend, **options):
    return build_dataset({
        'name': 'd',
        'type': 'PairedDerainDataset',
        'dataroot': str(root),
        'io_backend': {
            'type': backend
        },
        'phase': 'val',
        **options
    })


def assert_same_pairs(folder_ds, lmdb_ds):
    assert len(folder_ds) == len(lmdb_ds)
    for a, b in zip(folder_ds, lmdb_ds):
        assert torch.equal(a['lq'], b['lq']) and torch.equal(a['gt'], b['gt'])


@pytest.mark.parametrize('make, pairs, clean_images', [(make_rain200, 3, 3), (make_rain1400_photos, 6, 2)])
def test_round_trip_is_pixel_exact_and_clean_images_stored_once(tmp_path, capsys, make, pairs, clean_images):
    make(tmp_path / 'src')
    assert main(['lmdb', str(tmp_path / 'src'), str(tmp_path / 'out'), '--workers', '2']) == 0
    assert f'{pairs} pairs' in capsys.readouterr().out
    for name in ('lq', 'gt'):
        for file in ('data.mdb', 'lock.mdb', 'meta_info.txt'):
            assert (tmp_path / 'out' / f'{name}.lmdb' / file).is_file()
    assert len(lmdb_store.read_meta_info(str(tmp_path / 'out' / 'gt.lmdb'))) == clean_images
    assert_same_pairs(dataset(tmp_path / 'src', 'disk'), dataset(tmp_path / 'out', 'lmdb'))
    assert main(['lmdb', '--verify', str(tmp_path / 'out')]) == 0


def test_meta_info_lines_follow_basicsr(tmp_path):
    make_rain1400_photos(tmp_path / 'src')
    main(['lmdb', str(tmp_path / 'src'), str(tmp_path / 'out'), '--workers', '1'])
    lines = (tmp_path / 'out' / 'lq.lmdb' / 'meta_info.txt').read_text().splitlines()
    assert lines[0] == 'rainy_image/901_1.png (40,44,3) 1'
    assert (tmp_path / 'out' / 'pairs.txt').read_text().splitlines()[0] == 'rainy_image/901_1 ground_truth/901'


def test_basicsr_compatible_output_is_read_by_basicsr_paired_image_dataset(tmp_path):
    make_rain1400_photos(tmp_path / 'src')
    main(['lmdb', str(tmp_path / 'src'), str(tmp_path / 'out'), '--basicsr-compatible', '--workers', '1'])
    stock = build_dataset({
        'name': 'stock',
        'type': 'PairedImageDataset',
        'phase': 'val',
        'scale': 1,
        'dataroot_lq': str(tmp_path / 'out' / 'lq.lmdb'),
        'dataroot_gt': str(tmp_path / 'out' / 'gt.lmdb'),
        'io_backend': {
            'type': 'lmdb'
        }
    })
    assert_same_pairs(dataset(tmp_path / 'src', 'disk'), stock)
    assert len(lmdb_store.read_meta_info(str(tmp_path / 'out' / 'gt.lmdb'))) == 6  # clean images repeated


def test_keys_do_not_collide_across_subfolders(tmp_path):
    src = tmp_path / 'src'
    for sub in ('a', 'b'):
        write(src / 'wet' / sub / '1.png', np.full((8, 8, 3), 40 if sub == 'a' else 80, np.uint8))
    pairs = [Pair(str(src / 'wet' / s / '1.png'), str(src / 'wet' / s / '1.png')) for s in ('a', 'b')]
    entries, keys = lmdb_store.plan_entries(str(src), pairs, 'regex')
    assert [k for k, _ in keys] == ['wet/a/1', 'wet/b/1']
    with pytest.raises(DatasetError, match="would share the lq key 'x_1'"):
        lmdb_store.plan_entries(str(src), [Pair(str(src / 'x.1.png'), 'g1'), Pair(str(src / 'x_1.png'), 'g2')], 'regex')


def test_existing_output_is_not_overwritten_without_the_flag(tmp_path, capsys):
    make_rain200(tmp_path / 'src')
    assert main(['lmdb', str(tmp_path / 'src'), str(tmp_path / 'out'), '--workers', '1']) == 0
    assert main(['lmdb', str(tmp_path / 'src'), str(tmp_path / 'out'), '--workers', '1']) == 2
    assert 'already exists; pass --overwrite' in capsys.readouterr().err
    assert main(['lmdb', str(tmp_path / 'src'), str(tmp_path / 'out'), '--workers', '1', '--overwrite']) == 0


def tree(root):
    """Every file under ``root`` with its bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob('*')) if p.is_file()}


@pytest.mark.parametrize('out', ['data', 'data/train/..', 'data/train/lmdb_inside'])
def test_overwrite_never_replaces_the_source_or_a_folder_around_it(tmp_path, capsys, out):
    """OUT = SRC deleted the images; OUT a parent of SRC deleted the sibling folders."""
    make_rain200(tmp_path / 'data' / 'train')
    write(tmp_path / 'data' / 'test' / 'keep.png', np.zeros((4, 4, 3), np.uint8))
    (tmp_path / 'data' / 'train' / 'lmdb_inside').mkdir()
    before = tree(tmp_path / 'data')
    assert main(['lmdb', str(tmp_path / 'data' / 'train'), str(tmp_path / out), '--overwrite', '--workers', '1']) == 2
    assert 'never replaces the source' in capsys.readouterr().err
    assert tree(tmp_path / 'data') == before


def test_overwrite_replaces_only_what_basicsr_lmdb_wrote(tmp_path, capsys):
    make_rain200(tmp_path / 'src')
    write(tmp_path / 'photos' / 'mine.png', np.zeros((4, 4, 3), np.uint8))
    assert main(['lmdb', str(tmp_path / 'src'), str(tmp_path / 'photos'), '--overwrite', '--workers', '1']) == 2
    assert 'photos: is not an LMDB dataset written by basicsr lmdb' in capsys.readouterr().err
    assert (tmp_path / 'photos' / 'mine.png').is_file()
    (tmp_path / 'link').symlink_to(tmp_path / 'photos')
    assert main(['lmdb', str(tmp_path / 'src'), str(tmp_path / 'link'), '--overwrite', '--workers', '1']) == 2
    assert 'link: is a symbolic link' in capsys.readouterr().err
    assert (tmp_path / 'photos' / 'mine.png').is_file()


def test_a_second_conversion_into_the_same_out_refuses_at_once(tmp_path, capsys):
    """Two conversions started together deadlocked on each other's databases."""
    import fcntl
    make_rain200(tmp_path / 'src')
    (tmp_path / 'out.partial').mkdir()
    fd = os.open(tmp_path / 'out.partial', os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as the first conversion holds it
    try:
        assert main(['lmdb', str(tmp_path / 'src'), str(tmp_path / 'out'), '--workers', '1']) == 2
        assert 'out: another basicsr lmdb is converting into it now' in capsys.readouterr().err
    finally:
        os.close(fd)
    assert main(['lmdb', str(tmp_path / 'src'), str(tmp_path / 'out'), '--workers', '1']) == 0


def test_a_full_disk_ends_in_one_line_and_the_conversion_resumes(tmp_path, capsys, monkeypatch):
    make_rain200(tmp_path / 'src')
    real = lmdb_store._store

    def disk_full(*args, **kwargs):
        raise lmdb.DiskError('mdb_txn_commit: No space left on device')

    monkeypatch.setattr(lmdb_store, '_store', disk_full)
    assert main(['lmdb', str(tmp_path / 'src'), str(tmp_path / 'out'), '--workers', '1']) == 2
    assert 'out.partial: cannot write the databases (mdb_txn_commit: No space left on device)' in \
        capsys.readouterr().err
    assert not (tmp_path / 'out').exists() and (tmp_path / 'out.partial').is_dir()
    monkeypatch.setattr(lmdb_store, '_store', real)
    assert main(['lmdb', str(tmp_path / 'src'), str(tmp_path / 'out'), '--workers', '1']) == 0
    assert main(['lmdb', '--verify', str(tmp_path / 'out')]) == 0


@pytest.mark.parametrize('stop, workers', [('kill', '1'), ('interrupt', '2')])
def test_a_conversion_killed_part_way_is_refused_then_finished_by_a_rerun(tmp_path, stop, workers):
    """Killed, or interrupted with Ctrl-C while workers encode (their tracebacks were printed, and
    the command sometimes never exited)."""
    src = tmp_path / 'src'
    rng = np.random.default_rng(0)
    for i in range(600):  # incompressible noise: slow enough to be killed part-way
        write(src / 'input' / f'{i}.png', rng.integers(0, 256, (160, 160, 3), dtype=np.uint8))
        write(src / 'target' / f'{i}.png', rng.integers(0, 256, (160, 160, 3), dtype=np.uint8))
    out = tmp_path / 'out'
    log = tmp_path / 'stderr.txt'
    with open(log, 'w') as stderr:
        process = subprocess.Popen(
            [BASICSR, 'lmdb', str(src), str(out), '--workers', workers],
            stderr=stderr,
            env=subprocess_env(),
            start_new_session=True,
            # as a shell starts it: an ignored SIGINT is inherited, and earlier tests in this process may
            # leave it ignored (the command then never sees the Ctrl-C and finishes)
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None and not re.search(r'lmdb: +[1-9]\d*%', log.read_text()):
        time.sleep(0.05)  # until the progress bar shows committed work, or the deadline, or an early exit
    assert process.poll() is None, f'the conversion ended before it could be killed: {log.read_text()[-2000:]}'
    time.sleep(0.3)
    if stop == 'kill':
        process.kill()
        process.wait()
    else:
        os.killpg(process.pid, signal.SIGINT)  # as Ctrl-C in a terminal: to the workers too
        assert process.wait(timeout=20) == 130
        err = log.read_text()
        assert 'basicsr lmdb: interrupted' in err and 'Traceback' not in err and 'KeyboardInterrupt' not in err
    assert not out.exists(), 'nothing may look complete'
    assert (tmp_path / 'out.partial').is_dir()
    with pytest.raises(LmdbError, match=r'LMDB dataset not found \(an interrupted conversion left .*out.partial'):
        dataset(out, 'lmdb')
    result = check_ok(run_basicsr(['lmdb', src, out, '--workers', '2'], cwd=tmp_path))
    encoded = int(result.stdout.split('(')[1].split()[0])
    assert 0 < encoded < 1200, 'the rerun keeps what the killed run committed'
    assert not (tmp_path / 'out.partial').exists()
    assert_same_pairs(dataset(src, 'disk'), dataset(out, 'lmdb'))


def test_verify_detects_a_corrupted_entry(tmp_path, capsys):
    make_rain200(tmp_path / 'src')
    main(['lmdb', str(tmp_path / 'src'), str(tmp_path / 'out'), '--workers', '1'])
    env = lmdb.open(str(tmp_path / 'out' / 'gt.lmdb'))
    with env.begin(write=True) as txn:
        data = txn.get(b'norain/norain-2')
        txn.put(b'norain/norain-2', data[:len(data) // 2])
    env.close()
    assert main(['lmdb', '--verify', str(tmp_path / 'out')]) == 2
    captured = capsys.readouterr()
    assert 'gt.lmdb:norain/norain-2: truncated PNG' in captured.out
    assert '1 problem(s) found' in captured.err


def test_key_missing_from_meta_info_is_named(tmp_path):
    make_rain200(tmp_path / 'src')
    main(['lmdb', str(tmp_path / 'src'), str(tmp_path / 'out'), '--workers', '1'])
    meta = tmp_path / 'out' / 'lq.lmdb' / 'meta_info.txt'
    meta.write_text(''.join(line for line in meta.read_text().splitlines(True) if 'norain-10x2' not in line))
    with pytest.raises(LmdbError, match=r"key 'rain/X2/norain-10x2' is not in .*lq.lmdb/meta_info.txt"):
        dataset(tmp_path / 'out', 'lmdb')


def test_a_malformed_pairs_line_is_named_with_its_line_number(tmp_path):
    make_rain1400_photos(tmp_path / 'src')
    main(['lmdb', str(tmp_path / 'src'), str(tmp_path / 'out'), '--workers', '1'])
    pairs = tmp_path / 'out' / 'pairs.txt'
    lines = pairs.read_text().splitlines()
    lines[3] = lines[3].split()[0]
    pairs.write_text('\n'.join(lines) + '\n')
    with pytest.raises(LayoutError, match=r'pairs.txt:4: expected "lq_key gt_key", got \'rainy_image/902_1\''):
        dataset(tmp_path / 'out', 'lmdb')


def test_switching_an_options_file_to_lmdb_changes_only_root_and_backend(tmp_path):
    make_rain200(tmp_path / 'src')
    main(['lmdb', str(tmp_path / 'src'), str(tmp_path / 'out'), '--workers', '1'])
    assert_same_pairs(
        dataset(tmp_path / 'src', 'disk', layout='auto'), dataset(tmp_path / 'out', 'lmdb', layout='auto'))


def test_side_by_side_is_split_at_conversion(tmp_path):
    clean, rainy = photo(1, (20, 24)), photo(2, (20, 24))
    write(tmp_path / 'src' / 'a.png', np.concatenate([clean, rainy], 1))
    main([
        'lmdb',
        str(tmp_path / 'src'),
        str(tmp_path / 'out'), '--layout', 'side_by_side', '--rainy-half', 'right', '--workers', '1'
    ])
    assert_same_pairs(
        dataset(tmp_path / 'src', 'disk', layout='side_by_side', rainy_half='right'), dataset(tmp_path / 'out', 'lmdb'))
    assert cv2.imread(str(tmp_path / 'src' / 'a.png')).shape == (20, 48, 3)


def test_map_size_bounds_every_stored_entry_including_repeated_clean_images(tmp_path):
    rng = np.random.default_rng(0)
    write(tmp_path / 'src' / 'ground_truth' / '1.png', rng.integers(0, 256, (40, 44, 3), dtype=np.uint8))
    for j in range(1, 15):
        write(tmp_path / 'src' / 'rainy_image' / f'1_{j}.png', rng.integers(0, 256, (40, 44, 3), dtype=np.uint8))
    _, pairs, _ = find_pairs(str(tmp_path / 'src'))
    entries, _ = lmdb_store.plan_entries(str(tmp_path / 'src'), pairs, 'rain1400', basicsr_compatible=True)
    headers = {e.path: lmdb_store.image_header(e.path) for e in entries}
    envs = lmdb_store._open_databases(str(tmp_path), entries, headers)
    stored = sum(len(lmdb_store.encode_entry(e, 1)[2]) for e in entries if e.database == 'gt')
    assert envs['gt'].info()['map_size'] - lmdb_store.MAP_SIZE_MARGIN >= stored  # 14 copies of one clean image
