"""Decoding images into BasicSR's in-memory format, and writing results back as they came.

Every image becomes ``float32`` ``(H, W, 3)`` BGR in ``[0, 1]`` (BasicSR's convention; its
``img2tensor(bgr2rgb=True)`` makes RGB tensors): grayscale is repeated to three channels, an
alpha channel is dropped, and 16-bit images are divided by 65535 (not truncated to 8 bits as
``cv2.IMREAD_COLOR`` would). A photo's EXIF orientation is applied, so images are upright as
viewers show them. ``from_float_bgr`` goes back: the bit depth, gray or colour, and the alpha
channel of the original. Truncated PNG and JPEG files are refused (OpenCV decodes them partly,
silently); bytes after a complete image (phone "motion photos") are accepted.
"""
import contextlib
import cv2
import io
import numpy as np
import os
import struct
from PIL import Image

from mh2f_plugin.errors import UserError
from mh2f_plugin.utils.atomic_write import write_bytes_atomically

JPEG_START, JPEG_END = b'\xff\xd8', b'\xff\xd9'
PNG_END = b'IEND\xaeB`\x82'
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
DEFAULT_PILLOW_LIMIT = Image.MAX_IMAGE_PIXELS  # Pillow warns above it and refuses above twice it

EXIF_ORIENTATION = 0x0112
# EXIF orientation -> (transpose first, then np.rot90 turns counter-clockwise, then flip left-right)
ORIENTATIONS = {
    2: (False, 0, True),
    3: (False, 2, False),
    4: (False, 2, True),
    5: (True, 0, False),
    6: (False, 3, False),
    7: (True, 2, False),
    8: (False, 1, False)
}


class ImageReadError(UserError, ValueError):
    """An image file that is missing, unreadable, truncated or not an image."""


class ImageWriteError(UserError, OSError):
    """A result that could not be written (folder missing or read-only, disk full, unknown format)."""


def _jpeg_scan_start(data):
    """The offset of the main image's first scan (after its SOS header), walking the marker
    segments from the start (so that an EXIF thumbnail's own markers are skipped), or None."""
    offset = 2
    while offset + 4 <= len(data):
        if data[offset] != 0xFF:
            return None
        marker = data[offset + 1]
        if marker == 0xFF:  # fill byte
            offset += 1
            continue
        length = struct.unpack('>H', data[offset + 2:offset + 4])[0]
        if marker == 0xDA:  # start of scan
            return offset + 2 + length
        offset += 2 + length
    return None


def _truncation(data):
    """Why ``data`` is a truncated PNG or JPEG (OpenCV decodes those partly, silently), or None.

    A PNG must hold its IEND chunk; a JPEG an end-of-image marker after its first scan (entropy
    coded data never contains one). Bytes after either are allowed."""
    if data.startswith(PNG_SIGNATURE) and PNG_END not in data:
        return 'truncated PNG (no IEND chunk)'
    if data.startswith(JPEG_START):
        scan = _jpeg_scan_start(data)
        if scan is None or data.find(JPEG_END, scan) < 0:
            return 'truncated JPEG (no end-of-image marker)'
    return None


def exif_orientation(data):
    """The EXIF orientation (1-8) of encoded image bytes; 1 when there is none."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            return int(img.getexif().get(EXIF_ORIENTATION, 1))
    except (OSError, ValueError, SyntaxError):
        return 1


def upright(img, orientation):
    """``img`` (``(H, W, ...)``) turned as EXIF ``orientation`` says, to how viewers show it."""
    if orientation not in ORIENTATIONS:
        return img
    transpose, turns, flip = ORIENTATIONS[orientation]
    if transpose:
        img = np.swapaxes(img, 0, 1)
    img = np.rot90(img, turns)
    return np.ascontiguousarray(img[:, ::-1] if flip else img)


def max_pixels():
    """The largest image, in pixels, that is decoded: ``$MH2F_MAX_IMAGE_PIXELS`` (0: no limit), else
    Pillow's decompression-bomb threshold (178,956,970 pixels, e.g. 13,000 x 13,000)."""
    value = os.environ.get('MH2F_MAX_IMAGE_PIXELS', '')
    if not value.isdigit():
        if value:
            raise ImageReadError(f'MH2F_MAX_IMAGE_PIXELS={value!r}: must be a whole number of pixels (0: no limit)')
        return 2 * DEFAULT_PILLOW_LIMIT
    return int(value)


