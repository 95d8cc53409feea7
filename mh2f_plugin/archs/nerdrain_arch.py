"""NeRD-Rain: bidirectional multi-scale implicit neural representations (Chen, Pan, Dong; CVPR 2024).

The authors' deraining network (``model.py`` of cschenxiang/NeRD-Rain; ``model_S.py``, NeRD-Rain-S,
differs only in its width: ``dim: 32``), a comparison baseline. It sees the image at three scales,
1/4, 1/2 and full (nearest-neighbour sampling), each through U-Nets of Restormer's transformer
blocks: channel self-attention over the whole input, a gated depth-wise feed-forward network,
three levels of 1, 2 and 4 times ``dim`` channels.

* Coarse to fine: an implicit neural representation (an MLP on each pixel's 3x3 neighbourhood of
  features) turns the up-sampled latent features of the 1/4 scale into a correction of that image;
  up-sampled, it is added to the 1/2-scale image, and from there likewise to the full-scale one.
* The full scale runs three U-Net passes (two encoder-decoders, then an encoder), the 1/2 scale
  two. A gated fusion of the latents of successive passes, halved, joins the next coarser scale's
  decoder; each coarser decoder's last features, doubled, join the next finer one's.
* A 3x3 convolution of the last full-scale decoder, plus the image, is the result (the authors'
  ``restored[0]``); the other six outputs, which they supervise in training, are not computed.

Images are ``(B, 3, H, W)`` RGB in [0, 1], any size; the output has the input's shape and is not clamped.

Test-time procedure of the authors' ``test.py``, which ``forward`` reproduces, since attention over
the whole window makes results depend on it: the image is cut into ``win_size`` windows (256), a
grid from the top left, plus a column and a row of windows flush with the right and bottom edges
and a corner window where the grid does not reach them; all go through the network as one batch,
and each output pixel comes from one window: the grid's, else only the strip the grid leaves. Their
script stops on images with a side under the window; these are padded at the bottom and right to
the window size (reflection, else replication) and the result cropped back.

The authors' implicit representation is LIIF's: it also gives the MLP each pixel's coordinates
relative to the query point, positional encodings and the cell size, and blends four shifted
queries. Their query points are the feature pixels themselves, so the 18 relative coordinates are
zeros, the cell terms are ``(2 / h) h`` and ``(2 / w) w`` (float32), and the four queries are one,
with weights of 1/4 that add back exactly. ``ImplicitDecoder`` computes that directly, bit for bit
the same (one MLP pass instead of four). Only the layer normalisation rounds differently
(``ChannelLayerNorm``): outputs 3e-6 from the authors' code's on random weights.
"""
import torch
import torch.nn.functional as F
from basicsr.utils.registry import ARCH_REGISTRY
from itertools import product
from torch import nn

from mh2f_plugin.archs.arch_util import pad_to_size
from mh2f_plugin.errors import InvalidOption

SIZE_MULTIPLE = 16  # two levels of pixel unshuffle below the 1/4 scale
# U-Net passes per scale, as (suffix of their transformer stages and 1x1 reductions, suffix of their
# re-sampling layers): the authors' module names.
SMALL_PASSES = (('small', 'small'), )
MID_PASSES = (('mid1', 'mid'), ('mid2', 'mid2'))
MAX_PASSES = (('max1', 'max'), ('max2', 'max2'), ('max3', 'max3'))


def _conv(in_ch, out_ch, kernel_size, bias=False):
    return nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2, bias=bias)


def _up(x):
    """Nearest 2x: ``(B, C, h, w) -> (B, C, 2 h, 2 w)``."""
    return F.interpolate(x, scale_factor=2, mode='nearest')


def _down(x):
    """Nearest 0.5x (the even pixels): ``(B, C, h, w) -> (B, C, h/2, w/2)``."""
    return x[..., ::2, ::2]


