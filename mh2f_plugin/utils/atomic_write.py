"""Files that are either complete or absent: written beside their target, renamed into place.

A write that fails for any reason (disk full, a crash in the writer, Ctrl-C) removes its
temporary file, so nothing half-written is left under the target's name or beside it.
"""
import contextlib
import os

PARTIAL_SUFFIX = '.partial'


@contextlib.contextmanager
def atomic_path(path):
    """``with atomic_path(path) as partial:`` write ``partial``; it becomes ``path`` only when the
    block ends without an exception, and is removed otherwise."""
    partial = f'{path}{PARTIAL_SUFFIX}'
    try:
        yield partial
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(partial)
        raise


def write_bytes_atomically(path, data):
    """Writes ``data`` (bytes) to ``path`` atomically."""
    with atomic_path(path) as partial, open(partial, 'wb') as f:
        f.write(data)


def write_text_atomically(path, text):
    """Writes ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as partial, open(partial, 'w', encoding='utf-8') as f:
        f.write(text)
