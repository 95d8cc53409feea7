"""Archs registered in BasicSR's registries on import."""
# isort: off
from mh2f_plugin.archs import brn_arch, drdnet_arch, drsformer_arch, jordere_arch, mardnet_arch, mh2f_arch  # noqa: F401
from mh2f_plugin.archs import mprnet_arch, nerdrain_arch, nledn_arch, prenet_arch, rcdnet_arch  # noqa: F401
from mh2f_plugin.archs import rescan_arch, restormer_arch, sirr_arch, spanet_arch, umrl_arch  # noqa: F401
# isort: on
