"""Yaw of a strongly turned face from its outline (the --fit start, > 45 deg).

Why: beyond about 55 deg FaceMesh's points and BlazeFace's keypoints stop
turning with the face. On the benchmark's renders the closed-form fit
(coarse/landmark_fit.py fit_dense) estimates faces of 60-90 deg true yaw at
a median of 49-62 deg, so its yaw error there is 17-33 deg (README, fit
benchmark). The outline on the side the face turns to (forehead, nose, lips,
chin against the background) keeps changing up to profile.

What: for a face whose fitted |yaw| is at least MIN_YAW_DEG, the yaw is
searched from the fitted |yaw| to 90 deg (same sign, STEP_DEG apart, pitch,
roll and shape kept; scale and translation re-solved from the dense points
for each candidate, `landmark_fit.scale_translation`). Each candidate face
is rasterized (renderer/rasterize_op.py, the project's camera) and, on every
image row between its brows and its chin, its outermost pixel on the turned
side is compared with the photo's silhouette (preprocess/face_silhouette.py).
The cost is the mean over rows of the squared row difference in mm, after
removing its median (the horizontal placement is free) and clipping at
OUTLIER_MM (hair, a hand, GrabCut's misses). The candidate of least cost is
the new yaw; where fewer than MIN_ROWS rows can be compared, the fit's yaw
stays.

Measured before adoption on 231 validation renders (eval/fit_benchmark.py's
renders of seeds 1 and 2, 5 per bin and sign; not the benchmark's seed 0),
median |yaw error| in degrees at 30-45 / 45-60 / 60-75 / 75-90 deg, without
-> with the search: ICT faces fitted with SFM 3.9 / 6.0 / 10.9 / 21.1 ->
4.6 / 7.6 / 11.0 / 9.4; SFM faces fitted with ICT 3.4 / 3.7 / 11.1 / 27.3 ->
3.4 / 3.3 / 5.0 / 17.3; in-model, ICT 2.8 / 4.0 / 14.9 / 24.9 -> 2.8 / 5.8 /
14.0 / 5.5 and SFM 3.4 / 5.7 / 7.4 / 21.4 -> 3.4 / 10.8 / 4.7 / 13.7 (the
outline near 45-60 deg is the far cheek's as much as the profile's, so the
search can over-turn there). Faces whose landmarks put them below
MIN_YAW_DEG are not searched: searching every face from 0 deg made 45-60
deg worse (about 19 deg), and a profile the detector takes for a frontal
face (a few near-profile renders) stays wrong.

Faces FaceMesh barely sees. A face whose crop FaceMesh gives a presence
below LOW_PRESENCE (preprocess/mediapipe_landmarks.py, MeshFace.presence;
after its crop re-selection) is searched too, from MIN_YAW_DEG on the
fitted yaw's side, with the mean face, whatever its fitted yaw: on such
crops FaceMesh lays a small near-frontal face over a part of a profile, so
neither the landmark yaw nor a shape fitted to those points says much,
while the side the face turns to is mostly right. Measured before adoption
on the validation renders at 45-90 deg (seeds 1 and 2, 5 per bin and sign,
ICT -> SFM and SFM -> ICT; 107 faces on the face), with and without this
gate: 17 faces had a presence below 0.5, all but one at 73-90 deg true
yaw, and 6 of them were fitted under 45 deg. Only those 6 changed. Five
went from |yaw errors| of 62.6 / 50.0 / 74.9 / 53.9 / 63.8 deg to 25.1 /
24.5 / 25.3 / 12.6 / 3.9 deg; the sixth, fitted on the wrong side, from
104.5 to 144.7 deg. All six now have the mean face's NME; their fitted
shapes had scored +0.41 / +0.24 / -0.03 / +0.20 / +0.58 / +0.36 mm
against it (median |yaw error| of SFM -> ICT at 75-90 deg, seed 2: 20.7 ->
8.2 deg; the other bins' medians are unchanged). Searching both sides and
keeping the lower cost chose the wrong side for 2 of the 6. On the 26
shared real photos every face found but the profile has presence 1.000
(the profile 0.82), so none is searched this way; a frontal face that
FaceMesh scores low (heavy occlusion or blur) would be, and would come out
at least MIN_YAW_DEG turned. That case is not measured here.

The yaw only: beyond landmark_fit.DENSE_MAX_YAW_DEG the shape is the mean
face's either way.
"""

