"""Fixtures shared by the tests; helpers are in ``helpers.py``."""
import pytest

import mh2f_plugin  # noqa: F401  (first: fixes BasicSR 1.4.2 imports before any test imports basicsr)
from helpers import make_paired_folder


@pytest.fixture(scope='session')
def paired_data(tmp_path_factory):
    """Four training pairs and two validation pairs, 48x48."""
    root = tmp_path_factory.mktemp('paired')
    return {'train': make_paired_folder(root / 'train', 4), 'val': make_paired_folder(root / 'val', 2, offset=4)}


@pytest.fixture(scope='session', autouse=True)
def engine_cache(tmp_path_factory):
    """The inference engines' exports and compiled models go to a folder of this session (the
    commands run in subprocesses inherit it), never to the user's cache."""
    folder = tmp_path_factory.mktemp('engines')
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('MH2F_ENGINE_CACHE', str(folder))
        yield folder
