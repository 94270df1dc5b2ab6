"""dlib's face detectors and 68-point shape predictor.

dlib's HOG frontal face detector (upsample 1) finds the faces and dlib's
68-point shape predictor (iBUG layout) marks them. When the HOG detector
finds nothing (it misses many faces turned beyond ~45 degrees), dlib's CNN
(MMOD) face detector, shipped in the same package as
mmod_human_face_detector.dat, gets one more try without upsampling (~1.5 s
per 450-px photo on one core).

Bounded cost on any photo: both detectors run on a copy whose longer side
is at most `max_side` (default MAX_SIDE = 1024 px, the FaceMesh detector's
cap; area-resized), and the boxes are scaled back to the photo; the shape
predictor then marks the face on the full-resolution photo (its cost does
not grow with the photo). A 6000x4000 photo on which HOG finds nothing
costs the CNN fallback ~0.7 Mpx, not 24 Mpx (which took 24 GB). Photos
smaller than MIN_SIDE = 32 px on a side are refused with ValueError
("image too small: WxH, need at least 32 px on each side").

dlib's jaw landmarks (0..16) follow the VISIBLE silhouette of the face; the
fit matches them with a sliding model contour (coarse/face_reconstruction.py).

API
  find_landmark_model(path=None) -> path of shape_predictor_68_face_landmarks
      .dat (default: the copy in the installed face-recognition-models
      package, located WITHOUT importing it: its __init__ breaks on new
      setuptools).
  FaceDetector(landmark_model=None, upsample=1, cnn_fallback=True,
               max_side=MAX_SIDE)
      .detect(image) -> list of Face(box, landmarks [68,2], score, detector),
      largest first.
  detect_faces(image, upsample=1, landmark_model=None, cnn_fallback=True)
      -> list of Face, largest first (cached FaceDetector).
  detect_landmarks(image, ...) -> list of [68,2] float32, largest face first.

Coordinates: x, y pixels with the origin at the image's top-left CORNER and
pixel (row r, col c) centred at (c + 0.5, r + 0.5), as renderer/camera.py's
screen space. dlib reports integer pixel indices; 0.5 is added.
"""

import collections
import glob
import os
import site
import sys

import numpy as np

from preprocess import package_files

LANDMARK_MODEL_FILE = 'shape_predictor_68_face_landmarks.dat'
CNN_DETECTOR_FILE = 'mmod_human_face_detector.dat'
LANDMARK_PACKAGE = 'face_recognition_models'
NUM_LANDMARKS = 68
MAX_SIDE = 1024   # longer side (pixels) of the copy the detectors run on
MIN_SIDE = 32     # smaller photos are refused

Face = collections.namedtuple('Face',
                              ['box', 'landmarks', 'score', 'detector'])
Face.__doc__ = """One detected face.

  box: (left, top, right, bottom) float pixels of the detector's rectangle.
  landmarks: [68,2] float32 iBUG landmarks, x, y pixels.
  score: detector confidence (larger = surer; HOG and CNN scores differ).
  detector: 'hog' or 'cnn' (the fallback), which detector found it.
"""

def _package_dirs():
  """Folders that may hold the face-recognition-models package."""
  dirs = package_files.package_folders(LANDMARK_PACKAGE)
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
      'dlib_landmarks: %s not found (looked in %s). Install the '
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
    raise ValueError('dlib_landmarks: image must be [H,W,3] RGB, got shape %s'
                     % (image.shape,))
  height, width = image.shape[:2]
  if min(height, width) < MIN_SIDE:
    raise ValueError('dlib_landmarks: image too small: %dx%d, need at least '
                     '%d px on each side' % (width, height, MIN_SIDE))
  if image.dtype != np.uint8:
    out = np.empty(image.shape, np.uint8)
    for top in range(0, height, 256):  # row bands: no full-size float copy
      band = image[top:top + 256].astype(np.float32) * 255.0
      out[top:top + 256] = np.clip(np.round(band), 0, 255)
    image = out
  return np.ascontiguousarray(image)


def downscaled(pixels, max_side):
  """(copy with longer side <= max_side, scale back to the original)."""
  import cv2  # pylint: disable=g-import-not-at-top
  height, width = pixels.shape[:2]
  if max(height, width) <= max_side:
    return pixels, 1.0
  scale = max_side / float(max(height, width))
  new_w = max(1, int(round(width * scale)))
  new_h = max(1, int(round(height * scale)))
  small = cv2.resize(pixels, (new_w, new_h), interpolation=cv2.INTER_AREA)
  return np.ascontiguousarray(small), max(width / float(new_w),
                                          height / float(new_h))


class FaceDetector:
  """dlib frontal face detector + 68-point shape predictor.

  Args:
    landmark_model: shape predictor .dat path or None (find_landmark_model).
    upsample: times dlib's HOG detector upsamples the image before detecting
      (1 finds faces down to ~40 px; each step costs ~4x time).
    cnn_fallback: when HOG finds no face, try dlib's CNN detector (module
      docstring). Skipped, with no error, when its model file is missing.
    max_side: both detectors run on a copy of the photo whose longer side
      is at most this many pixels; coordinates are in the photo's pixels.
  """

  def __init__(self, landmark_model=None, upsample=1, cnn_fallback=True,
               max_side=MAX_SIDE):
    import dlib  # pylint: disable=g-import-not-at-top (heavy, optional)
    self._dlib = dlib
    self.landmark_model = find_landmark_model(landmark_model)
    self.upsample = int(upsample)
    self.max_side = int(max_side)
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

  def _face(self, pixels, rect, score, detector, scale=1.0):
    if scale != 1.0:  # a box of the downscaled copy -> photo pixels
      rect = self._dlib.rectangle(
          int(round(rect.left() * scale)), int(round(rect.top() * scale)),
          int(round((rect.right() + 1) * scale)) - 1,
          int(round((rect.bottom() + 1) * scale)) - 1)
    shape = self._predictor(pixels, rect)
    if shape.num_parts != NUM_LANDMARKS:
      raise ValueError('%s: predictor gives %d points, need %d' %
                       (self.landmark_model, shape.num_parts, NUM_LANDMARKS))
    pts = np.array([[p.x, p.y] for p in shape.parts()], np.float32) + 0.5
    box = (float(rect.left()), float(rect.top()), float(rect.right() + 1),
           float(rect.bottom() + 1))
    return Face(box, pts, float(score), detector)

  def detect(self, image):
    """Faces in `image` ([H,W,3] float in [0,1] or uint8), largest first.

    Raises:
      ValueError: not [H,W,3], or smaller than MIN_SIDE on a side.
    """
    pixels = _to_uint8(image)
    small, scale = downscaled(pixels, self.max_side)
    rects, scores, _ = self._detector.run(small, self.upsample, 0.0)
    faces = [self._face(pixels, r, s, 'hog', scale)
             for r, s in zip(rects, scores)]
    if not faces and self._cnn is not None:
      faces = [self._face(pixels, d.rect, d.confidence, 'cnn', scale)
               for d in self._cnn(small, 0)]
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
