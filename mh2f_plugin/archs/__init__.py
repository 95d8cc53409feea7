"""Archs registered in BasicSR's registries on import."""
from mh2f_plugin.archs import mh2f_arch, prenet_arch, rescan_arch  # noqa: F401
