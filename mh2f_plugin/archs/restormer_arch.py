"""Restormer: Efficient Transformer for High-Resolution Image Restoration (Zamir, Arora, Khan, Hayat,
Khan, Yang; CVPR 2022), its deraining model.

A four-level U-shaped encoder-decoder of transformer blocks. A 3x3 convolution lifts the image to
``num_feat`` channels. Each encoder level halves the size and doubles the width (a 3x3 convolution
to half the width, then pixel-unshuffle); each decoder level does the reverse (a 3x3 convolution to
twice the width, then pixel-shuffle), concatenates the encoder features of its size and, below the
top, fuses them with a 1x1 convolution. The top decoder level keeps both halves (twice
``num_feat``), and refinement blocks follow at that width. A 3x3 convolution gives a residual that
is added to the image.

A transformer block is ``x + attention(norm(x))``, then ``x + feed_forward(norm(x))``, with a layer
norm over the channels of each pixel. The attention (MDTA) is across channels, not pixels: queries,
keys and values come from a 1x1 then a 3x3 depth-wise convolution; each head takes the L2-normalised
spatial vectors of its channels, and a ``C x C`` softmax, scaled by a learnt temperature, mixes the
value channels. The feed-forward (GDFN) is a 1x1 convolution to twice ``int(dim * 2.66)`` channels,
a 3x3 depth-wise convolution, ``gelu(first half) * second half`` (exact GELU) and a 1x1 convolution back.

Every layer, module and parameter is named as in the authors' code, so their BasicSR files
(``{'params': ...}``) load as they are. The attention sums over the whole image, so tiles give other
results than the whole image. Their test script runs the whole image, padded on the bottom and
right by reflection to a multiple of 8 (three halvings) and cropped back, then clamps to [0, 1];
``forward`` pads and crops the same way (replication where the image is smaller than the pad).
Images are ``(B, C, H, W)`` RGB in [0, 1], any size; the output has the input's shape and is not
clamped.
"""
import torch
import torch.nn.functional as F
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from mh2f_plugin.archs.arch_util import pad_to_multiple
from mh2f_plugin.errors import InvalidOption

NUM_LEVELS = 4


