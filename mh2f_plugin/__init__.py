"""MH2F-Net single-image deraining for BasicSR.

``import mh2f_plugin`` applies the BasicSR 1.4.2 compatibility fixes and registers the
package's networks, losses, datasets and models in BasicSR's registries.
"""
from mh2f_plugin import compat

compat.apply()

from mh2f_plugin import archs, data, losses, models  # noqa: E402,F401  (registration)

__version__ = '0.1.0'
