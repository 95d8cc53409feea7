"""The manual: every link in README.md, BENCHMARKS.md and docs/ resolves, anchors included, and
the README stays a front page."""
import re

from helpers import REPO

LINK = re.compile(r'\[[^\]]*\]\(([^)\s]+)\)')
DOCUMENTS = [REPO / 'README.md', REPO / 'BENCHMARKS.md', REPO / 'datasets' / 'README.md'] + sorted(
    (REPO / 'docs').glob('*.md'))


def anchors(path):
    """GitHub's anchors of the headings of a Markdown file."""
    text = re.sub(r'```.*?```', '', path.read_text(encoding='utf-8'), flags=re.S)
    headings = re.findall(r'^#+ (.+)$', text, flags=re.M)
    return {re.sub(r'[^\w\- ]', '', heading.strip().lower()).replace(' ', '-') for heading in headings}


def broken_links(path):
    text = re.sub(r'```.*?```', '', path.read_text(encoding='utf-8'), flags=re.S)
    broken = []
    for target in LINK.findall(text):
        if re.match(r'[a-z]+://', target):
            continue
        file, _, anchor = target.partition('#')
        linked = (path.parent / file).resolve() if file else path
        if not linked.exists() or (anchor and anchor not in anchors(linked)):
            broken.append(target)
    return broken


def test_every_link_resolves():
    assert len(DOCUMENTS) > 10
    broken = {path.relative_to(REPO).as_posix(): broken_links(path) for path in DOCUMENTS}
    assert not {path: links for path, links in broken.items() if links}


def test_a_broken_link_is_found(tmp_path):
    (tmp_path / 'a.md').write_text('# Title\n\n[ok](#title) [gone](b.md) [no anchor](#nowhere)\n')
    assert broken_links(tmp_path / 'a.md') == ['b.md', '#nowhere']


def test_readme_is_a_front_page():
    lines = (REPO / 'README.md').read_text(encoding='utf-8').splitlines()
    assert len(lines) <= 160
    heading = next(index for index, line in enumerate(lines) if line.startswith('Run the tests'))
    command = lines[heading + 3]
    assert command.endswith('.venv/bin/python -m pytest -q')
    assert command in (REPO / '.ci' / 'run').read_text(encoding='utf-8'), "CI runs the README's test command"
