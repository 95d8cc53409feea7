"""A test-only BasicSR plugin (loaded through ``BASICSR_PLUGINS``).

``RankDumpModel`` is the plugin's ``DerainModel`` (a BasicSR ``SRModel``) that also saves every rank's
generator weights, so that a test can check that data-parallel ranks hold identical weights.
"""
import os
import torch
from basicsr.utils.registry import MODEL_REGISTRY

from mh2f_plugin.models.derain_model import DerainModel


@MODEL_REGISTRY.register()
class RankDumpModel(DerainModel):

    def save(self, epoch, current_iter):
        super().save(epoch, current_iter)
        weights = self.get_bare_model(self.net_g).state_dict()
        torch.save(weights, os.path.join(self.opt['path']['experiments_root'], f'rank{self.opt["rank"]}.pth'))
