"""FaceMesh's 468 landmarks -> the 68 iBUG (dlib) landmarks: FACEMESH_TO_IBUG68.

FACEMESH_TO_IBUG68[i] is the FaceMesh vertex taken as iBUG point i, so
`landmarks468[FACEMESH_TO_IBUG68, :2]` is a [68,2] iBUG-order array.

Convention (differs from dlib's): the jaw points 0..16 are FIXED points of
the face surface. On a turned face those of the far side project inside the
face (as AFLW2000-3D's 3D landmarks do), while dlib's jaw follows the visible
silhouette. A fit should tie FaceMesh's jaw to fixed model vertices and
dlib's to a sliding contour.

How the table was made. Start: the public mapping that circulates with
MediaPipe ports (jaw 127 234 93 132 58 136 150 176 152 400 379 365 288 361
323 454 356, brows 70 63 105 66 107 / 336 296 334 293 300, eye corners 33 133
/ 362 263, lips as below). Check: dlib (preprocess/dlib_landmarks.py, HOG)
and FaceMesh (preprocess/mediapipe_landmarks.py, one refinement pass) on the
21 shared photos (celeba_sample/, aflw2000_sample/) whose FaceMesh yaw
estimate is within 25 degrees; error = distance to dlib's point / dlib's
outer-eye-corner distance (36-45), averaged over photos. Fix: for each
mirror pair of iBUG points, the mirror pair of FaceMesh vertices with the
smallest summed error was taken where it beat the public pair by more than
0.01 (the table stays left-right symmetric; a leave-one-photo-out choice
gave the same vertices' error within 0.001). Changed:
  jaw 2..4, 6, 7 and mirrors: 177 215 172 / 149 148 (public: 93 132 58 /
      150 176, which sit up to 0.16 inside dlib's contour);
  brows 19..21 and mirrors: 52 65 55 / 282 295 285 (the brows' lower line;
      the public upper-line points 105 66 107 sit up to 0.08 above dlib's);
  outer eye corners 36/45: 7/249, the lower-lid neighbours of the corner
      vertices 33/263, which sit ~0.04 outside and above dlib's corner.
Mean normalised error vs dlib, public -> this table (21 photos):
  jaw 0.107 -> 0.072, brows 0.069 -> 0.051, nose 0.030 -> 0.030,
  eyes 0.030 -> 0.027, outer lip 0.034 -> 0.034, inner lip 0.031 -> 0.031,
  all 68: 0.056 -> 0.044 (a shuffled table: ~0.77).
The remaining jaw error is mostly the fixed-point vs silhouette difference
on the slightly turned photos and dlib's lower chin point (8).
"""

import numpy as np

NUM_IBUG = 68

FACEMESH_TO_IBUG68 = np.array([
    # 0..16 jaw (fixed surface points), subject's right ear -> chin -> left.
    127, 234, 177, 215, 172, 136, 149, 148, 152, 377, 378, 365, 397, 435, 401,
    454, 356,
    # 17..21 subject's right brow (outer -> inner), 22..26 left (inner -> outer).
    70, 63, 52, 65, 55, 285, 295, 282, 293, 300,
    # 27..30 nose bridge (top -> tip), 31..35 nostrils (right -> left).
    168, 197, 5, 4, 75, 97, 2, 326, 305,
    # 36..41 right eye (outer corner, upper lid, inner corner, lower lid),
    # 42..47 left eye (inner corner, upper lid, outer corner, lower lid).
    7, 160, 158, 133, 153, 144, 362, 385, 387, 249, 373, 380,
    # 48..59 outer lip (right corner, upper, left corner, lower).
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,
    # 60..67 inner lip (right corner, upper, left corner, lower).
    78, 82, 13, 312, 308, 317, 14, 87], np.int32)

# iBUG point i of a face is iBUG point IBUG68_MIRROR[i] of its mirror image.
IBUG68_MIRROR = np.array(
    list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30] +
    [35, 34, 33, 32, 31] + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40] +
    [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55] +
    [64, 63, 62, 61, 60, 67, 66, 65], np.int32)


def to_ibug68(landmarks468):
  """[...,468,2+] FaceMesh points -> [...,68,2] float32 iBUG points."""
  points = np.asarray(landmarks468)
  return np.ascontiguousarray(points[..., FACEMESH_TO_IBUG68, :2],
                              np.float32)
