"""Reading TensorFlow 1 checkpoints (DDN's and SIRR's authors publish them) with TensorFlow's own reader.

A checkpoint is a prefix ``PATH/model`` with files ``model.index`` and ``model.data-*`` (and a
``model.meta`` graph, not needed here). It may be named by its prefix, by any of its files, or by
its folder (whose ``checkpoint`` file names the latest one). Reading needs TensorFlow, the optional
``tf`` extra (``pip install 'mh2f_plugin[tf]'``); converting once is enough, since the converted
file is a PyTorch one (``basicsr convert-weights``; the zoo caches it).
"""
import numpy as np
import os
import re
import torch

from mh2f_plugin.errors import WeightsError

EXTRA = "the tf extra: pip install 'mh2f_plugin[tf]' (TensorFlow)"
STATE_FILE = 'checkpoint'


def prefix_of(path):
    """The checkpoint prefix ``path`` names, or None when it names no TensorFlow checkpoint."""
    if os.path.isdir(path):
        return _latest(path) if os.path.isfile(os.path.join(path, STATE_FILE)) else None
    match = re.fullmatch(r'(.+)\.(index|meta|data-\d+-of-\d+)', path)
    if match and os.path.isfile(path):
        return match.group(1)
    return path if not os.path.exists(path) and os.path.isfile(path + '.index') else None


def _latest(folder):
    """The prefix that a checkpoint folder's ``checkpoint`` file names (``model_checkpoint_path``)."""
    state = os.path.join(folder, STATE_FILE)
    with open(state, encoding='utf-8', errors='replace') as f:
        match = re.search(r'^model_checkpoint_path:\s*"(.+)"\s*$', f.read(), re.M)
    if match is None:
        raise WeightsError(f'{state}: names no model_checkpoint_path')
    name = match.group(1)
    return name if os.path.isabs(name) else os.path.join(folder, name)


def index_file(prefix):
    """The ``.index`` file of a checkpoint prefix: the file that identifies it (the zoo's sha256)."""
    return prefix + '.index'


def read(path):
    """``{variable name: tensor}`` of the floating-point variables of the checkpoint ``path`` names (TensorFlow's
    ``tf.train.load_checkpoint``); ``WeightsError`` naming ``path`` without TensorFlow or a
    readable checkpoint."""
    prefix = prefix_of(path)
    try:
        import tensorflow as tf
    except ImportError as error:
        raise WeightsError(f'{path}: a TensorFlow checkpoint; reading it needs {EXTRA}') from error
    try:
        reader = tf.train.load_checkpoint(prefix)
        return {
            name: torch.from_numpy(np.array(reader.get_tensor(name)))
            for name, dtype in reader.get_variable_to_dtype_map().items() if dtype.is_floating
        }
    except (tf.errors.OpError, ValueError) as error:
        detail = ' '.join(str(getattr(error, 'message', error)).split())[:300]
        raise WeightsError(f'{path}: not a readable TensorFlow checkpoint ({detail})') from error
