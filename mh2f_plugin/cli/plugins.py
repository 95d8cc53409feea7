"""Finds and imports BasicSR plugins so that their registrations can be named in options files.

A plugin is any importable package that registers archs, losses, datasets, models or metrics
when imported. It declares itself in its ``setup.py``::

    entry_points={'basicsr.plugins': ['my_plugin = my_plugin']}

Modules that are not installed (research code on ``PYTHONPATH``) can be named in the
environment variable ``BASICSR_PLUGINS`` (comma-separated module names).
"""
import importlib
import os
from importlib.metadata import entry_points

from mh2f_plugin.errors import UserError

ENTRY_POINT_GROUP = 'basicsr.plugins'


class PluginError(UserError, RuntimeError):
    """A declared plugin could not be imported."""


def plugin_modules():
    """Module names of every declared plugin: entry points first, then ``BASICSR_PLUGINS``."""
    names = [ep.value.split(':')[0] for ep in entry_points(group=ENTRY_POINT_GROUP)]
    names += [name.strip() for name in os.environ.get('BASICSR_PLUGINS', '').split(',') if name.strip()]
    return list(dict.fromkeys(names))


def load_plugins():
    """Imports every plugin (this registers their classes); returns the module names."""
    names = plugin_modules()
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as error:
            raise PluginError(f"plugin '{name}' could not be imported: {error}") from error
        except SyntaxError as error:
            raise PluginError(f"plugin '{name}' could not be imported: {error.filename}:{error.lineno}: "
                              f'{error.msg}') from error
    return names
