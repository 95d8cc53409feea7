"""Models registered in BasicSR's registries on import."""
from mh2f_plugin.models import derain_model  # noqa: F401
