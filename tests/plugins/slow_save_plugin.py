"""Test hook, imported as a BasicSR plugin (``BASICSR_PLUGINS=slow_save_plugin``): when
``SLOW_SAVE_MARKER`` names a file, the first training state of an iteration above
``SLOW_SAVE_AFTER`` is written half, then the marker file is created and the process waits for
ten minutes before writing the rest, so that a test can kill the run in the middle of a save."""
import io
import os
import time
import torch

_original_save = torch.save


def _slow_save(obj, f, *args, **kwargs):
    if isinstance(f, str) and f.endswith('.state') and obj['iter'] > int(os.environ.get('SLOW_SAVE_AFTER', '0')):
        buffer = io.BytesIO()
        _original_save(obj, buffer, *args, **kwargs)
        data = buffer.getvalue()
        with open(f, 'wb') as out:
            out.write(data[:len(data) // 2])
            out.flush()
            open(os.environ['SLOW_SAVE_MARKER'], 'w').close()
            time.sleep(600)
            out.write(data[len(data) // 2:])
        return
    _original_save(obj, f, *args, **kwargs)


if os.environ.get('SLOW_SAVE_MARKER'):
    torch.save = _slow_save
