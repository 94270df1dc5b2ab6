"""Reading photos, finding faces with 68 landmarks, square face crops.

Shared by coarse/prepare_data.py (training data) and the `reconstruct`
command (detail/reconstruct.py). dlib's HOG frontal face detector (upsample 1)
finds the faces and dlib's 68-point shape predictor (iBUG layout, the one the
coarse landmark loss uses) marks them. When the HOG detector finds nothing
(it misses many faces turned beyond ~45 degrees), dlib's CNN (MMOD) face
detector, shipped in the same package as mmod_human_face_detector.dat, gets
one more try without upsampling (~1.5 s per 450-px photo on one core).

API
  read_image(path) -> [H,W,3] float32 RGB in [0,1]; ValueError naming the
      file when it cannot be read.
  load_image(path) -> LoadedImage(image, path, converted_from): the same
      plus what the file held before the RGB conversion ('L', 'RGBA', ...).
  find_landmark_model(path=None) -> path of shape_predictor_68_face_landmarks
      .dat (default: the copy in the installed face-recognition-models
      package, located WITHOUT importing it: its __init__ breaks on new
      setuptools).
  FaceDetector(landmark_model=None, upsample=1, cnn_fallback=True)
      .detect(image) -> list of Face(box, landmarks [68,2], score, detector),
      largest first.
  detect_faces(image, upsample=1, landmark_model=None, cnn_fallback=True)
      -> list of Face, largest first (cached FaceDetector).
  detect_landmarks(image, ...) -> list of [68,2] float32, largest face first.
  crop_face(image, landmarks, size=224) -> (crop [size,size,3] float32,
      landmarks_in_crop [68,2], CropTransform).

Coordinates: x, y pixels with the origin at the image's top-left CORNER and
pixel (row r, col c) centred at (c + 0.5, r + 0.5), as renderer/camera.py's
screen space. dlib reports integer pixel indices; 0.5 is added.

Crop: a square of side CROP_SCALE x the larger side of the landmarks' box,
centred CROP_SHIFT x that side above the box centre, resized to `size`. The
constants place a face in the crop as coarse/synthetic_data.py places its
renders (landmarks span ~61% of the side, their box centre ~10% of the side
below the image centre), so real and synthetic training images agree. The
paper follows Chen20, which crops around the landmarks to 300 px and
resizes to 224; the exact margins of its (unreleased) preprocessing are not
known. Parts of the square outside the photo are black.
"""

import collections
import glob
import importlib.util
import os
import site
import sys

import cv2
import numpy as np
from PIL import Image

LANDMARK_MODEL_FILE = 'shape_predictor_68_face_landmarks.dat'
CNN_DETECTOR_FILE = 'mmod_human_face_detector.dat'
LANDMARK_PACKAGE = 'face_recognition_models'
NUM_LANDMARKS = 68
# Crop side / larger side of the landmark box, and the shift of the crop
# centre above the box centre as a fraction of the larger side (see the
# module docstring).
CROP_SCALE = 1.0 / 0.61
CROP_SHIFT = 0.16

LoadedImage = collections.namedtuple('LoadedImage',
                                     ['image', 'path', 'converted_from'])
LoadedImage.__doc__ = """A photo read by `load_image`.

  image: [H,W,3] float32 RGB in [0,1].
  path: the file.
  converted_from: None for an 8-bit RGB file, else the PIL mode it was
    converted from: 'L'/'I;16'/'1'/... (grayscale), 'RGBA', 'P', 'CMYK', ...
"""

Face = collections.namedtuple('Face',
                              ['box', 'landmarks', 'score', 'detector'])
Face.__doc__ = """One detected face.

  box: (left, top, right, bottom) float pixels of the detector's rectangle.
  landmarks: [68,2] float32 iBUG landmarks, x, y pixels.
  score: detector confidence (larger = surer; HOG and CNN scores differ).
  detector: 'hog' or 'cnn' (the fallback), which detector found it.
"""

GRAYSCALE_MODES = ('1', 'L', 'LA', 'I', 'I;16', 'I;16B', 'I;16L', 'F')