class LayerNorm(nn.Module):
    """Layer norm over the channels of each pixel (eps 1e-5, biased variance):
    ``(B, C, H, W) -> (B, C, H, W)``; parameters ``body.weight`` and ``body.bias``."""

    def __init__(self, dim):
        super().__init__()
        self.body = nn.LayerNorm(dim)

    def forward(self, x):
        return self.body(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class Attention(nn.Module):
    """Multi-Dconv head transposed attention: ``(B, dim, H, W) -> (B, dim, H, W)``.

    Heads split the channels into groups of ``C = dim / num_heads``; the ``C x C`` logits are the
    cosine similarities of the query and key channels over all pixels, times ``temperature``.
    """

    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv = nn.Conv2d(dim, 3 * dim, 1, bias=False)
        self.qkv_dwconv = nn.Conv2d(3 * dim, 3 * dim, 3, 1, 1, groups=3 * dim, bias=False)
        self.project_out = nn.Conv2d(dim, dim, 1, bias=False)

    def mix(self, logits, v):
        """Attention ``(B, heads, C, C)`` logits applied to values ``(B, heads, C, H*W)``."""
        return logits.softmax(-1) @ v

    def forward(self, x):
        batch, dim, height, width = x.shape
        qkv = self.qkv_dwconv(self.qkv(x)).reshape(batch, 3, self.num_heads, dim // self.num_heads, height * width)
        q, k, v = qkv.unbind(1)
        logits = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1) * self.temperature
        return self.project_out(self.mix(logits, v).reshape(batch, dim, height, width))


class FeedForward(nn.Module):
    """Gated-Dconv feed-forward network: ``(B, dim, H, W) -> (B, dim, H, W)`` through
    ``int(dim * expansion)`` hidden channels (127, 255, 510 and 1021 at the default widths)."""

    def __init__(self, dim, expansion):
        super().__init__()
        hidden = int(dim * expansion)
        self.project_in = nn.Conv2d(dim, 2 * hidden, 1, bias=False)
        self.dwconv = nn.Conv2d(2 * hidden, 2 * hidden, 3, 1, 1, groups=2 * hidden, bias=False)
        self.project_out = nn.Conv2d(hidden, dim, 1, bias=False)

    def forward(self, x):
        gate, value = self.dwconv(self.project_in(x)).chunk(2, 1)
        return self.project_out(F.gelu(gate) * value)


class TransformerBlock(nn.Module):
    """``x + attn(norm1(x))``, then ``+ ffn(norm2(...))``: ``(B, dim, H, W) -> (B, dim, H, W)``."""

    def __init__(self, dim, attn, ffn):
        super().__init__()
        self.norm1 = LayerNorm(dim)
        self.attn = attn
        self.norm2 = LayerNorm(dim)
        self.ffn = ffn

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class PatchEmbed(nn.Module):
    """3x3 convolution without bias: ``(B, in_ch, H, W) -> (B, dim, H, W)``."""

    def __init__(self, in_ch, dim):
        super().__init__()
        self.proj = nn.Conv2d(in_ch, dim, 3, 1, 1, bias=False)

    def forward(self, x):
        return self.proj(x)


class Downsample(nn.Module):
    """3x3 convolution to half the channels, then pixel-unshuffle: ``(B, C, H, W) -> (B, 2C, H/2, W/2)``."""

    def __init__(self, dim):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(dim, dim // 2, 3, 1, 1, bias=False), nn.PixelUnshuffle(2))

    def forward(self, x):
        return self.body(x)


class Upsample(nn.Module):
    """3x3 convolution to twice the channels, then pixel-shuffle: ``(B, C, H, W) -> (B, C/2, 2H, 2W)``."""

    def __init__(self, dim):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(dim, 2 * dim, 3, 1, 1, bias=False), nn.PixelShuffle(2))

    def forward(self, x):
        return self.body(x)


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _positive_ints(value):
    return isinstance(value, (list, tuple)) and len(value) == NUM_LEVELS and all(_is_int(v) and v >= 1 for v in value)


class TransformerUNet(nn.Module):
    """The encoder-decoder Restormer and DRSformer share: ``(B, num_in_ch, H, W) -> (B, num_in_ch, H, W)``.

    ``block(dim, heads)`` makes one transformer block; ``entry(dim)`` a module after the patch
    embedding and ``refinement(dim)`` one after the top decoder level (``None``: no such module).
    Each head of a block needs at least ``min_head_channels`` channels. ``forward`` pads images
    on the bottom and right to multiples of ``size_multiple`` (8) and crops the result back.
    """

    size_multiple = 8

    def __init__(self,
                 num_in_ch,
                 num_feat,
                 num_blocks,
                 num_heads,
                 ffn_expansion_factor,
                 block,
                 entry=None,
                 refinement=None,
                 min_head_channels=1):
        super().__init__()
        name = type(self).__name__
        if not _is_int(num_feat) or num_feat < 2 or num_feat % 2:
            raise InvalidOption(f'{name}: num_feat must be a positive even integer, got {num_feat!r}')
        if not _positive_ints(num_blocks):
            raise InvalidOption(f'{name}: num_blocks must be {NUM_LEVELS} positive integers, got {num_blocks!r}')
        if not _positive_ints(num_heads):
            raise InvalidOption(f'{name}: num_heads must be {NUM_LEVELS} positive integers, got {num_heads!r}')
        dims = [num_feat * 2**level for level in range(NUM_LEVELS)]
        for dim, heads in zip(dims, num_heads):
            if dim % heads or dim // heads < min_head_channels:
                raise InvalidOption(f'{name}: num_heads {list(num_heads)} must divide the level widths {dims}, '
                                    f'with at least {min_head_channels} channel(s) per head')
        if not isinstance(ffn_expansion_factor, (int, float)) or int(num_feat * ffn_expansion_factor) < 1:
            raise InvalidOption(f'{name}: ffn_expansion_factor must give at least one hidden channel at num_feat '
                                f'{num_feat}, got {ffn_expansion_factor!r}')

        def level(dim, heads, depth):
            return nn.Sequential(*(block(dim, heads) for _ in range(depth)))

        self.patch_embed = PatchEmbed(num_in_ch, num_feat)
        self.encoder_level0 = None if entry is None else entry(num_feat)
        self.encoder_level1 = level(dims[0], num_heads[0], num_blocks[0])
        self.down1_2 = Downsample(dims[0])
        self.encoder_level2 = level(dims[1], num_heads[1], num_blocks[1])
        self.down2_3 = Downsample(dims[1])
        self.encoder_level3 = level(dims[2], num_heads[2], num_blocks[2])
        self.down3_4 = Downsample(dims[2])
        self.latent = level(dims[3], num_heads[3], num_blocks[3])
        self.up4_3 = Upsample(dims[3])
        self.reduce_chan_level3 = nn.Conv2d(dims[3], dims[2], 1, bias=False)
        self.decoder_level3 = level(dims[2], num_heads[2], num_blocks[2])
        self.up3_2 = Upsample(dims[2])
        self.reduce_chan_level2 = nn.Conv2d(dims[2], dims[1], 1, bias=False)
        self.decoder_level2 = level(dims[1], num_heads[1], num_blocks[1])
        self.up2_1 = Upsample(dims[1])
        self.decoder_level1 = level(dims[1], num_heads[0], num_blocks[0])
        self.refinement = None if refinement is None else refinement(dims[1])
        self.output = nn.Conv2d(dims[1], num_in_ch, 3, 1, 1, bias=False)

    def forward(self, x):
        height, width = x.shape[-2:]
        x = pad_to_multiple(x, self.size_multiple)
        feat = self.patch_embed(x)
        if self.encoder_level0 is not None:
            feat = self.encoder_level0(feat)
        enc1 = self.encoder_level1(feat)
        enc2 = self.encoder_level2(self.down1_2(enc1))
        enc3 = self.encoder_level3(self.down2_3(enc2))
        dec3 = self.up4_3(self.latent(self.down3_4(enc3)))
        dec3 = self.decoder_level3(self.reduce_chan_level3(torch.cat([dec3, enc3], 1)))
        dec2 = self.decoder_level2(self.reduce_chan_level2(torch.cat([self.up3_2(dec3), enc2], 1)))
        dec1 = self.decoder_level1(torch.cat([self.up2_1(dec2), enc1], 1))
        if self.refinement is not None:
            dec1 = self.refinement(dec1)
        return (self.output(dec1) + x)[..., :height, :width]


@ARCH_REGISTRY.register()
class Restormer(TransformerUNet):
    """Restormer: ``(B, num_in_ch, H, W) -> (B, num_in_ch, H, W)``, any ``H, W`` (padded inside to
    multiples of ``size_multiple``, 8, and cropped back).

    Level ``i`` (0 to 3) works at ``num_feat * 2**i`` channels with ``num_heads[i]`` heads; the top
    decoder level and the refinement blocks at ``2 * num_feat`` with ``num_heads[0]``. Defaults are
    the authors' deraining model (26,126,644 parameters). Their constructor's ``bias``,
    ``LayerNorm_type`` and ``dual_pixel_task`` are fixed at their deraining values (no biases,
    layer norm with bias, one image in).

    Args:
        num_in_ch (int): image channels (the authors' ``inp_channels`` and ``out_channels``). Default: 3.
        num_feat (int): channels of the top level (their ``dim``); even. Default: 48.
        num_blocks (list[int]): transformer blocks at each of the four levels, each used by the
            encoder and again by the decoder. Default: [4, 6, 6, 8].
        num_refinement_blocks (int): transformer blocks after the top decoder level. Default: 4.
        num_heads (list[int]): attention heads at each level (their ``heads``). Default: [1, 2, 4, 8].
        ffn_expansion_factor (float): feed-forward hidden width over block width (truncated). Default: 2.66.
    """

    def __init__(self,
                 num_in_ch=3,
                 num_feat=48,
                 num_blocks=(4, 6, 6, 8),
                 num_refinement_blocks=4,
                 num_heads=(1, 2, 4, 8),
                 ffn_expansion_factor=2.66):
        if not _is_int(num_refinement_blocks) or num_refinement_blocks < 0:
            raise InvalidOption(f'{type(self).__name__}: num_refinement_blocks must be a non-negative integer, '
                                f'got {num_refinement_blocks!r}')

        def block(dim, heads):
            return TransformerBlock(dim, Attention(dim, heads), FeedForward(dim, ffn_expansion_factor))

        def refinement(dim):
            return nn.Sequential(*(block(dim, num_heads[0]) for _ in range(num_refinement_blocks)))

        super().__init__(num_in_ch, num_feat, num_blocks, num_heads, ffn_expansion_factor, block, refinement=refinement)
