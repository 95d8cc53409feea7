"""Test network, imported as a BasicSR plugin (``BASICSR_PLUGINS=dying_plugin``): a network whose
forward kills its own process, as the kernel's out-of-memory killer would."""
import os
import signal
import torch
from basicsr.utils.registry import ARCH_REGISTRY


@ARCH_REGISTRY.register()
class DyingNet(torch.nn.Module):

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        os.kill(os.getpid(), signal.SIGKILL)
