"""Every script in benchmarks/ answers --help (bench_speed.py's crashed on a '%' in a help text)."""
import pytest
import subprocess
import sys

from helpers import REPO, subprocess_env

SCRIPTS = sorted(path for path in (REPO / 'benchmarks').glob('*.py') if "__name__ == '__main__'" in path.read_text())


def test_the_benchmark_scripts_are_found():
    assert {path.name for path in SCRIPTS} >= {'bench_speed.py', 'bench_authors.py', 'bench_data.py'}


@pytest.mark.parametrize('script', SCRIPTS, ids=lambda path: path.name)
def test_each_benchmark_script_answers_help(script):
    result = subprocess.run([sys.executable, str(script), '--help'],
                            cwd=REPO,
                            env=subprocess_env(),
                            capture_output=True,
                            text=True,
                            timeout=300)
    assert result.returncode == 0 and result.stdout.startswith('usage: '), result.stderr[-3000:]
