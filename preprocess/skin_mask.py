"""Skin mask of a face photo derived from its 68 iBUG landmarks.

Chen20 restricts the photometric loss to skin pixels found by a face parser.
No face-parsing network (and no way to download one) is available to this
project, so the mask is derived from the landmarks alone:

  convex hull of the 68 landmarks (jaw line up to the eyebrows)
  minus the eyes (polygons 36-41 and 42-47, grown by EYE_MARGIN)
  minus the inner mouth (polygon 60-67, teeth / tongue when open)
  minus the eyebrows (polylines 17-21 and 22-26 drawn BROW_WIDTH thick).

All margins are fractions of the larger side of the landmarks' bounding box.
Known limits: the forehead above the eyebrows is never included; hair,
beards, glasses, hands and other occluders inside the hull are included (a
parser would remove them); on profile faces the hull spans the visible
cheek only as far as the detector's landmarks do.
"""

import cv2
import numpy as np

RIGHT_EYE = tuple(range(36, 42))
LEFT_EYE = tuple(range(42, 48))
INNER_MOUTH = tuple(range(60, 68))
RIGHT_BROW = tuple(range(17, 22))
LEFT_BROW = tuple(range(22, 27))
# Fractions of the landmark box's larger side.
EYE_MARGIN = 0.02
BROW_WIDTH = 0.04

_SHIFT = 4  # cv2 fixed-point bits: sub-pixel polygon vertices


def _fixed(points):
  """Corner-origin float x, y -> cv2 fixed-point pixel-centre coordinates."""
  return np.round((np.asarray(points, np.float64) - 0.5) *
                  (1 << _SHIFT)).astype(np.int32)


def skin_mask(landmarks, height, width=None):
  """[H,W] uint8 skin mask (255 = skin, 0 = not) from [68,2] landmarks.

  Args:
    landmarks: [68,2] float x, y pixels (origin at the image's top-left
      corner, pixel centres at +0.5, as preprocess/dlib_landmarks.py).
    height, width: python ints, the mask size (width defaults to height).
  """
  width = height if width is None else width
  landmarks = np.asarray(landmarks, np.float64)
  if landmarks.shape != (68, 2):
    raise ValueError('skin_mask: landmarks must be [68,2], got %s' %
                     (landmarks.shape,))
  if not np.all(np.isfinite(landmarks)):
    raise ValueError('skin_mask: landmarks are not finite')
  mask = np.zeros([int(height), int(width)], np.uint8)
  extent = max(float(np.max(landmarks.max(0) - landmarks.min(0))), 1.0)
  hull = cv2.convexHull(_fixed(landmarks).reshape(-1, 1, 2))
  cv2.fillConvexPoly(mask, hull, 255, lineType=cv2.LINE_8, shift=_SHIFT)
  eye_px = max(int(round(2 * EYE_MARGIN * extent)), 1)
  for eye in (RIGHT_EYE, LEFT_EYE):
    pts = _fixed(landmarks[list(eye)]).reshape(-1, 1, 2)
    cv2.fillPoly(mask, [pts], 0, lineType=cv2.LINE_8, shift=_SHIFT)
    cv2.polylines(mask, [pts], True, 0, thickness=eye_px,
                  lineType=cv2.LINE_8, shift=_SHIFT)
  mouth = _fixed(landmarks[list(INNER_MOUTH)]).reshape(-1, 1, 2)
  cv2.fillPoly(mask, [mouth], 0, lineType=cv2.LINE_8, shift=_SHIFT)
  brow_px = max(int(round(BROW_WIDTH * extent)), 1)
  for brow in (RIGHT_BROW, LEFT_BROW):
    pts = _fixed(landmarks[list(brow)]).reshape(-1, 1, 2)
    cv2.polylines(mask, [pts], False, 0, thickness=brow_px,
                  lineType=cv2.LINE_8, shift=_SHIFT)
  return mask
