"""Test network, imported as a BasicSR plugin (``BASICSR_PLUGINS=even_size_plugin``): a network
whose forward asserts that its input has even sides, as some published code does."""
import torch
from basicsr.utils.registry import ARCH_REGISTRY


@ARCH_REGISTRY.register()
class EvenSizeNet(torch.nn.Module):

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        assert x.shape[-1] % 2 == 0 and x.shape[-2] % 2 == 0
        return self.conv(x)
