"""Test network, imported as a BasicSR plugin (``BASICSR_PLUGINS=slow_plugin``): an identity
network that takes ``seconds`` to run, in steps of a tenth of a second, each a module call (so a
run can be cancelled between them)."""
import time
import torch
from basicsr.utils.registry import ARCH_REGISTRY

STEP = 0.1


class Pause(torch.nn.Module):

    def forward(self, x):
        time.sleep(STEP)
        return x


@ARCH_REGISTRY.register()
class SlowNet(torch.nn.Module):

    def __init__(self, seconds=5):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 1)
        self.pauses = torch.nn.ModuleList(Pause() for _ in range(round(seconds / STEP)))

    def forward(self, x):
        for pause in self.pauses:
            x = pause(x)
        return x + 0 * self.conv(x)
