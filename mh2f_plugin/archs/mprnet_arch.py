"""MPRNet: Multi-Stage Progressive Image Restoration (Zamir, Arora, Khan, Hayat, Khan, Yang, Shao; CVPR 2021).

The authors' deraining network (``Deraining/MPRNet.py`` of swz30/MPRNet), a comparison baseline.
Three stages restore the image in turn, each on larger pieces of it. The building block is the
channel-attention block (CAB): two 3x3 convolutions with a PReLU between, then squeeze-and-excitation
over its whole input, plus the input.

* Stage 1 cuts the image into four quarters. One encoder (CABs at three scales, bilinear 2x
  down-sampling between) encodes each; the features of the left and right quarters are joined
  side by side, and a decoder (CABs, bilinear up-sampling, CAB-filtered skips) works on the top
  and bottom halves. A supervised attention module (SAM) makes a stage image from the decoder's
  output and uses it to weigh the features passed on.
* Stage 2 does the same on the two halves; its encoder also adds stage 1's encoder and decoder
  features (cross-stage feature fusion), and its decoder sees the whole image.
* Stage 3 keeps full resolution: three blocks of CABs and a convolution, each followed by stage 2's
  encoder and decoder features brought up to full size. A 3x3 convolution gives the residual that
  is added to the image: the result (the authors' ``restored[0]``).

The other two stage images, which the authors supervise in training, are not returned. All CABs
share one PReLU, as in the authors' code (one slope; the state dict lists it once per CAB).
Images are ``(B, 3, H, W)`` RGB in [0, 1]; the output has the input's shape and is not clamped.

H and W must be multiples of 8 (``size_multiple``). The authors' ``demo.py`` pads other images
at the bottom and right, by reflection, to the next multiple of 8 and crops the result back;
``forward`` does the same (``pad_to_multiple``: replication where an image is too small to
reflect, where their script stops), so the plugin's padding before it changes nothing. Every CAB
pools over its whole input, and stages 1 and 2 see quarters and halves with their own borders, so
the result depends on that padding, and tiles differ from the whole image.
"""
import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from mh2f_plugin.archs.arch_util import pad_to_multiple
from mh2f_plugin.errors import InvalidOption

SIZE_MULTIPLE = 8  # quarters, then two 2x down-samplings that must come back to the same size


def _halves(x, dim):
    """``x.chunk(2, dim)`` of an even size, as two slices (which an ONNX export keeps as slices)."""
    middle = x.shape[dim] // 2
    return x.narrow(dim, 0, middle), x.narrow(dim, middle, middle)


def _conv(in_ch, out_ch, kernel_size):
    return nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2, bias=False)


