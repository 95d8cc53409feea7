"""mh2f_plugin.utils: atomic writes and Markdown tables."""
import pytest

from mh2f_plugin.utils.atomic_write import atomic_path, write_bytes_atomically, write_text_atomically
from mh2f_plugin.utils.markdown import markdown_table


def test_an_atomic_write_replaces_the_target_only_when_complete(tmp_path):
    target = tmp_path / 'a.txt'
    write_text_atomically(str(target), 'first')
    with pytest.raises(RuntimeError):
        with atomic_path(str(target)) as partial:
            with open(partial, 'w') as f:
                f.write('half')
            raise RuntimeError('the writer failed half-way')
    assert target.read_text() == 'first'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['a.txt'], 'the temporary file is removed'
    write_bytes_atomically(str(target), b'second')
    assert target.read_bytes() == b'second' and sorted(p.name for p in tmp_path.iterdir()) == ['a.txt']


def test_an_interrupted_atomic_write_leaves_nothing(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(str(tmp_path / 'b.pth')) as partial:
            open(partial, 'wb').close()
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_markdown_table():
    assert markdown_table(('a', 'b'), [(1, ''), ('x', 'y')]) == '| a | b |\n| --- | --- |\n| 1 |  |\n| x | y |'
