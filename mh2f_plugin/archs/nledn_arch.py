"""NLEDN: Non-locally Enhanced Encoder-Decoder Network (Li, He, Zhang, Chang, Dong, Lin; ACM MM 2018).

A comparison baseline, as the authors' code (AlexHex7/NLEDN) builds it. Two 3x3 convolutions lift
the rainy image to ``num_feat`` channels; an encoder of three non-locally enhanced dense blocks
(region grids 8x8, 4x4, 2x2), each followed by 2x2 max-pooling that keeps its indices; a dense
block with a global non-local block at 1/8 scale; a decoder that max-unpools with those indices
(zeros elsewhere), fuses the pooled encoder features (1x1 over ``cat[skip, decoded]``) and applies
dense blocks of grids 2x2 and 4x4; at full scale a 1x1 then a 3x3 convolution over
``cat[first features, decoded, first encoder block]``, plus the first convolution's output; a 3x3
convolution and ``tanh`` predict the rain, which is subtracted from the rainy image.

A dense block: a non-local block, four 3x3 convolutions (+ReLU) each seeing the concatenation of
all before (``growth`` channels each), a 1x1 fusion of them all, plus the block's input. A region
non-local block splits its input as ``torch.chunk`` does (regions of ``ceil(n / grid)`` pixels, the
last ones shorter) and runs one shared embedded-Gaussian non-local block in each region; its keys
and values are max-pooled 2x2.

Sizes: a region or the 1/8 map narrower than 2 pixels has no pooled keys, so the authors' network
fails on sides of 8-15, 19-22, 25-27, 29, 36, 43, 50 and 57 pixels (and under 8). Such images are
padded at the bottom and right (reflection, else replication) to the next side it takes, and the
result cropped back. Images are ``(B, C, H, W)`` RGB in [0, 1]; the output has the input's shape
and is not clamped.
"""
import torch
import torch.nn.functional as F
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from mh2f_plugin.archs.arch_util import pad_to_size

ENCODER_GRIDS = (8, 4, 2)
DECODER_GRIDS = (2, 4)


class NonLocalBlock(nn.Module):
    """Embedded-Gaussian non-local block with 2x2 max-pooled keys and values and a residual:
    ``z + W(softmax(theta(z)^T phi(z)) g(z))``, ``(B, C, H, W) -> (B, C, H, W)``, H and W at least 2."""

    def __init__(self, num_feat, inter):
        super().__init__()
        self.theta = nn.Conv2d(num_feat, inter, 1)
        self.phi = nn.Conv2d(num_feat, inter, 1)
        self.g = nn.Conv2d(num_feat, inter, 1)
        self.out = nn.Conv2d(inter, num_feat, 1)

    def forward(self, z):
        batch, _, height, width = z.shape
        query = self.theta(z).flatten(2).transpose(1, 2)
        key = F.max_pool2d(self.phi(z), 2).flatten(2)
        value = F.max_pool2d(self.g(z), 2).flatten(2).transpose(1, 2)
        attended = torch.softmax(query @ key, -1) @ value
        return z + self.out(attended.transpose(1, 2).reshape(batch, -1, height, width))


class RegionNonLocal(nn.Module):
    """One ``NonLocalBlock`` applied in each region of a ``grid`` x ``grid`` split (``torch.chunk``'s)."""

    def __init__(self, num_feat, inter, grid):
        super().__init__()
        self.grid = grid
        self.non_local = NonLocalBlock(num_feat, inter)

    def forward(self, x):
        return torch.cat(
            [torch.cat([self.non_local(cell) for cell in row.chunk(self.grid, 3)], 3) for row in x.chunk(self.grid, 2)],
            2)


