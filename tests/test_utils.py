"""mh2f_plugin.utils: atomic writes and Markdown tables."""
import pytest

from mh2f_plugin.utils.atomic_write import atomic_open, write_bytes_atomically, write_text_atomically
from mh2f_plugin.utils.markdown import markdown_table


def test_an_atomic_write_replaces_the_target_only_when_complete(tmp_path):
    target = tmp_path / 'a.txt'
    write_text_atomically(str(target), 'first')
    with pytest.raises(RuntimeError):
        with atomic_open(str(target), 'w') as f:
            f.write('half')
            raise RuntimeError('the writer failed half-way')
    assert target.read_text() == 'first'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['a.txt'], 'the temporary file is removed'
    write_bytes_atomically(str(target), b'second')
    assert target.read_bytes() == b'second' and sorted(p.name for p in tmp_path.iterdir()) == ['a.txt']


def test_an_interrupted_atomic_write_leaves_nothing(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with atomic_open(str(tmp_path / 'b.pth')):
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_markdown_table():
    assert markdown_table(('a', 'b'), [(1, ''), ('x', 'y')]) == '| a | b |\n| --- | --- |\n| 1 |  |\n| x | y |'


def test_an_atomic_write_never_writes_through_a_link(tmp_path):
    """A link planted at the temporary name (or the target's) sent the write outside the folder."""
    outside = tmp_path / 'outside.txt'
    outside.write_text('untouched')
    folder = tmp_path / 'out'
    folder.mkdir()
    (folder / 'a.png.partial').symlink_to(outside)
    (folder / 'b.png').symlink_to(outside)
    write_bytes_atomically(str(folder / 'a.png'), b'result a')
    write_bytes_atomically(str(folder / 'b.png'), b'result b')
    assert outside.read_text() == 'untouched'
    assert (folder / 'a.png').read_bytes() == b'result a' and not (folder / 'a.png').is_symlink()
    assert (folder / 'b.png').read_bytes() == b'result b' and not (folder / 'b.png').is_symlink()
    assert sorted(p.name for p in folder.iterdir()) == ['a.png', 'b.png']