@contextlib.contextmanager
def _pillow_without_limit():
    """Pillow's own bomb guard lifted, so that ``check_pixels`` applies the one limit of this package."""
    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def check_pixels(width, height, name):
    """``ImageReadError`` when an image of ``width x height`` is over ``max_pixels()``."""
    limit = max_pixels()
    if limit and width * height > limit:
        raise ImageReadError(f'{name}: {width}x{height} is {width * height:,} pixels, over the limit of {limit:,} '
                             '(a decompression bomb, or a photo too large for memory); raise the limit with '
                             'MH2F_MAX_IMAGE_PIXELS=N (0: none), or downscale the photo')


def header_size(source, name):
    """``(width, height, samples per pixel)`` from the header of an image (a path or bytes), checked
    against ``max_pixels()`` before anything is decoded; None where Pillow cannot read the header."""
    try:
        with _pillow_without_limit(), Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
            width, height = img.size
            bands = len(img.getbands())
    except (OSError, ValueError, SyntaxError):  # not an image Pillow reads: OpenCV decides below
        return None
    check_pixels(width, height, name)
    return width, height, bands


def image_header(path):
    """``(width, height, samples per pixel)`` from an image file's header, within the pixel limit."""
    header = header_size(path, path)
    if header is None:
        raise ImageReadError(f'{path}: not a readable image (no header Pillow knows)')
    return header


def decode_raw(data, name):
    """Encoded image bytes -> the array as stored (gray, BGR or BGRA; 8 or 16 bits); checked."""
    if not data:
        raise ImageReadError(f'{name}: empty file')
    header_size(data, name)
    problem = _truncation(data)
    if problem:
        raise ImageReadError(f'{name}: {problem}')
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ImageReadError(f'{name}: not a readable image (corrupt or unsupported format)')
    if data.startswith(JPEG_START) or data[:4] in (b'II*\x00', b'MM\x00*') or data[8:12] == b'WEBP':
        img = upright(img, exif_orientation(data))
    return img


def decode_image(data, name):
    """Encoded image bytes -> float32 ``(H, W, 3)`` BGR in ``[0, 1]``; ``name`` is used in errors."""
    return to_float_bgr(decode_raw(data, name), name)


def to_float_bgr(img, name='image'):
    """A decoded OpenCV array (gray, BGR or BGRA; uint8, uint16 or float) -> float32 BGR in [0, 1]."""
    if img.dtype == np.uint8:
        img = img.astype(np.float32) / 255
    elif img.dtype == np.uint16:
        img = img.astype(np.float32) / 65535
    elif img.dtype in (np.float32, np.float64):
        img = img.astype(np.float32)
    else:
        raise ImageReadError(f'{name}: unsupported pixel type {img.dtype}')
    if img.ndim == 2:
        img = img[..., None]
    channels = img.shape[2]
    if channels == 1:
        return np.repeat(img, 3, axis=2)
    if channels in (3, 4):
        return np.ascontiguousarray(img[..., :3])
    raise ImageReadError(f'{name}: {channels} channels; expected 1 (gray), 3 (color) or 4 (with alpha)')


def read_bytes(path):
    """The bytes of an image file; ``ImageReadError`` naming the file if it cannot be read."""
    try:
        with open(path, 'rb') as f:
            return f.read()
    except OSError as error:
        raise ImageReadError(f'{path}: cannot read: {error.strerror}') from error


def read_image(path):
    """Reads an image file as float32 ``(H, W, 3)`` BGR in ``[0, 1]``."""
    return decode_image(read_bytes(path), path)


def from_float_bgr(img, like):
    """A float BGR ``(H, W, 3)`` result in [0, 1] as an array like the decoded ``like``: its bit
    depth (8 or 16), gray or colour, and its alpha channel carried over unchanged."""
    channels = 1 if like.ndim == 2 else like.shape[2]
    if channels == 1:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    peak = 65535 if like.dtype == np.uint16 else 255
    out = np.clip(np.round(img * peak), 0, peak).astype(np.uint16 if peak == 65535 else np.uint8)
    if channels == 4:
        out = np.concatenate([out, like[..., 3:].astype(out.dtype)], 2)
    return out.reshape(like.shape[:2]) if like.ndim == 2 else out


def write_image(path, img):
    """Writes ``img`` to ``path`` (format from the extension) through a temporary file renamed into
    place, so that a failed write leaves nothing; ``ImageWriteError`` naming the file otherwise."""
    extension = os.path.splitext(path)[1] or '.png'
    try:
        ok, buffer = cv2.imencode(extension, img)
    except cv2.error as error:
        raise ImageWriteError(f'{path}: cannot encode as {extension} ({error.err})') from error
    if not ok:
        raise ImageWriteError(f'{path}: cannot encode as {extension}')
    try:
        write_bytes_atomically(path, buffer.tobytes())
    except OSError as error:
        raise ImageWriteError(f'{path}: cannot write: {error.strerror}') from error
