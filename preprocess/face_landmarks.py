"""Faces and their 68 iBUG landmarks from either landmark source.

One entry point for the commands (`reconstruct`, preprocess/prepare_data.py)
so that `--landmarks` means the same everywhere:

  'facemesh' (default): MediaPipe BlazeFace + FaceMesh
      (preprocess/mediapipe_landmarks.py); follows faces to profile. Its jaw
      points are FIXED surface points.
  'dlib': dlib's HOG detector (CNN fallback) and 68-point predictor
      (preprocess/dlib_landmarks.py); reliable to ~45 degrees of yaw. Its jaw
      points follow the VISIBLE silhouette.

The fit matches each convention with its own model-side correspondence
(coarse/landmark_fit.py), so every Face says which source marked it.
Coordinates: x, y pixels, origin at the image's top-left corner, pixel
centres at +0.5.
"""

import collections

import numpy as np

from coarse import landmark_fit

SOURCES = landmark_fit.LANDMARK_SOURCES

Face = collections.namedtuple(
    'Face', ['box', 'landmarks', 'score', 'detector', 'source', 'dense',
             'presence'])
Face.__doc__ = """One detected face.

  box: (left, top, right, bottom) float pixels of the detector's rectangle.
  landmarks: [68,2] float32 iBUG landmarks, x, y pixels.
  score: detector confidence (larger = surer; not comparable across
    detectors).
  detector: which detector found it ('facemesh', 'hog' or 'cnn').
  source: the landmark source, one of SOURCES (sets the jaw convention).
  dense: [474,2] float32 x, y pixels of FaceMesh's 468 points then
    BlazeFace's 6 keypoints ('facemesh'; None for 'dlib'): what
    coarse/landmark_fit.fit_dense fits on a measured correspondence.
  presence: FaceMesh's face-presence score in [0,1] on the face's crop
    ('facemesh'; None for 'dlib'), mediapipe_landmarks.MeshFace.presence.
"""


def check_source(source):
  if source not in SOURCES:
    raise ValueError('--landmarks must be one of %s, got %r' %
                     (', '.join(SOURCES), source))
  return source


def describe(source):
  """One line naming the detector and landmark model of a source."""
  check_source(source)
  if source == 'facemesh':
    return ('landmarks: facemesh (MediaPipe BlazeFace full-range detector + '
            'FaceMesh, 68 iBUG points with fixed jaw points)')
  return ('landmarks: dlib (HOG detector, CNN fallback, 68-point predictor; '
          'jaw points on the visible silhouette)')


def detect_faces(image, source='facemesh', landmark_model=None,
                 cnn_fallback=True):
  """Faces in `image` ([H,W,3] float32 RGB in [0,1]), largest first.

  Args:
    image: the photo.
    source: one of SOURCES.
    landmark_model: dlib shape predictor .dat for 'dlib' (None: the
      packaged one); ignored for 'facemesh'.
    cnn_fallback: 'dlib' only: try dlib's CNN detector when HOG finds none.
  Returns:
    list of Face.
  Raises:
    ValueError: bad source, or an image the detector refuses (too small).
  """
  check_source(source)
  if source == 'facemesh':
    from preprocess import mediapipe_landmarks  # pylint: disable=g-import-not-at-top
    return [
        Face(f.box, np.asarray(f.landmarks68, np.float32), f.score,
             f.detector, source,
             np.concatenate([np.asarray(f.landmarks468, np.float32)[:, :2],
                             np.asarray(f.keypoints6, np.float32)]),
             f.presence)
        for f in mediapipe_landmarks.detect_faces(image)
    ]
  from preprocess import dlib_landmarks  # pylint: disable=g-import-not-at-top
  return [
      Face(f.box, f.landmarks, f.score, f.detector, source, None, None)
      for f in dlib_landmarks.detect_faces(
          image, landmark_model=landmark_model, cnn_fallback=cnn_fallback)
  ]
