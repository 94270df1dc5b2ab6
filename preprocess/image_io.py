"""Reading photos: RGB float32 pixels with the file named in every error.

Shared by preprocess/prepare_data.py (training data) and the reconstruct
command. The EXIF Orientation tag (phone photos) is applied: the pixels, and
every size reported from them, are the photo as it is displayed.

API
  load_image(path) -> LoadedImage(image, path, converted_from): [H,W,3]
      float32 RGB in [0,1] plus what the file held before the RGB conversion
      ('L', 'RGBA', ...); ValueError naming the file when it cannot be read.
  read_image(path) -> the image alone.
  is_grayscale_mode(mode) -> whether converted_from was a grayscale mode.
"""

import collections
import os

import numpy as np
from PIL import Image
from PIL import ImageOps

LoadedImage = collections.namedtuple('LoadedImage',
                                     ['image', 'path', 'converted_from'])
LoadedImage.__doc__ = """A photo read by `load_image`.

  image: [H,W,3] float32 RGB in [0,1].
  path: the file.
  converted_from: None for an 8-bit RGB file, else the PIL mode it was
    converted from: 'L'/'I;16'/'1'/... (grayscale), 'RGBA', 'P', 'CMYK', ...
"""

GRAYSCALE_MODES = ('1', 'L', 'LA', 'I', 'I;16', 'I;16B', 'I;16L', 'F')


def load_image(path):
  """Reads a photo as RGB float32 in [0,1]; see LoadedImage.

  Grayscale, palette, alpha and CMYK files are converted to RGB (alpha is
  dropped) and `converted_from` says so. 16-bit and float grayscale images
  are scaled by their type's range. The EXIF Orientation tag, when present,
  is applied (ImageOps.exif_transpose), so the image is the displayed one.

  Raises:
    ValueError: the file is missing, empty, not an image PIL can decode,
      truncated, or has no pixels; the message names the file.
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise ValueError('%s: no such file' % path)
  if os.path.getsize(path) == 0:
    raise ValueError('%s: empty file (0 bytes)' % path)
  try:
    with Image.open(path) as opened:
      opened.load()
      im = ImageOps.exif_transpose(opened)  # a copy only when rotated
      mode = im.mode
      if mode in ('I', 'I;16', 'I;16B', 'I;16L', 'F'):
        arr = np.asarray(im, np.float64)
        top = 65535.0 if mode.startswith('I') else 1.0
        if mode == 'I' and arr.max() <= 255:
          top = 255.0
        gray = np.clip(arr / top, 0.0, 1.0).astype(np.float32)
        image = np.repeat(gray[..., None], 3, axis=-1)
      else:
        image = np.array(im.convert('RGB') if mode != 'RGB' else im,
                         np.float32)
        image /= 255.0  # in place: a 24-Mpx photo is 288 MB per copy
  except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
    raise ValueError('%s: not a readable image (%s: %s)' %
                     (path, type(e).__name__, e)) from e
  if image.ndim != 3 or image.shape[0] == 0 or image.shape[1] == 0:
    raise ValueError('%s: image has no pixels (shape %s)' %
                     (path, image.shape))
  converted = None if mode == 'RGB' else mode
  return LoadedImage(np.ascontiguousarray(image), path, converted)


def read_image(path):
  """[H,W,3] float32 RGB in [0,1] of the photo at `path` (see load_image)."""
  return load_image(path).image


def is_grayscale_mode(mode):
  """True if a LoadedImage.converted_from mode holds a grayscale image."""
  return mode in GRAYSCALE_MODES
