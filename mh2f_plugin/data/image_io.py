"""Decoding dataset images into BasicSR's in-memory format.

Every image becomes ``float32`` ``(H, W, 3)`` BGR in ``[0, 1]`` (BasicSR's convention; its
``img2tensor(bgr2rgb=True)`` makes RGB tensors): grayscale is repeated to three channels, an
alpha channel is dropped, and 16-bit images are divided by 65535 (not truncated to 8 bits as
``cv2.IMREAD_COLOR`` would).
"""
import cv2
import numpy as np

JPEG_START, JPEG_END = b'\xff\xd8', b'\xff\xd9'
PNG_END = b'IEND\xaeB`\x82'
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


class ImageReadError(ValueError):
    """An image file that is missing, unreadable, truncated or not an image."""


def _truncation(data):
    """Why ``data`` is a truncated PNG or JPEG (OpenCV decodes those partly, silently), or None."""
    if data.startswith(PNG_SIGNATURE) and PNG_END not in data[-64:]:
        return 'truncated PNG (no IEND chunk)'
    if data.startswith(JPEG_START) and not data.rstrip(b'\x00').endswith(JPEG_END):
        return 'truncated JPEG (no end-of-image marker)'
    return None


def decode_raw(data, name):
    """Encoded image bytes -> the array as stored (gray, BGR or BGRA; 8 or 16 bits); checked."""
    if not data:
        raise ImageReadError(f'{name}: empty file')
    problem = _truncation(data)
    if problem:
        raise ImageReadError(f'{name}: {problem}')
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ImageReadError(f'{name}: not a readable image (corrupt or unsupported format)')
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