class ChannelLayerNorm(nn.Module):
    """Layer normalisation over the channels of each pixel, with weight and bias:
    ``(B, C, H, W) -> (B, C, H, W)``.

    ``F.layer_norm`` rounds differently from the authors' ``(x - mean) / sqrt(var + eps)``: outputs
    2e-6 apart on random weights, where their arithmetic would make the whole network 1.4 to 1.6
    times slower on the CPU (its variance over a strided axis is a serial reduction).
    """

    def __init__(self, num_feat):
        super().__init__()
        self.body = nn.LayerNorm(num_feat)

    def forward(self, x):
        return self.body(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class DepthwiseConv(nn.Module):
    """3x3 depth-wise convolution without bias, ``(B, C, H, W) -> (B, C, H, W)``."""

    def __init__(self, num_feat):
        super().__init__()
        self.main = nn.Sequential(nn.Conv2d(num_feat, num_feat, 3, padding=1, groups=num_feat, bias=False))

    def forward(self, x):
        return self.main(x)


class ChannelSelfAttention(nn.Module):
    """Restormer's multi-Dconv head transposed attention, ``(B, C, H, W) -> (B, C, H, W)``.

    Queries, keys and values from a 1x1 then a depth-wise 3x3 convolution; per head, a
    ``C/heads x C/heads`` attention between channels, from the cosine similarity of their maps over
    all ``H W`` pixels times a learnt temperature; a 1x1 convolution out.
    """

    def __init__(self, num_feat, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv = _conv(num_feat, 3 * num_feat, 1)
        self.qkv_dwconv = DepthwiseConv(3 * num_feat)
        self.project_out = _conv(num_feat, num_feat, 1)

    def forward(self, x):
        b, c, h, w = x.shape
        q, k, v = self.qkv_dwconv(self.qkv(x)).reshape(b, 3, self.num_heads, c // self.num_heads, h * w).unbind(1)
        attn = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1) * self.temperature
        return self.project_out((attn.softmax(-1) @ v).reshape(b, c, h, w))


class GatedFeedForward(nn.Module):
    """Restormer's gated depth-wise feed-forward network, ``(B, C, H, W) -> (B, C, H, W)``:
    ``out(gelu(a) * b)`` with ``a, b`` the two halves of ``dwconv(in(x))``, ``int(C * expansion)`` channels each."""

    def __init__(self, num_feat, expansion):
        super().__init__()
        hidden = int(num_feat * expansion)
        self.project_in = _conv(num_feat, 2 * hidden, 1)
        self.dwconv = DepthwiseConv(2 * hidden)
        self.project_out = _conv(hidden, num_feat, 1)

    def forward(self, x):
        a, b = self.dwconv(self.project_in(x)).chunk(2, 1)
        return self.project_out(F.gelu(a) * b)


class TransformerBlock(nn.Module):
    """``x + attn(norm1(x))``, then ``+ ffn(norm2(.))``; ``(B, C, H, W) -> (B, C, H, W)``."""

    def __init__(self, num_feat, num_heads, expansion):
        super().__init__()
        self.norm1 = ChannelLayerNorm(num_feat)
        self.attn = ChannelSelfAttention(num_feat, num_heads)
        self.norm2 = ChannelLayerNorm(num_feat)
        self.ffn = GatedFeedForward(num_feat, expansion)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


def _blocks(num_feat, num_heads, count, expansion):
    return nn.Sequential(*(TransformerBlock(num_feat, num_heads, expansion) for _ in range(count)))


class PatchEmbed(nn.Module):
    """3x3 convolution without bias, ``(B, 3, H, W) -> (B, C, H, W)``."""

    def __init__(self, num_feat):
        super().__init__()
        self.proj = _conv(3, num_feat, 3)

    def forward(self, x):
        return self.proj(x)


class PixelResample(nn.Module):
    """3x3 convolution, then pixel unshuffle (``down``: ``(B, C, H, W) -> (B, 2 C, H/2, W/2)``) or
    pixel shuffle (``(B, C, H, W) -> (B, C/2, 2 H, 2 W)``)."""

    def __init__(self, num_feat, down):
        super().__init__()
        if down:
            self.body = nn.Sequential(_conv(num_feat, num_feat // 2, 3), nn.PixelUnshuffle(2))
        else:
            self.body = nn.Sequential(_conv(num_feat, 2 * num_feat, 3), nn.PixelShuffle(2))

    def forward(self, x):
        return self.body(x)


class Fusion(nn.Module):
    """Bidirectional fusion of two feature maps, ``(x, y)``, both ``(B, C, H, W)`` ``-> (B, C, H, W)``.

    ``A = sigmoid(query(x) * key(y))`` (3x3 convolutions); each of ``x, y`` is blended with itself
    times ``A`` by two weight maps from a 3x3 convolution of both; the two blends are added.
    """

    def __init__(self, num_feat):
        super().__init__()
        self.query_conv = _conv(num_feat, num_feat, 3, bias=True)
        self.key_conv = _conv(num_feat, num_feat, 3, bias=True)
        self.gamma1 = _conv(2 * num_feat, 2, 3, bias=True)
        self.gamma2 = _conv(2 * num_feat, 2, 3, bias=True)

    @staticmethod
    def _blend(x, attended, gamma):
        weights = gamma(torch.cat([x, attended], 1))
        return x * weights[:, 0:1] + attended * weights[:, 1:2]

    def forward(self, x, y):
        attention = torch.sigmoid(self.query_conv(x) * self.key_conv(y))
        return self._blend(x, x * attention, self.gamma1) + self._blend(y, y * attention, self.gamma2)


class MLP(nn.Module):
    """Per-row MLP: ``in_dim -> hidden`` (three ReLU layers) ``-> 3``, ``(N, in_dim) -> (N, 3)``."""

    def __init__(self, in_dim, hidden):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
            nn.ReLU(), nn.Linear(hidden, 3))

    def forward(self, x):
        return self.layers(x)


class ImplicitDecoder(nn.Module):
    """The authors' implicit neural representation as it computes (module docstring):
    ``(B, C, h, w) -> (B, 3, h, w)``, each pixel from the MLP of its 3x3 neighbourhood of features
    (zero-padded, channel-major), 18 zeros and the two cell terms."""

    def __init__(self, num_feat, hidden):
        super().__init__()
        self.imnet = MLP(9 * num_feat + 20, hidden)

    def forward(self, feat):
        b, _, h, w = feat.shape
        neighbourhoods = F.unfold(feat, 3, padding=1).transpose(1, 2)
        # 2 / side rounded to float32, times side in float32: 2, or a float32 step from it.
        cells = torch.stack(
            [torch.full((), 2 / side, dtype=torch.float32, device=feat.device) * side for side in (h, w)])
        extra = torch.cat([feat.new_zeros(18), cells.to(feat.dtype)]).expand(b, h * w, 20)
        out = self.imnet(torch.cat([neighbourhoods, extra], 2).reshape(b * h * w, -1))
        return out.reshape(b, h, w, 3).permute(0, 3, 1, 2)


def _spans(size, win):
    """Windows along one side: ``[(start, first pixel it owns, is the edge window)]``; a grid from 0,
    then, where the grid does not reach the end, one flush with it that owns what the grid leaves."""
    grid = size // win * win
    spans = [(start, start, False) for start in range(0, grid, win)]
    return spans + [(size - win, grid, True)] if grid < size else spans


def _check_options(dim, num_blocks, heads, ffn_expansion_factor, inr_hidden, win_size):
    if dim < 2 or dim % 2:
        raise InvalidOption(f'NeRDRain: dim must be even and positive, got {dim}')
    for name, value in (('num_blocks', num_blocks), ('heads', heads)):
        if len(value) != 3 or min(value) < 1:
            raise InvalidOption(f'NeRDRain: {name} must be three positive integers, got {value}')
    for width, num_heads in zip((dim, 2 * dim, 4 * dim), heads):
        if width % num_heads:
            raise InvalidOption(f'NeRDRain: heads {list(heads)} must divide the levels\' {dim}, {2 * dim}, '
                                f'{4 * dim} channels')
    if int(dim * ffn_expansion_factor) < 1:
        raise InvalidOption(f'NeRDRain: ffn_expansion_factor must leave at least one hidden channel, '
                            f'got {ffn_expansion_factor}')
    if inr_hidden < 1:
        raise InvalidOption(f'NeRDRain: inr_hidden must be positive, got {inr_hidden}')
    if win_size < SIZE_MULTIPLE or win_size % SIZE_MULTIPLE:
        raise InvalidOption(f'NeRDRain: win_size must be a positive multiple of {SIZE_MULTIPLE}, got {win_size}')


@ARCH_REGISTRY.register()
class NeRDRain(nn.Module):
    """NeRD-Rain: ``(B, 3, H, W) -> (B, 3, H, W)``, any ``H, W``, in the authors' test windows.

    Args:
        dim (int): channels of the first U-Net level (even): 48 NeRD-Rain, 32 NeRD-Rain-S. Default: 48.
        num_blocks (list[int]): transformer blocks at each U-Net level. Default: (2, 3, 3).
        heads (list[int]): attention heads at each level (dividing its ``dim``, ``2 dim``, ``4 dim``
            channels). Default: (1, 2, 4).
        ffn_expansion_factor (float): the feed-forward networks' hidden channels per channel. Default: 2.66.
        inr_hidden (int): width of the implicit representations' MLPs (fixed by the authors). Default: 256.
        win_size (int): side of the test windows, a multiple of 16 (the authors' ``--win_size``). Default: 256.

    The defaults are the authors' NeRD-Rain; the module and parameter names are those of their state
    dict, so their files load as they are. Three parameters do not reach the result:
    ``output_small`` and ``output_mid`` give the authors' coarser outputs, and
    ``reduce_chan_level1_max3`` is never used by them either (the last pass reuses
    ``reduce_chan_level1_max2``, as theirs does); distributed training needs ``find_unused_parameters``.

    No ``size_multiple``: the windows are ``win_size`` wide and flush with the image's edges, and
    images under one window are padded inside ``forward``, so every size runs as the authors' script
    runs it; padding to multiples of 16 beforehand would move the windows and change the result.
    For the same reason the option is not called ``window_size``, which the plugin's inference would
    take for a size multiple.
    """

    export_fixed_size = "its test windows depend on the image's size"

    def __init__(self,
                 dim=48,
                 num_blocks=(2, 3, 3),
                 heads=(1, 2, 4),
                 ffn_expansion_factor=2.66,
                 inr_hidden=256,
                 win_size=256):
        super().__init__()
        _check_options(dim, num_blocks, heads, ffn_expansion_factor, inr_hidden, win_size)
        self.win_size = win_size
        levels = [(width, h, n, ffn_expansion_factor)
                  for width, h, n in zip((dim, 2 * dim, 4 * dim), heads, num_blocks)]
        self._add_scale('small', SMALL_PASSES, levels)
        self.output_small = _conv(dim, 3, 3)
        self.INR = ImplicitDecoder(dim, inr_hidden)
        self._add_scale('mid', MID_PASSES, levels)
        self.output_mid = _conv(dim, 3, 3)
        self.output_mid_context = _conv(dim, dim, 3)
        self.INR2 = ImplicitDecoder(dim, inr_hidden)
        self._add_scale('max', MAX_PASSES, levels)
        self.output_max = _conv(dim, 3, 3)
        self.output_max_context1 = _conv(dim, dim, 3)
        self.output_max_context2 = _conv(dim, dim, 3)
        self.BF1, self.BF2, self.BF3 = (Fusion(4 * dim) for _ in range(3))
        self.upsmall2mid1 = PixelResample(4 * dim, down=False)
        self.upsmall2mid2 = PixelResample(2 * dim, down=False)
        self.upmid2max1 = PixelResample(4 * dim, down=False)
        self.upmid2max2 = PixelResample(2 * dim, down=False)

    def _add_scale(self, scale, passes, levels):
        """The patch embedding and U-Net passes of one scale, registered in the authors' order;
        ``levels``: ``(channels, heads, blocks, expansion)`` of each U-Net level."""
        level1, level2, level3 = levels
        dim = level1[0]
        setattr(self, f'patch_embed_{scale}', PatchEmbed(dim))
        layers = (
            ('encoder_level1', False, lambda: _blocks(*level1)),
            ('down1_2', True, lambda: PixelResample(dim, down=True)),
            ('encoder_level2', False, lambda: _blocks(*level2)),
            ('down2_3', True, lambda: PixelResample(2 * dim, down=True)),
            ('latent', False, lambda: _blocks(*level3)),
            ('up3_2', True, lambda: PixelResample(4 * dim, down=False)),
            ('reduce_chan_level2', False, lambda: _conv(4 * dim, 2 * dim, 1)),
            ('decoder_level2', False, lambda: _blocks(*level2)),
            ('up2_1', True, lambda: PixelResample(2 * dim, down=False)),
            ('reduce_chan_level1', False, lambda: _conv(2 * dim, dim, 1)),
            ('decoder_level1', False, lambda: _blocks(*level1)),
        )
        for kind, is_resampler, make in layers:
            for stage_suffix, resampler_suffix in passes:
                setattr(self, f'{kind}_{resampler_suffix if is_resampler else stage_suffix}', make())

    def _layer(self, kind, suffix):
        return getattr(self, f'{kind}_{suffix}')

    def _encode(self, x, names):
        """One pass's encoder: ``(N, dim, h, w) -> [(N, dim, h, w), (N, 2 dim, h/2, w/2), (N, 4 dim, h/4, w/4)]``."""
        stage, resampler = names
        enc1 = self._layer('encoder_level1', stage)(x)
        enc2 = self._layer('encoder_level2', stage)(self._layer('down1_2', resampler)(enc1))
        return enc1, enc2, self._layer('latent', stage)(self._layer('down2_3', resampler)(enc2))

    def _decode(self, latent, enc2, enc1, names, reduce1=None):
        """One pass's decoder, ``(latent, encoder skips) -> (N, dim, h, w)``; ``reduce1``: the suffix of
        the first level's 1x1 reduction, when it is another pass's."""
        stage, resampler = names
        up = self._layer('up3_2', resampler)(latent)
        dec2 = self._layer('decoder_level2', stage)(self._layer('reduce_chan_level2', stage)(torch.cat([up, enc2], 1)))
        up = self._layer('up2_1', resampler)(dec2)
        reduced = self._layer('reduce_chan_level1', reduce1 or stage)(torch.cat([up, enc1], 1))
        return self._layer('decoder_level1', stage)(reduced)

    def restore_windows(self, x):
        """The authors' network on a batch of windows, ``(N, 3, h, w)`` with ``h, w`` multiples of 16:
        its full-scale output, ``(N, 3, h, w)``."""
        mid_in, small_in = _down(x), _down(_down(x))
        small_enc1, small_enc2, small_latent = self._encode(self.patch_embed_small(small_in), SMALL_PASSES[0])
        mid_img = mid_in + _up(small_in + self.INR(self.upsmall2mid2(self.upsmall2mid1(small_latent))))
        mid_enc1, mid_enc2, mid_latent1 = self._encode(self.patch_embed_mid(mid_img), MID_PASSES[0])
        max_img = x + _up(mid_img + self.INR2(self.upmid2max2(self.upmid2max1(mid_latent1))))

        enc1, enc2, latent1 = self._encode(self.patch_embed_max(max_img), MAX_PASSES[0])
        dec = self._decode(latent1, enc2, enc1, MAX_PASSES[0])
        enc1, enc2, latent2 = self._encode(self.output_max_context1(dec), MAX_PASSES[1])
        dec = self._decode(latent2, enc2, enc1, MAX_PASSES[1])
        enc1, enc2, latent3 = self._encode(self.output_max_context2(dec), MAX_PASSES[2])

        dec = self._decode(mid_latent1 + _down(self.BF1(latent1, latent2)), mid_enc2, mid_enc1, MID_PASSES[0])
        mid_enc1, mid_enc2, mid_latent2 = self._encode(self.output_mid_context(dec), MID_PASSES[1])
        small_dec = self._decode(small_latent + _down(self.BF3(mid_latent1, mid_latent2)), small_enc2, small_enc1,
                                 SMALL_PASSES[0])
        mid_dec = self._decode(mid_latent2 + _down(self.BF2(latent2, latent3)), mid_enc2, mid_enc1,
                               MID_PASSES[1]) + _up(small_dec)
        dec = self._decode(latent3, enc2, enc1, MAX_PASSES[2], reduce1=MAX_PASSES[1][0]) + _up(mid_dec)
        return self.output_max(dec) + x

    def forward(self, rainy):
        height, width = rainy.shape[-2:]
        win = self.win_size
        if height < win or width < win:
            return self.forward(pad_to_size(rainy, max(height, win), max(width, win)))[..., :height, :width]
        rows, cols = _spans(height, win), _spans(width, win)
        # The authors' batch order (for one image): the grid, the right column, the bottom row, the corner.
        tiles = sorted(
            product(range(len(rows)), range(len(cols))), key=lambda tile: (rows[tile[0]][2], cols[tile[1]][2]))
        windows = torch.cat([rainy[..., rows[i][0]:rows[i][0] + win, cols[j][0]:cols[j][0] + win] for i, j in tiles])
        outs = dict(zip(tiles, self.restore_windows(windows).chunk(len(tiles))))
        bands = []
        for i, (top, own_top, _) in enumerate(rows):
            pieces = [outs[i, j][..., own_top - top:, own_left - left:] for j, (left, own_left, _) in enumerate(cols)]
            bands.append(torch.cat(pieces, 3))
        return torch.cat(bands, 2)
