"""Published checkpoints: reading them in any official layout and converting them to BasicSR's."""
