"""Whole-image inference for any restorer: padding, overlapping tiles, x8 self-ensemble.

Images are ``(B, C, H, W)``; ``net`` maps them to the same spatial size. ``restore`` composes
the three: tiles bound memory, padding lets networks that need sizes divisible by ``multiple``
take any size, and the self-ensemble averages the eight flips and transposes.
"""
import math

from mh2f_plugin.archs.arch_util import pad_to_multiple
from mh2f_plugin.errors import NotARestorerError


def size_multiple(net):
    """The multiple that ``net`` needs input sizes to be: its ``size_multiple`` (MH2FNet: 4), else
    the least common multiple of its modules' integer ``window_size`` (windowed transformers such
    as BasicSR's SwinIR, which do not pad), else 1."""
    if getattr(net, 'size_multiple', None):
        return net.size_multiple
    return math.lcm(*(m.window_size for m in net.modules() if isinstance(getattr(m, 'window_size', None), int)))


def padded_size(size, multiple):
    """``size`` rounded up to a multiple of ``multiple``."""
    return -(-size // multiple) * multiple


def _size(x):
    return f'{x.shape[-1]}x{x.shape[-2]} image ({x.shape[1]} channels)'


def checked_output(net, out, img):
    """``out``, the output of ``net`` for ``img``; ``NotARestorerError`` naming the network and both
    sizes unless it has ``img``'s shape (``(B, C, H, W)``; a x4 super-resolution network does not)."""
    if tuple(out.shape) != tuple(img.shape):
        raise NotARestorerError(f'{type(net).__name__} returned a {_size(out)} for a {_size(img)}; deraining needs '
                                "a network whose output has its input's size (not a super-resolution one)")
    return out


def pad_forward(net, img, multiple):
    """``net(img)`` with ``img`` padded to multiples of ``multiple`` (``pad_to_multiple``), cropped back;
    ``NotARestorerError`` when the network changes the size."""
    height, width = img.shape[-2:]
    padded = pad_to_multiple(img, multiple)
    return checked_output(net, net(padded), padded)[..., :height, :width]


def tile_spans(size, tile, overlap, multiple):
    """Tiles along one axis: ``[(start, stop, own_start, own_stop)]``.

    Tiles start at multiples of ``multiple`` (so a network's down-sampling grid matches the
    whole image's) and step by ``tile - overlap`` rounded down to that multiple; the last one
    ends at ``size``. Each output pixel is owned by one tile, the boundary lying mid-way in the
    overlap, so every pixel keeps at least ``overlap // 2`` pixels of context where it can.
    """
    if tile >= size:
        return [(0, size, 0, size)]
    stride = max(multiple, (tile - overlap) // multiple * multiple)
    last = (size - tile) // multiple * multiple
    starts = list(range(0, last, stride)) + [last]
    stops = [start + tile for start in starts[:-1]] + [size]
    owns = [0] + [(next_start + stop) // 2 for next_start, stop in zip(starts[1:], stops[:-1])] + [size]
    return [(start, stop, own_start, own_stop)
            for start, stop, own_start, own_stop in zip(starts, stops, owns[:-1], owns[1:])]


def tiled_forward(net, img, tile, overlap, multiple=1, on_tile=None):
    """``net(img)`` computed tile by tile (``tile`` pixels square, ``overlap`` pixels shared);
    ``on_tile(done, total)`` is called after each tile."""
    rows = tile_spans(img.shape[-2], tile, overlap, multiple=multiple)
    cols = tile_spans(img.shape[-1], tile, overlap, multiple=multiple)
    out, done = None, 0
    for top, bottom, own_top, own_bottom in rows:
        for left, right, own_left, own_right in cols:
            result = pad_forward(net, img[..., top:bottom, left:right], multiple)
            if out is None:
                out = result.new_empty(result.shape[:2] + img.shape[-2:])
            out[..., own_top:own_bottom, own_left:own_right] = \
                result[..., own_top - top:own_bottom - top, own_left - left:own_right - left]
            done += 1
            if on_tile is not None:
                on_tile(done, len(rows) * len(cols))
    return out


def self_ensemble(forward, img):
    """The mean of ``forward`` over the 8 flips/transposes of ``img``, each mapped back."""
    total = 0
    for transpose in (False, True):
        for flips in ((), (-1, ), (-2, ), (-2, -1)):
            view = img.transpose(-2, -1) if transpose else img
            view = view.flip(flips) if flips else view
            out = forward(view)
            out = out.flip(flips) if flips else out
            total = total + (out.transpose(-2, -1) if transpose else out)
    return total / 8


def restore(net, img, tile=None, tile_overlap=32, multiple=1, ensemble=False, on_tile=None):
    """``net`` applied to a whole image of any size; see the module docstring. With ``tile``,
    ``on_tile(done, total)`` follows the tiles (of one pass of the self-ensemble)."""

    def forward(x):
        if tile:
            return tiled_forward(net, x, tile, overlap=tile_overlap, multiple=multiple, on_tile=on_tile)
        return pad_forward(net, x, multiple)

    return self_ensemble(forward, img) if ensemble else forward(img)