def load_image(path):
  """Reads a photo as RGB float32 in [0,1]; see LoadedImage.

  Grayscale, palette, alpha and CMYK files are converted to RGB (alpha is
  dropped) and `converted_from` says so. 16-bit and float grayscale images
  are scaled by their type's range.

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
    with Image.open(path) as im:
      im.load()
      mode = im.mode
      if mode in ('I', 'I;16', 'I;16B', 'I;16L', 'F'):
        arr = np.asarray(im, np.float64)
        top = 65535.0 if mode.startswith('I') else 1.0
        if mode == 'I' and arr.max() <= 255:
          top = 255.0
        gray = np.clip(arr / top, 0.0, 1.0).astype(np.float32)
        image = np.repeat(gray[..., None], 3, axis=-1)
      else:
        image = np.asarray(im.convert('RGB'), np.float32) / 255.0
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


def _package_dirs():
  """Folders that may hold the face-recognition-models package."""
  try:
    spec = importlib.util.find_spec(LANDMARK_PACKAGE)  # does not run __init__
  except (ImportError, ValueError):
    spec = None
  dirs = []
  if spec is not None:
    dirs.extend(spec.submodule_search_locations or [])
    if spec.origin:
      dirs.append(os.path.dirname(spec.origin))
  roots = list(sys.path)
  try:
    roots += site.getsitepackages() + [site.getusersitepackages()]
  except AttributeError:  # some virtualenv site modules lack these
    pass
  for root in roots:
    if root and os.path.isdir(os.path.join(root, LANDMARK_PACKAGE)):
      dirs.append(os.path.join(root, LANDMARK_PACKAGE))
  return dirs


def find_package_file(name):
  """Path of `name` inside the installed face-recognition-models package.

  Raises:
    FileNotFoundError: not found; the message says where it looked.
  """
  looked = []
  for d in _package_dirs():
    for candidate in [os.path.join(d, 'models', name)] + sorted(
        glob.glob(os.path.join(d, '**', name), recursive=True)):
      if os.path.isfile(candidate):
        return candidate
    looked.append(d)
  raise FileNotFoundError(
      'face_detection: %s not found (looked in %s). Install the '
      'face-recognition-models package%s.' %
      (name, looked or 'no %s package folder' % LANDMARK_PACKAGE,
       ' or pass --landmark_model=PATH' if name == LANDMARK_MODEL_FILE else ''))


def find_landmark_model(path=None):
  """Path of dlib's 68-point shape predictor.

  Args:
    path: an explicit .dat file (the --landmark_model flag), or None to use
      the one shipped in the installed face-recognition-models package.

  Raises:
    FileNotFoundError: `path` does not exist, or no package copy was found
      (the message says where it looked).
  """
  if path:
    if not os.path.isfile(path):
      raise FileNotFoundError('--landmark_model: no file at %r' % (path,))
    return path
  return find_package_file(LANDMARK_MODEL_FILE)


def _to_uint8(image):
  """[H,W,3] float in [0,1] or uint8 -> contiguous uint8 RGB for dlib."""
  image = np.asarray(image)
  if image.ndim != 3 or image.shape[-1] != 3:
    raise ValueError('face_detection: image must be [H,W,3] RGB, got shape %s'
                     % (image.shape,))
  if image.dtype != np.uint8:
    image = np.clip(np.round(image.astype(np.float32) * 255.0), 0, 255)
    image = image.astype(np.uint8)
  return np.ascontiguousarray(image)


class FaceDetector:
  """dlib frontal face detector + 68-point shape predictor.

  Args:
    landmark_model: shape predictor .dat path or None (find_landmark_model).
    upsample: times dlib's HOG detector upsamples the image before detecting
      (1 finds faces down to ~40 px; each step costs ~4x time).
    cnn_fallback: when HOG finds no face, try dlib's CNN detector (module
      docstring). Skipped, with no error, when its model file is missing.
  """

  def __init__(self, landmark_model=None, upsample=1, cnn_fallback=True):
    import dlib  # pylint: disable=g-import-not-at-top (heavy, optional)
    self.landmark_model = find_landmark_model(landmark_model)
    self.upsample = int(upsample)
    self._detector = dlib.get_frontal_face_detector()
    try:
      self._predictor = dlib.shape_predictor(self.landmark_model)
    except RuntimeError as e:
      raise ValueError('%s: not a dlib shape predictor (%s)' %
                       (self.landmark_model, e)) from e
    self._cnn = None
    if cnn_fallback:
      try:
        self._cnn = dlib.cnn_face_detection_model_v1(
            find_package_file(CNN_DETECTOR_FILE))
      except (FileNotFoundError, RuntimeError):
        self._cnn = None

  @property
  def has_cnn_fallback(self):
    return self._cnn is not None

  def _face(self, pixels, rect, score, detector):
    shape = self._predictor(pixels, rect)
    if shape.num_parts != NUM_LANDMARKS:
      raise ValueError('%s: predictor gives %d points, need %d' %
                       (self.landmark_model, shape.num_parts, NUM_LANDMARKS))
    pts = np.array([[p.x, p.y] for p in shape.parts()], np.float32) + 0.5
    box = (float(rect.left()), float(rect.top()), float(rect.right() + 1),
           float(rect.bottom() + 1))
    return Face(box, pts, float(score), detector)

  def detect(self, image):
    """Faces in `image` ([H,W,3] float in [0,1] or uint8), largest first."""
    pixels = _to_uint8(image)
    rects, scores, _ = self._detector.run(pixels, self.upsample, 0.0)
    faces = [self._face(pixels, r, s, 'hog') for r, s in zip(rects, scores)]
    if not faces and self._cnn is not None:
      faces = [self._face(pixels, d.rect, d.confidence, 'cnn')
               for d in self._cnn(pixels, 0)]
    faces.sort(key=lambda f: -(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
    return faces


_DETECTORS = {}


def get_detector(landmark_model=None, upsample=1, cnn_fallback=True):
  """A cached FaceDetector (loading the models takes ~1 s)."""
  key = (find_landmark_model(landmark_model), int(upsample), bool(cnn_fallback))
  if key not in _DETECTORS:
    _DETECTORS[key] = FaceDetector(*key)
  return _DETECTORS[key]


def detect_faces(image, upsample=1, landmark_model=None, cnn_fallback=True):
  """List of Face, largest first (cached FaceDetector)."""
  return get_detector(landmark_model, upsample, cnn_fallback).detect(image)


def detect_landmarks(image, upsample=1, landmark_model=None,
                     cnn_fallback=True):
  """List of [68,2] float32 landmark arrays, one per face, largest first."""
  return [f.landmarks for f in
          detect_faces(image, upsample, landmark_model, cnn_fallback)]


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
    raise ValueError('face_detection.crop_box: landmarks must be [N,2], got %s'
                     % (landmarks.shape,))
  if not np.all(np.isfinite(landmarks)):
    raise ValueError('face_detection.crop_box: landmarks are not finite')
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
    raise ValueError('face_detection.crop_face: image must be [H,W,3], got %s'
                     % (image.shape,))
  if image.dtype == np.uint8:
    image = image.astype(np.float32) / 255.0
  image = image.astype(np.float32, copy=False)
  size = int(size)
  if size <= 0:
    raise ValueError('face_detection.crop_face: size must be > 0, got %d' %
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
