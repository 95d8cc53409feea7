"""Data registered in BasicSR's registries on import."""
