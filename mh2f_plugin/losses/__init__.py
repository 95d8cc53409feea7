"""Losses registered in BasicSR's registries on import."""
from mh2f_plugin.losses import ssim_loss  # noqa: F401