import math

import numpy as np
import tensorflow as tf

from coarse import landmark_fit
from renderer import camera

MIN_YAW_DEG = 45.0
# FaceMesh presence below which a face is searched whatever its fitted yaw.
LOW_PRESENCE = 0.5
MAX_YAW_DEG = 90.0
STEP_DEG = 2.5
# A row differing from the median row by more than this (3 x the ~3 mm a
# mean face's profile differs from another face's) counts as this much.
OUTLIER_MM = 9.0
MIN_ROWS = 5
# iBUG rows of the compared band: the brows (17-26) down to the chin (8).
_BROWS = slice(17, 27)
_CHIN = 8


def row_extremes(masks, side):
  """Outermost covered pixel edge of each row on one side.

  Args:
    masks: [..., H, W] bool.
    side: +1 for the right side (larger x), -1 for the left.
  Returns:
    [..., H] float64 x in pixels (the outer edge of the outermost covered
    pixel: col + 1 on the right, col on the left); NaN on empty rows.
  """
  masks = np.asarray(masks, bool)
  cols = np.arange(masks.shape[-1])
  if side > 0:
    edge = np.where(masks, cols, -1).max(-1).astype(np.float64) + 1.0
  else:
    edge = np.where(masks, cols, masks.shape[-1]).min(-1).astype(np.float64)
  edge[~masks.any(-1)] = np.nan
  return edge


def profile_cost(photo_edge, model_edge, scale):
  """Robust mean squared row difference (mm^2) and the number of rows.

  Args:
    photo_edge, model_edge: [R] row_extremes (x pixels, NaN = empty) of the
      compared rows, already signed so that larger = further out.
    scale: pixels per mm.
  Returns:
    (cost, rows): cost is inf when rows < MIN_ROWS.
  """
  diff = (np.asarray(photo_edge) - np.asarray(model_edge)) / scale
  diff = diff[np.isfinite(diff)]
  if diff.size < MIN_ROWS:
    return math.inf, int(diff.size)
  residual = np.minimum(np.square(diff - np.median(diff)), OUTLIER_MM**2)
  return float(np.mean(residual)), int(diff.size)


def _candidate_masks(vertices, triangles, poses, image_size):
  """Coverage [K,H,W] bool and screen vertices [K,N,3] (pixels) of one
  face [N,3] (mm) under K pose rows [K,6]."""
  from renderer import rasterize_op  # pylint: disable=g-import-not-at-top
  count = len(poses)
  screen = camera.orthographic_project(
      tf.tile(tf.constant(vertices[None], tf.float32), [count, 1, 1]),
      tf.constant(poses, tf.float32), image_size)
  fragments = rasterize_op.rasterize(camera.screen_to_clip(
      screen, image_size), triangles, image_size)
  return fragments.triangle_ids.numpy() >= 0, screen.numpy()


