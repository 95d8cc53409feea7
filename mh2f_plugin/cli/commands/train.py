"""Train a network with BasicSR's train_pipeline.

    basicsr train -opt options/train_mh2f_rain200h.yml [--auto_resume] [--launcher pytorch]

Experiments go to experiments/NAME and tb_logger/NAME under the current directory.
"""
from mh2f_plugin.cli.pipeline import add_pipeline_arguments, run_pipeline

NAME = 'train'


def add_arguments(parser):
    add_pipeline_arguments(parser)


def run(args):
    run_pipeline('train', args)
