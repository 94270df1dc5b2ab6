"""Foreground silhouette of a face photo, seeded by its FaceMesh points.

The one image cue of coarse/silhouette_yaw.py: on a strongly turned face the
outline on the side it turns to (forehead, nose, lips, chin against the
background) shows the yaw where FaceMesh's points no longer do. No
face-parsing network is available to this project (none can be downloaded),
so the silhouette is OpenCV's GrabCut (colour mixture models of foreground
and background, graph cut) started from the detected points:

  definite foreground: the FaceMesh hull shrunk towards its centroid by
    CORE_SHRINK (inside the face whatever the points' error);
  probable foreground: the hull grown by HULL_GROW (the points of a turned
    face stop short of its outline);
  probable background: the rest; definite background: a BORDER_PX frame.

GrabCut runs on a copy whose longer side is at most WORK_SIDE_PX (its cost
grows with the pixel count: ~0.6 s at 224 px on one core) and the mask is
resized back; the reconstruct crops (224 px) run at full resolution, since
at 112 px the profile search's yaw error grew (validation renders of the fit
benchmark, 45-60 deg: median 3.3-10.8 -> 5.8-15.6 deg). The largest
connected component of the result is returned.

GrabCut starts its colour models with k-means seeded from OpenCV's global
random number generator, so without a fixed seed a photo's silhouette
depended on how many GrabCuts ran before it in the process (on the shared
AFLW2000 profile, up to a quarter of the mask's pixels changed): every
call seeds it with GRABCUT_SEED first, so a photo's result no longer
depends on the other photos of a batch or folder.

Known limits: hair, a beard, a hand or a background of skin colour
touching the face's outline join the silhouette (GrabCut separates colours,
not faces).
"""

import cv2
import numpy as np

CORE_SHRINK = 0.6
HULL_GROW = 1.25
BORDER_PX = 3
ITERATIONS = 5
WORK_SIDE_PX = 224
MIN_SIDE_PX = 32
GRABCUT_SEED = 0


def face_silhouette(image, points):
  """[H,W] bool foreground silhouette of the face at `points`.

  Args:
    image: [H,W,3] float RGB in [0,1] (or uint8), e.g. a face crop.
    points: [P,2] float x, y pixels (top-left origin) of the face, P >= 3:
      FaceMesh's 468 points (BlazeFace's keypoints may follow; all are used
      for the hull).

  Returns:
    [H,W] bool, True on the face's connected foreground region.

  Raises:
    ValueError for a wrong shape, non-finite points or an image smaller than
    MIN_SIDE_PX.
  """
  image = np.asarray(image)
  points = np.asarray(points, np.float64)
  if image.ndim != 3 or image.shape[2] != 3:
    raise ValueError('face_silhouette: image must be [H,W,3], got %s' %
                     (image.shape,))
  height, width = image.shape[:2]
  if min(height, width) < MIN_SIDE_PX:
    raise ValueError('face_silhouette: image %dx%d is smaller than %d px' %
                     (width, height, MIN_SIDE_PX))
  if points.ndim != 2 or points.shape[1] != 2 or len(points) < 3:
    raise ValueError('face_silhouette: points must be [P>=3,2], got %s' %
                     (points.shape,))
  if not np.all(np.isfinite(points)):
    raise ValueError('face_silhouette: points are not finite')
  if image.dtype != np.uint8:
    image = np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
  factor = min(1.0, WORK_SIDE_PX / float(max(height, width)))
  full_size = (width, height)
  if factor < 1.0:
    width = max(int(round(width * factor)), 1)
    height = max(int(round(height * factor)), 1)
    image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    points = points * np.array([width / full_size[0], height / full_size[1]])
  hull = cv2.convexHull(points.astype(np.float32)).reshape(-1, 2)
  centre = hull.mean(0)
  labels = np.full([height, width], cv2.GC_PR_BGD, np.uint8)
  for factor, label in ((HULL_GROW, cv2.GC_PR_FGD),
                        (CORE_SHRINK, cv2.GC_FGD)):
    polygon = np.round((hull - centre) * factor + centre).astype(np.int32)
    cv2.fillPoly(labels, [polygon], int(label))
  labels[:BORDER_PX] = labels[-BORDER_PX:] = cv2.GC_BGD
  labels[:, :BORDER_PX] = labels[:, -BORDER_PX:] = cv2.GC_BGD
  background = np.zeros([1, 65], np.float64)
  foreground = np.zeros([1, 65], np.float64)
  cv2.setRNGSeed(GRABCUT_SEED)
  cv2.grabCut(np.ascontiguousarray(image[..., ::-1]), labels, None,
              background, foreground, ITERATIONS, cv2.GC_INIT_WITH_MASK)
  mask = ((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)).astype(np.uint8)
  count, components, stats, _ = cv2.connectedComponentsWithStats(mask)
  if count > 1:
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    mask = (components == largest).astype(np.uint8)
  if factor < 1.0:
    mask = cv2.resize(mask, full_size, interpolation=cv2.INTER_NEAREST)
  return mask > 0
