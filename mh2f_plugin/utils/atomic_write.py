"""Files that are either complete or absent: written beside their target, renamed into place.

A write that fails for any reason (disk full, a crash in the writer, Ctrl-C) removes its
temporary file, so nothing half-written is left under the target's name or beside it. The
temporary file is created afresh and never through a link: a link planted at its name is
replaced, not written through, and so is a link at the target's name.
"""
import contextlib
import os

PARTIAL_SUFFIX = '.partial'


@contextlib.contextmanager
def atomic_open(path, mode='wb'):
    """``with atomic_open(path) as f:`` write ``f``; it becomes ``path`` only when the block ends
    without an exception, and is removed otherwise. ``mode`` is ``'wb'`` or ``'w'`` (UTF-8)."""
    partial = f'{path}{PARTIAL_SUFFIX}'
    with contextlib.suppress(FileNotFoundError):
        os.unlink(partial)  # a stale file, or a link planted there: removed, never followed
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_NOFOLLOW', 0), 0o666)
    try:
        with open(fd, mode, **({} if 'b' in mode else {'encoding': 'utf-8'})) as f:
            yield f
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(partial)
        raise


def write_bytes_atomically(path, data):
    """Writes ``data`` (bytes) to ``path`` atomically."""
    with atomic_open(path, 'wb') as f:
        f.write(data)


def write_text_atomically(path, text):
    """Writes ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_open(path, 'w') as f:
        f.write(text)
