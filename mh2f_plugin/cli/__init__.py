"""The ``basicsr`` command: train, test and inspect BasicSR runs with every installed plugin."""