class NonLocalDenseBlock(nn.Module):
    """A (region) non-local block, ``num_layers`` densely connected 3x3 convolutions (+ReLU), a 1x1
    fusion of all of them, plus the input: ``(B, C, H, W) -> (B, C, H, W)``. ``grid`` None: global."""

    def __init__(self, num_feat, growth, num_layers=4, grid=None):
        super().__init__()
        self.non_local = NonLocalBlock(num_feat, growth) if grid is None else RegionNonLocal(num_feat, growth, grid)
        self.layers = nn.ModuleList(
            nn.Sequential(nn.Conv2d(num_feat + i * growth, growth, 3, 1, 1), nn.ReLU(inplace=True))
            for i in range(num_layers))
        self.fusion = nn.Conv2d(num_feat + num_layers * growth, num_feat, 1)

    def forward(self, x):
        features = [self.non_local(x)]
        for layer in self.layers:
            features.append(layer(torch.cat(features, 1)))
        return self.fusion(torch.cat(features, 1)) + x


def _regions_ok(size, grid):
    """Whether every ``torch.chunk`` piece of ``size`` pixels in ``grid`` is at least 2 pixels."""
    length = -(-size // grid)
    pieces = -(-size // length)
    return length >= 2 and size - length * (pieces - 1) >= 2


def supported_side(size):
    """Whether NLEDN takes a side of ``size`` pixels: every region, at every scale, and the 1/8 map
    keep at least 2 pixels for the 2x2 pooling of the non-local keys."""
    half, quarter = size // 2, size // 4
    return (_regions_ok(size, 8) and _regions_ok(half, 4) and _regions_ok(quarter, 2) and size // 8 >= 2)


def next_supported_side(size):
    """The smallest side of at least ``size`` pixels that NLEDN takes."""
    while not supported_side(size):
        size += 1
    return size


def _unpool(x, indices, like):
    """2x2 max-unpooling of ``x`` to the shape of ``like`` with the pooling's ``indices``: each value
    back where its maximum was, zeros elsewhere (``F.max_unpool2d``, written as a scatter so that
    tracing, for counting operations, sees no size checks)."""
    return torch.zeros_like(like).flatten(2).scatter(2, indices.flatten(2), x.flatten(2)).view_as(like)


@ARCH_REGISTRY.register()
class NLEDN(nn.Module):
    """NLEDN: ``(B, num_in_ch, H, W) -> (B, num_in_ch, H, W)``.

    Args:
        num_in_ch (int): image channels. Default: 3.
        num_feat (int): feature channels. Default: 64.
        growth (int): channels of each dense layer, and of the non-local embeddings. Default: 32.
    """

    export_fixed_size = "the regions of its non-local blocks depend on the image's size"

    def __init__(self, num_in_ch=3, num_feat=64, growth=32):
        super().__init__()
        self.head = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.head2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.encoder = nn.ModuleList(NonLocalDenseBlock(num_feat, growth, grid=grid) for grid in ENCODER_GRIDS)
        self.middle = NonLocalDenseBlock(num_feat, growth)
        self.skip_fusions = nn.ModuleList(nn.Conv2d(2 * num_feat, num_feat, 1) for _ in DECODER_GRIDS)
        self.decoder = nn.ModuleList(NonLocalDenseBlock(num_feat, growth, grid=grid) for grid in DECODER_GRIDS)
        self.fusion = nn.Sequential(nn.Conv2d(3 * num_feat, num_feat, 1), nn.Conv2d(num_feat, num_feat, 3, 1, 1))
        self.tail = nn.Conv2d(num_feat, num_in_ch, 3, 1, 1)

    def forward(self, rainy):
        height, width = rainy.shape[-2:]
        if not supported_side(height) or not supported_side(width):
            padded = pad_to_size(rainy, next_supported_side(height), next_supported_side(width))
            return self.forward(padded)[..., :height, :width]
        first = self.head(rainy)
        shallow = self.head2(first)
        x, levels = shallow, []
        for block in self.encoder:
            out = block(x)
            pooled, indices = F.max_pool2d(out, 2, return_indices=True)
            levels.append((x, out, indices))
            x = pooled
        x = self.middle(x)
        for index in reversed(range(len(levels))):
            block_input, block_output, indices = levels[index]
            x = _unpool(x, indices, block_output)
            if index > 0:  # the decoder's blocks, deepest first
                step = len(levels) - 1 - index
                x = self.decoder[step](self.skip_fusions[step](torch.cat([block_input, x], 1)))
        rain = torch.tanh(self.tail(self.fusion(torch.cat([shallow, x, levels[0][1]], 1)) + first))
        return rainy - rain
