"""Square face crops around landmarks, and the map back to photo pixels.

Crop: a square of side CROP_SCALE x the larger side of the landmarks' box,
centred CROP_SHIFT x that side above the box centre, resized to `size`. The
constants place a face in the crop as preprocess/synthetic_data.py places its
renders (landmarks span ~61% of the side, their box centre ~10% of the side
below the image centre), so real and synthetic training images agree. The
paper follows Chen20, which crops around the landmarks to 300 px and
resizes to 224; the exact margins of its (unreleased) preprocessing are not
known. Parts of the square outside the photo are black.

Coordinates: x, y pixels with the origin at the image's top-left CORNER and
pixel (row r, col c) centred at (c + 0.5, r + 0.5) on both sides.
"""

import collections

import cv2
import numpy as np

# Crop side / larger side of the landmark box, and the shift of the crop
# centre above the box centre as a fraction of the larger side (see the
# module docstring).
CROP_SCALE = 1.0 / 0.61
CROP_SHIFT = 0.16


class CropTransform(
    collections.namedtuple('CropTransform', ['left', 'top', 'scale'])):
  """Maps crop pixels to the original image: x = left + scale * u.

  left, top: original-image position of the crop's top-left corner (pixels);
  scale: original pixels per crop pixel. Points use the corner-origin
  convention of the module docstring on both sides.
  """
  __slots__ = ()

  def to_original(self, points):
    """[..., 2] crop x, y -> original-image x, y (float32)."""
    points = np.asarray(points, np.float32)
    return points * self.scale + np.array([self.left, self.top], np.float32)

  def to_crop(self, points):
    """[..., 2] original-image x, y -> crop x, y (float32)."""
    points = np.asarray(points, np.float32)
    return (points - np.array([self.left, self.top], np.float32)) / self.scale

  def matrix(self):
    """[3,3] float64 homogeneous matrix taking crop (x, y, 1) to original."""
    return np.array([[self.scale, 0.0, self.left], [0.0, self.scale, self.top],
                     [0.0, 0.0, 1.0]])


def crop_box(landmarks, crop_scale=CROP_SCALE, crop_shift=CROP_SHIFT):
  """(left, top, side) integer pixels of the square crop for [68,2] points."""
  landmarks = np.asarray(landmarks, np.float64)
  if landmarks.ndim != 2 or landmarks.shape[1] != 2 or not len(landmarks):
    raise ValueError('face_crop.crop_box: landmarks must be [N,2], got %s'
                     % (landmarks.shape,))
  if not np.all(np.isfinite(landmarks)):
    raise ValueError('face_crop.crop_box: landmarks are not finite')
  lo, hi = landmarks.min(0), landmarks.max(0)
  extent = max(float(np.max(hi - lo)), 1.0)
  side = max(int(round(extent * crop_scale)), 1)
  cx = 0.5 * (lo[0] + hi[0])
  cy = 0.5 * (lo[1] + hi[1]) - crop_shift * extent
  return int(round(cx - side / 2.0)), int(round(cy - side / 2.0)), side


def crop_face(image, landmarks, size=224, crop_scale=CROP_SCALE,
              crop_shift=CROP_SHIFT):
  """Square face crop around the landmarks, resized to size x size.

  Args:
    image: [H,W,3] float32 in [0,1] (or uint8).
    landmarks: [68,2] (any [N,2]) x, y pixels in `image`.
    size: python int, side of the output crop.
    crop_scale, crop_shift: see the module docstring.

  Returns:
    crop: [size,size,3] float32 in [0,1]; black outside the photo.
    landmarks_in_crop: [N,2] float32 x, y pixels of the crop.
    transform: CropTransform taking crop pixels back to `image` pixels.
  """
  image = np.asarray(image)
  if image.ndim != 3 or image.shape[-1] != 3:
    raise ValueError('face_crop.crop_face: image must be [H,W,3], got %s'
                     % (image.shape,))
  if image.dtype == np.uint8:
    image = image.astype(np.float32) / 255.0
  image = image.astype(np.float32, copy=False)
  size = int(size)
  if size <= 0:
    raise ValueError('face_crop.crop_face: size must be > 0, got %d' %
                     size)
  left, top, side = crop_box(landmarks, crop_scale, crop_shift)
  h, w = image.shape[:2]
  # Pad the part of the square that lies outside the photo with black.
  region = np.zeros([side, side, 3], np.float32)
  x0, y0 = max(left, 0), max(top, 0)
  x1, y1 = min(left + side, w), min(top + side, h)
  if x1 > x0 and y1 > y0:
    region[y0 - top:y1 - top, x0 - left:x1 - left] = image[y0:y1, x0:x1]
  # cv2.resize maps pixel centres to pixel centres (u + 0.5) * side / size,
  # so the corner-origin mapping x = left + u * side / size is exact.
  interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
  crop = cv2.resize(region, (size, size), interpolation=interp)
  crop = np.clip(crop, 0.0, 1.0).astype(np.float32)
  transform = CropTransform(float(left), float(top), side / float(size))
  return crop, transform.to_crop(landmarks), transform
