"""MH2F-Net single-image deraining for BasicSR.

``import mh2f_plugin`` applies the BasicSR 1.4.2 compatibility fixes and registers the
package's networks, losses, datasets and models in BasicSR's registries. Under the ``basicsr``
command, a BasicSR that the fixes do not fit ends the command in one line instead of a traceback.
"""
import os
import sys

from mh2f_plugin import compat

try:
    compat.apply()
except compat.CompatError as error:
    if os.path.basename(sys.argv[0]) != 'basicsr' or os.environ.get('MH2F_DEBUG', '') not in ('', '0'):
        raise
    print(f'basicsr: error: {error}', file=sys.stderr)
    sys.exit(2)

from mh2f_plugin import archs, data, losses, models  # noqa: E402,F401  (registration)

__version__ = '0.1.0'