class ChannelAttention(nn.Module):
    """``x * sigmoid(conv(relu(conv(mean of x over H, W))))``, 1x1 convolutions ``C -> C / reduction -> C``;
    ``(B, C, H, W) -> (B, C, H, W)``."""

    def __init__(self, num_feat, reduction):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv_du = nn.Sequential(
            _conv(num_feat, num_feat // reduction, 1), nn.ReLU(inplace=True), _conv(num_feat // reduction, num_feat, 1),
            nn.Sigmoid())

    def forward(self, x):
        return x * self.conv_du(self.avg_pool(x))


class CAB(nn.Module):
    """Channel-attention block: ``x + CA(conv(act(conv(x))))``, ``(B, C, H, W) -> (B, C, H, W)``;
    ``act`` is the PReLU that the whole network shares."""

    def __init__(self, num_feat, kernel_size, reduction, act):
        super().__init__()
        self.CA = ChannelAttention(num_feat, reduction)
        self.body = nn.Sequential(_conv(num_feat, num_feat, kernel_size), act, _conv(num_feat, num_feat, kernel_size))

    def forward(self, x):
        return self.CA(self.body(x)) + x


def _cabs(num_feat, count, kernel_size, reduction, act):
    return nn.Sequential(*(CAB(num_feat, kernel_size, reduction, act) for _ in range(count)))


class SAM(nn.Module):
    """Supervised attention module, 1x1 convolutions: ``(x (B, C, H, W), image (B, 3, H, W)) ->
    (x + conv1(x) * sigmoid(conv3(stage)), stage)``, the stage image ``stage = image + conv2(x)``."""

    def __init__(self, num_feat):
        super().__init__()
        self.conv1 = _conv(num_feat, num_feat, 1)
        self.conv2 = _conv(num_feat, 3, 1)
        self.conv3 = _conv(3, num_feat, 1)

    def forward(self, x, image):
        stage_image = self.conv2(x) + image
        return self.conv1(x) * torch.sigmoid(self.conv3(stage_image)) + x, stage_image


class DownSample(nn.Module):
    """Bilinear 0.5x (2x2 means), then a 1x1 convolution: ``(B, in_ch, H, W) -> (B, out_ch, H/2, W/2)``."""

    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.down = nn.Sequential(
            nn.Upsample(scale_factor=0.5, mode='bilinear', align_corners=False), _conv(in_ch, out_ch, 1))

    def forward(self, x):
        return self.down(x)


class UpSample(nn.Module):
    """Bilinear 2x, then a 1x1 convolution: ``(B, in_ch, H, W) -> (B, out_ch, 2 H, 2 W)``."""

    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.up = nn.Sequential(
            nn.Upsample(scale_factor=2, mode='bilinear', align_corners=False), _conv(in_ch, out_ch, 1))

    def forward(self, x):
        return self.up(x)


class Encoder(nn.Module):
    """Two CABs at each of three scales (``C0 < C1 < C2`` channels), ``DownSample`` between:
    ``(B, C0, H, W) -> [(B, C0, H, W), (B, C1, H/2, W/2), (B, C2, H/4, W/4)]``.

    With ``csff``, each scale also adds 1x1 convolutions of the previous stage's encoder and decoder
    features at that scale (``forward(x, encoder_outs, decoder_outs)``).
    """

    def __init__(self, widths, kernel_size, reduction, act, csff):
        super().__init__()
        self.encoder_level1, self.encoder_level2, self.encoder_level3 = (
            _cabs(width, 2, kernel_size, reduction, act) for width in widths)
        self.down12 = DownSample(widths[0], widths[1])
        self.down23 = DownSample(widths[1], widths[2])
        if csff:
            self.csff_enc1, self.csff_enc2, self.csff_enc3 = (_conv(width, width, 1) for width in widths)
            self.csff_dec1, self.csff_dec2, self.csff_dec3 = (_conv(width, width, 1) for width in widths)

    def forward(self, x, encoder_outs=None, decoder_outs=None):
        enc1 = self._fused(self.encoder_level1(x), 1, encoder_outs, decoder_outs)
        enc2 = self._fused(self.encoder_level2(self.down12(enc1)), 2, encoder_outs, decoder_outs)
        enc3 = self._fused(self.encoder_level3(self.down23(enc2)), 3, encoder_outs, decoder_outs)
        return [enc1, enc2, enc3]

    def _fused(self, x, level, encoder_outs, decoder_outs):
        """``x`` plus the previous stage's features at ``level`` (1 to 3) when they are given."""
        if encoder_outs is None:
            return x
        fuse_enc, fuse_dec = getattr(self, f'csff_enc{level}'), getattr(self, f'csff_dec{level}')
        return x + fuse_enc(encoder_outs[level - 1]) + fuse_dec(decoder_outs[level - 1])


class Decoder(nn.Module):
    """Two CABs at each of three scales, coarsest first; ``UpSample`` plus a CAB of the encoder's
    features between: ``[e1, e2, e3]`` (as ``Encoder`` gives) ``-> [d1, d2, d3]`` of the same shapes."""

    def __init__(self, widths, kernel_size, reduction, act):
        super().__init__()
        self.decoder_level1, self.decoder_level2, self.decoder_level3 = (
            _cabs(width, 2, kernel_size, reduction, act) for width in widths)
        self.skip_attn1 = CAB(widths[0], kernel_size, reduction, act)
        self.skip_attn2 = CAB(widths[1], kernel_size, reduction, act)
        self.up21 = UpSample(widths[1], widths[0])
        self.up32 = UpSample(widths[2], widths[1])

    def forward(self, features):
        e1, e2, e3 = features
        d3 = self.decoder_level3(e3)
        d2 = self.decoder_level2(self.up32(d3) + self.skip_attn2(e2))
        d1 = self.decoder_level1(self.up21(d2) + self.skip_attn1(e1))
        return [d1, d2, d3]


class ORB(nn.Module):
    """Original-resolution block: ``x + conv(CABs(x))``, ``(B, C, H, W) -> (B, C, H, W)``."""

    def __init__(self, num_feat, kernel_size, reduction, act, num_cab):
        super().__init__()
        cabs = [CAB(num_feat, kernel_size, reduction, act) for _ in range(num_cab)]
        self.body = nn.Sequential(*cabs, _conv(num_feat, num_feat, kernel_size))

    def forward(self, x):
        return self.body(x) + x


class ORSNet(nn.Module):
    """Stage 3: three ORBs, each followed by 1x1 convolutions of stage 2's encoder and decoder
    features at one scale (full, half, quarter; brought to full size by ``UpSample``).
    ``(B, C, H, W)`` with ``C = widths[0] + scale_orsnetfeats`` ``-> (B, C, H, W)``."""

    def __init__(self, widths, num_feat, kernel_size, reduction, act, num_cab):
        super().__init__()
        self.orb1, self.orb2, self.orb3 = (ORB(num_feat, kernel_size, reduction, act, num_cab) for _ in range(3))
        self.up_enc1, self.up_dec1 = (UpSample(widths[1], widths[0]) for _ in range(2))
        self.up_enc2, self.up_dec2 = (
            nn.Sequential(UpSample(widths[2], widths[1]), UpSample(widths[1], widths[0])) for _ in range(2))
        self.conv_enc1, self.conv_enc2, self.conv_enc3 = (_conv(widths[0], num_feat, 1) for _ in range(3))
        self.conv_dec1, self.conv_dec2, self.conv_dec3 = (_conv(widths[0], num_feat, 1) for _ in range(3))

    def forward(self, x, encoder_outs, decoder_outs):
        x = self.orb1(x) + self.conv_enc1(encoder_outs[0]) + self.conv_dec1(decoder_outs[0])
        x = self.orb2(x) + self.conv_enc2(self.up_enc1(encoder_outs[1])) + self.conv_dec2(self.up_dec1(decoder_outs[1]))
        return self.orb3(x) + self.conv_enc3(self.up_enc2(encoder_outs[2])) + self.conv_dec3(
            self.up_dec2(decoder_outs[2]))


@ARCH_REGISTRY.register()
class MPRNet(nn.Module):
    """MPRNet (deraining): ``(B, 3, H, W) -> (B, 3, H, W)``, padded inside to multiples of 8.

    Args:
        n_feat (int): channels of the shallow features and of the U-Nets' first scale. Default: 40.
        scale_unetfeats (int): channels added at each coarser U-Net scale. Default: 20.
        scale_orsnetfeats (int): channels added in stage 3. Default: 16.
        num_cab (int): CABs in each of stage 3's three blocks. Default: 8.
        kernel_size (int): odd side of the CABs' and stage convolutions. Default: 3.
        reduction (int): the channel attention's squeeze factor. Default: 4.

    The defaults are the authors' deraining model; the module and parameter names are those of their
    state dict, so their files load as they are.
    """

    size_multiple = SIZE_MULTIPLE

    def __init__(self, n_feat=40, scale_unetfeats=20, scale_orsnetfeats=16, num_cab=8, kernel_size=3, reduction=4):
        super().__init__()
        if n_feat < 1 or scale_unetfeats < 0 or scale_orsnetfeats < 0 or num_cab < 0:
            raise InvalidOption(f'MPRNet: n_feat must be positive and scale_unetfeats, scale_orsnetfeats, num_cab '
                                f'not negative, got {n_feat}, {scale_unetfeats}, {scale_orsnetfeats}, {num_cab}')
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise InvalidOption(f'MPRNet: kernel_size must be odd and positive, got {kernel_size}')
        if not 1 <= reduction <= n_feat:
            raise InvalidOption(f'MPRNet: reduction must be between 1 and n_feat ({n_feat}), got {reduction}')
        widths = [n_feat + i * scale_unetfeats for i in range(3)]
        orsnet_feat = n_feat + scale_orsnetfeats
        act = nn.PReLU()
        self.shallow_feat1, self.shallow_feat2, self.shallow_feat3 = (
            nn.Sequential(_conv(3, n_feat, kernel_size), CAB(n_feat, kernel_size, reduction, act)) for _ in range(3))
        self.stage1_encoder = Encoder(widths, kernel_size, reduction, act, csff=False)
        self.stage1_decoder = Decoder(widths, kernel_size, reduction, act)
        self.stage2_encoder = Encoder(widths, kernel_size, reduction, act, csff=True)
        self.stage2_decoder = Decoder(widths, kernel_size, reduction, act)
        self.stage3_orsnet = ORSNet(widths, orsnet_feat, kernel_size, reduction, act, num_cab)
        self.sam12 = SAM(n_feat)
        self.sam23 = SAM(n_feat)
        self.concat12 = _conv(2 * n_feat, n_feat, kernel_size)
        self.concat23 = _conv(2 * n_feat, orsnet_feat, kernel_size)
        self.tail = _conv(orsnet_feat, 3, kernel_size)

    def forward(self, rainy):
        height, width = rainy.shape[-2:]
        x = pad_to_multiple(rainy, SIZE_MULTIPLE)
        stage2_encoded = []
        for half in _halves(x, 2):  # top, bottom; stage 1 encodes their left and right quarters
            left, right = (self.stage1_encoder(self.shallow_feat1(quarter)) for quarter in _halves(half, 3))
            enc1 = [torch.cat(pair, 3) for pair in zip(left, right)]
            dec1 = self.stage1_decoder(enc1)
            sam_feat, _ = self.sam12(dec1[0], half)
            stage2_in = self.concat12(torch.cat([self.shallow_feat2(half), sam_feat], 1))
            stage2_encoded.append(self.stage2_encoder(stage2_in, enc1, dec1))
        enc2 = [torch.cat(pair, 2) for pair in zip(*stage2_encoded)]
        dec2 = self.stage2_decoder(enc2)
        sam_feat, _ = self.sam23(dec2[0], x)
        stage3 = self.concat23(torch.cat([self.shallow_feat3(x), sam_feat], 1))
        out = self.tail(self.stage3_orsnet(stage3, enc2, dec2)) + x
        return out[..., :height, :width]
