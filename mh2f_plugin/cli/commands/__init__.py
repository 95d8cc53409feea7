"""The commands of ``basicsr``, one module each: ``NAME``, ``add_arguments(parser)``, ``run(args)``,
and a docstring whose first line is the command's summary in ``basicsr --help``."""