def search_yaw(model, correspondence, identity, expression, pose, points,
               silhouette, image_size):
  """The profile search for one face (see the module docstring).

  Args:
    model: bfm.MorphableModel; correspondence: its
      facemesh_correspondence.Correspondence.
    identity [K_id], expression [K_exp]: the face's coefficients.
    pose: [6] pose row (renderer/camera.py layout) of the fit.
    points: [474,2] float pixels (x, y; top-left origin): FaceMesh's 468
      points and BlazeFace's 6 keypoints.
    silhouette: [H,W] bool photo silhouette (face_silhouette).
    image_size: (height, width) python ints.
  Returns:
    (pose [6] float64 with the chosen yaw, scale and translation, or the
    given pose; costs: list of (yaw_deg, cost_mm2)).
  """
  height, width = image_size
  pitch, yaw, roll = (float(a) for a in pose[:3])
  sign = 1.0 if yaw >= 0.0 else -1.0
  start = abs(math.degrees(yaw))
  candidates = np.arange(start, MAX_YAW_DEG + 1e-6, STEP_DEG)
  mean_rows, basis_rows, normal_rows = landmark_fit.correspondence_rows(
      model, correspondence)
  coeff = np.concatenate([identity, expression]).astype(np.float64)
  rows3d = mean_rows + np.tensordot(coeff, basis_rows, 1)
  sigma_mm = landmark_fit.dense_sigma_mm(correspondence)
  targets = np.stack([points[:, 0] - width / 2.0,
                      height / 2.0 - points[:, 1]], 1)
  poses, scales = [], []
  for theta in candidates:
    rotation = landmark_fit.rotation_from_euler(
        pitch, sign * math.radians(theta), roll)
    weights = landmark_fit.dense_weights(sigma_mm, normal_rows, rotation)
    scale, translation = landmark_fit.scale_translation(
        rows3d, targets, weights, rotation)
    poses.append(landmark_fit.pose_row(rotation, scale, translation, height,
                                       width))
    scales.append(scale)
  vertices = np.asarray(model.vertices(identity[None].astype(np.float32),
                                       expression[None].astype(np.float32)))[0]
  masks, screen = _candidate_masks(vertices, model.triangles,
                                   np.asarray(poses), image_size)
  photo_edge = sign * row_extremes(silhouette, sign)
  model_edges = sign * row_extremes(masks, sign)
  costs = []
  for k in range(len(candidates)):
    marks = screen[k, model.landmarks68, 1]
    top = max(int(math.ceil(marks[_BROWS].min())), 0)
    bottom = min(int(marks[_CHIN]), height - 1)
    costs.append(profile_cost(photo_edge[top:bottom + 1],
                              model_edges[k, top:bottom + 1],
                              scales[k])[0])
  best = int(np.argmin(costs))
  chosen = np.asarray(pose, np.float64).copy()
  if math.isfinite(costs[best]):
    chosen = np.asarray(poses[best], np.float64)
  return chosen, list(zip(candidates.tolist(), costs))


def refine_yaw(model, correspondence, coefficients, points, images,
               image_size, min_yaw_deg=MIN_YAW_DEG, presence=None):
  """`search_yaw` for every face fitted at least min_yaw_deg turned, and
  for every face FaceMesh barely sees (presence < LOW_PRESENCE), searched
  from min_yaw_deg on its fitted side (module docstring).

  Args:
    model, correspondence: as search_yaw.
    coefficients: coarse.coefficients.Coefficients (NumPy, batch B), the
      closed-form fit (landmark_fit.fit_dense).
    points: [B,474,2] float pixels (fit_dense's input).
    images: [B,H,W,3] float RGB in [0,1], the photos (crops) fitted.
    image_size: (height, width) python ints.
    min_yaw_deg: python float, degrees.
    presence: None or [B] float FaceMesh presence of each face's crop.
  Returns:
    Coefficients with the pose of the searched faces replaced, and the shape
    of the barely seen ones searched from below min_yaw_deg set to the mean
    face (a face whose outline gives no comparable row keeps its pose and
    shape).
  """
  from preprocess import face_silhouette  # pylint: disable=g-import-not-at-top
  from coarse import facemesh_correspondence  # pylint: disable=g-import-not-at-top
  points = np.asarray(points, np.float64)
  pose = np.array(coefficients.pose, np.float32)
  identity = np.array(coefficients.identity, np.float32)
  expression = np.array(coefficients.expression, np.float32)
  for b in range(len(pose)):
    turned = abs(math.degrees(pose[b, 1])) >= min_yaw_deg
    unseen = presence is not None and presence[b] < LOW_PRESENCE
    if not (turned or unseen):
      continue
    start, shape = pose[b].copy(), (identity[b], expression[b])
    if not turned:
      # Searched from min_yaw_deg with the mean face: a shape explained by
      # points FaceMesh does not see a face in is none (fit_dense keeps the
      # mean face wherever a pose is beyond its limit, too).
      start[1] = math.copysign(math.radians(min_yaw_deg), pose[b, 1])
      shape = (np.zeros_like(identity[b]), np.zeros_like(expression[b]))
    silhouette = face_silhouette.face_silhouette(
        images[b], points[b, :facemesh_correspondence.NUM_MESH_POINTS])
    found, costs = search_yaw(model, correspondence, shape[0], shape[1],
                              start, points[b], silhouette, image_size)
    if any(math.isfinite(cost) for _, cost in costs):
      pose[b] = found
      identity[b], expression[b] = shape
  return coefficients._replace(pose=pose, identity=identity,
                               expression=expression)
