"""Data registered in BasicSR's registries on import."""
from mh2f_plugin.data import paired_derain_dataset, rain_synthesis_dataset  # noqa: F401
