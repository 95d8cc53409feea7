"""Test a network with BasicSR's test_pipeline; ends with a table of the metrics per dataset.

    basicsr test -opt options/test_mh2f_rain200h.yml

Results go to results/NAME under the current directory, the metrics also to
results/NAME/metrics.csv.
"""
import csv
import os

from mh2f_plugin.cli.pipeline import add_pipeline_arguments, run_pipeline
from mh2f_plugin.models.derain_model import METRICS_FILE
from mh2f_plugin.utils.markdown import markdown_table

NAME = 'test'


def add_arguments(parser):
    add_pipeline_arguments(parser)


def metrics_table(path):
    """The metrics CSV written by ``DerainModel`` as a Markdown table."""
    with open(path, newline='', encoding='utf-8') as f:
        header, *rows = list(csv.reader(f))
    return markdown_table(header, rows) + f'\n(written to {path})'


def run(args):
    opt = run_pipeline('test', args)
    metrics = os.path.join(os.getcwd(), 'results', opt['name'], METRICS_FILE)
    if os.path.isfile(metrics):
        print(metrics_table(metrics))
