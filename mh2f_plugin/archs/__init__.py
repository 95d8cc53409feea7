"""Archs registered in BasicSR's registries on import."""
from mh2f_plugin.archs import brn_arch, mh2f_arch, prenet_arch, rcdnet_arch, rescan_arch, spanet_arch  # noqa: F401
