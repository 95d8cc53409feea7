"""Archs registered in BasicSR's registries on import."""
# isort: off
from mh2f_plugin.archs import brn_arch, drdnet_arch, jordere_arch, mardnet_arch, mh2f_arch, nledn_arch  # noqa: F401
from mh2f_plugin.archs import prenet_arch, rcdnet_arch, rescan_arch, sirr_arch, spanet_arch, umrl_arch  # noqa: F401
# isort: on
