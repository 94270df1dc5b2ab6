"""The paper's two error protocols (appendix E) on one scan / prediction pair.

1. NME, Feng et al. 2018 (FG 2018 challenge; Tables 1, 3, 4). Following the
   challenge's evaluation script (patrikhuber/fg2018-competition,
   compute_vertices_to_mesh_distances.py, after its "Fix bug in radius
   computation" commit), re-implemented:
   - 7 landmarks, in this order: right eye outer corner, right eye inner
     corner, left eye inner corner, left eye outer corner, nose bottom, right
     mouth corner, left mouth corner (iBUG 0-based 36, 39, 42, 45, 33, 48, 54).
   - The scan is cropped to a sphere (scan coordinates, kept if distance <=
     radius) centred at nose_bottom + 0.3 (nose_bridge - nose_bottom), with
     nose_bridge the midpoint of the inner eye corners, and radius
     factor * (|outer_right - outer_left| + |nose_bridge - nose_bottom|) / 2,
     factor 1.2.
   - Similarity Procrustes from the prediction's 7 points to the scan's
     (proper rotations only; the script allowed reflections).
   - Error of every kept scan vertex = distance to the closest point on the
     aligned predicted surface (point-to-triangle). No ICP.
   Variants (`NME_VARIANTS`): 'fg2018' (above); 'fg2018_icp' (then rigid ICP of
   the cropped scan to the predicted surface: the paper says it aligns
   rigidly); 'now' (the NoW challenge as described, implemented from the
   description only: radius factor 1.4, Procrustes, then a rigid refinement
   minimising the scan-to-mesh distance = the same ICP).
2. MICC point-to-point (Chen et al. 2020; Table 2): crop the reconstruction
   and the scan to 95 mm around their nose tips, rough rigid alignment on the
   7 keypoints, ICP, then point-to-point (nearest vertex) distances.

All outputs are in the scan's units (millimetres).
"""

import dataclasses

import numpy as np

from eval import alignment
from eval import point_mesh_distance

# iBUG-68 (0-based) indices of the FG 2018 keypoints, in the protocol order.
KEYPOINTS7_IBUG68 = (36, 39, 42, 45, 33, 48, 54)
NOSE_TIP_IBUG68 = 30
NME_VARIANTS = {
    # name: (crop radius factor, ICP after Procrustes)
    'fg2018': (1.2, False),
    'fg2018_icp': (1.2, True),
    'now': (1.4, True),
}
MICC_CROP_RADIUS_MM = 95.0


@dataclasses.dataclass
class ErrorResult:
  """Per-pair result.

  Attributes:
    distances: [M] float64 per-point errors, mm.
    scan_indices: [M] int64 indices of the scan vertices measured from (for
      'prediction_to_scan' p2p distances: prediction vertex indices).
    transform: the SimilarityTransform applied to the prediction (prediction
      -> scan frame), including any ICP refinement.
    protocol: name, e.g. 'nme_fg2018' or 'micc_p2p'.
    info: extra numbers (crop centre/radius, ICP iterations, ...).
  """
  distances: np.ndarray
  scan_indices: np.ndarray
  transform: alignment.SimilarityTransform
  protocol: str
  info: dict

  @property
  def mean(self):
    return float(np.mean(self.distances))

  @property
  def median(self):
    return float(np.median(self.distances))

  @property
  def std(self):
    return float(np.std(self.distances))


def keypoints7_from_landmarks(landmarks, name='landmarks'):
  """[68, 3] iBUG landmarks -> [7, 3] keypoints; [7, 3] or [8, 3] pass through
  (an 8th row is the nose tip, dropped here)."""
  landmarks = np.asarray(landmarks, dtype=np.float64)
  if landmarks.ndim != 2 or landmarks.shape[1] != 3:
    raise ValueError(f'{name}: expected [K, 3] landmarks, got '
                     f'{landmarks.shape}.')
  if landmarks.shape[0] == 68:
    return landmarks[list(KEYPOINTS7_IBUG68)]
  if landmarks.shape[0] in (7, 8):
    return landmarks[:7]
  raise ValueError(f'{name}: expected 7, 8 (7 + nose tip) or 68 landmarks, '
                   f'got {landmarks.shape[0]}.')


def nose_tip_from_landmarks(landmarks, name='landmarks'):
  """[68, 3] -> landmark 30; [8, 3] -> row 7; [7, 3] -> None (unknown)."""
  landmarks = np.asarray(landmarks, dtype=np.float64)
  if landmarks.shape[0] == 68:
    return landmarks[NOSE_TIP_IBUG68]
  if landmarks.shape[0] == 8:
    return landmarks[7]
  if landmarks.shape[0] == 7:
    return None
  raise ValueError(f'{name}: expected 7, 8 or 68 landmarks, got '
                   f'{landmarks.shape[0]}.')


def fg2018_crop_sphere(scan_keypoints7, radius_factor=1.2):
  """Crop sphere of the FG 2018 protocol from the scan's 7 keypoints.

  Returns:
    (centre [3] float64, radius float), scan units.
  """
  k = np.asarray(scan_keypoints7, dtype=np.float64)
  nose_bottom = k[4]
  nose_bridge = (k[1] + k[2]) / 2.0
  centre = nose_bottom + 0.3 * (nose_bridge - nose_bottom)
  outer_eye_distance = np.linalg.norm(k[0] - k[3])
  nose_distance = np.linalg.norm(nose_bridge - nose_bottom)
  return centre, float(radius_factor * (outer_eye_distance + nose_distance) / 2)


def crop_sphere(points, centre, radius):
  """Indices [M'] int64 of points [M, 3] with |p - centre| <= radius."""
  points = np.asarray(points, dtype=np.float64)
  d2 = np.sum((points - np.asarray(centre, np.float64))**2, axis=1)
  return np.flatnonzero(d2 <= radius * radius)


def crop_mesh(vertices, triangles, centre, radius):
  """Keeps vertices within radius of centre and the triangles they span.

  Returns:
    (kept vertex indices [N'] int64, vertices [N', 3], triangles [T', 3]
    int64 re-indexed into the kept vertices; only triangles whose three
    corners are kept).
  """
  keep = crop_sphere(vertices, centre, radius)
  remap = -np.ones(len(vertices), np.int64)
  remap[keep] = np.arange(keep.size)
  triangles = np.asarray(triangles, np.int64).reshape(-1, 3)
  tri = remap[triangles]
  tri = tri[np.all(tri >= 0, axis=1)]
  return keep, np.asarray(vertices, np.float64)[keep], tri


def _check_inputs(scan_vertices, scan_keypoints, pred_vertices, pred_triangles,
                  pred_keypoints, scan_name, pred_name):
  scan_vertices = np.asarray(scan_vertices, np.float64)
  pred_vertices = np.asarray(pred_vertices, np.float64)
  for v, name in ((scan_vertices, scan_name), (pred_vertices, pred_name)):
    if v.ndim != 2 or v.shape[1] != 3 or v.shape[0] == 0:
      raise ValueError(f'{name}: empty mesh or vertices not [N, 3] '
                       f'(shape {v.shape}).')
    if not np.all(np.isfinite(v)):
      raise ValueError(f'{name}: vertices contain NaN or inf.')
  pred_triangles = np.asarray(pred_triangles)
  if pred_triangles.ndim != 2 or pred_triangles.shape[0] == 0:
    raise ValueError(f'{pred_name}: prediction has no triangles.')
  scan_k = keypoints7_from_landmarks(scan_keypoints, scan_name + ' landmarks')
  pred_k = keypoints7_from_landmarks(pred_keypoints, pred_name + ' landmarks')
  for k, name in ((scan_k, scan_name), (pred_k, pred_name)):
    if not np.all(np.isfinite(k)):
      raise ValueError(f'{name} landmarks: contain NaN or inf.')
  return scan_vertices, scan_k, pred_vertices, pred_triangles, pred_k


def _check_and_align(scan_vertices, scan_landmarks, pred_vertices,
                     pred_triangles, pred_landmarks, with_scale, scan_name,
                     pred_name):
  """_check_inputs, then the Procrustes of the prediction's 7 keypoints onto
  the scan's (with or without scale).

  Returns: scan vertices, scan keypoints [7, 3], prediction vertices and
  triangles (as arrays) and the alignment.Transform prediction -> scan.
  """
  scan_vertices, scan_k, pred_vertices, pred_triangles, pred_k = _check_inputs(
      scan_vertices, scan_landmarks, pred_vertices, pred_triangles,
      pred_landmarks, scan_name, pred_name)
  transform = alignment.procrustes(pred_k, scan_k, with_scale=with_scale,
                                   source_name=pred_name + ' landmarks',
                                   target_name=scan_name + ' landmarks')
  return scan_vertices, scan_k, pred_vertices, pred_triangles, transform


def nme(scan_vertices, scan_landmarks, pred_vertices, pred_triangles,
        pred_landmarks, variant='fg2018', backend='auto', icp_mode=
        'point_to_plane', icp_max_iterations=100, scan_name='scan',
        pred_name='prediction'):
  """Scan-to-surface error of one prediction (the FG 2018 NME protocol).

  Args:
    scan_vertices: [Ns, 3] ground-truth scan vertices, mm.
    scan_landmarks: [7|8|68, 3] scan keypoints (protocol order if 7/8).
    pred_vertices: [Np, 3] predicted mesh vertices (any units/frame).
    pred_triangles: [Tp, 3] int predicted triangles (any topology).
    pred_landmarks: [7|8|68, 3] prediction keypoints in its own frame.
    variant: a key of NME_VARIANTS.
    backend: point_mesh_distance backend.
    icp_mode, icp_max_iterations: for the variants with ICP.
    scan_name, pred_name: used in error messages (file names).

  Returns:
    ErrorResult (distances of the kept scan vertices, mm).
  """
  if variant not in NME_VARIANTS:
    raise ValueError(f'variant must be one of {sorted(NME_VARIANTS)}, got '
                     f'{variant!r}.')
  radius_factor, with_icp = NME_VARIANTS[variant]
  (scan_vertices, scan_k, pred_vertices, pred_triangles,
   transform) = _check_and_align(
      scan_vertices, scan_landmarks, pred_vertices, pred_triangles,
      pred_landmarks, True, scan_name, pred_name)
  centre, radius = fg2018_crop_sphere(scan_k, radius_factor)
  kept = crop_sphere(scan_vertices, centre, radius)
  if kept.size == 0:
    raise ValueError(f'{scan_name}: no scan vertex within {radius:.1f} of the '
                     'crop centre; are the scan landmarks in the scan frame?')
  points = scan_vertices[kept]
  surface = point_mesh_distance.MeshDistance(
      transform.apply(pred_vertices), pred_triangles, backend, name=pred_name)
  info = {'crop_centre': centre.tolist(), 'crop_radius': radius,
          'num_points': int(kept.size), 'variant': variant}
  if with_icp:
    # Move the scan points onto the aligned prediction, then express the
    # refinement as a motion of the prediction (distances are invariant).
    result = alignment.icp(points, surface, mode=icp_mode,
                           max_iterations=icp_max_iterations)
    points = result.transform.apply(points)
    transform = result.transform.inverse().compose(transform)
    info.update(icp_iterations=result.iterations,
                icp_converged=result.converged)
  distances = surface.distances(points)
  return ErrorResult(distances, kept, transform, 'nme_' + variant, info)


P2P_DIRECTIONS = ('scan_to_prediction', 'prediction_to_scan', 'symmetric')


def micc_p2p(scan_vertices, scan_landmarks, pred_vertices, pred_triangles,
             pred_landmarks, crop_radius=MICC_CROP_RADIUS_MM,
             with_scale=False, direction='scan_to_prediction',
             backend='auto', icp_mode='point_to_plane', icp_max_iterations=100,
             scan_name='scan', pred_name='prediction'):
  """Chen20's MICC point-to-point error of one prediction (Table 2).

  Steps: rigid (with_scale=False, "rough rigid alignment") Procrustes of the
  prediction's 7 keypoints onto the scan's; crop the scan to crop_radius mm
  around the scan's nose tip and the aligned prediction to crop_radius around
  its own nose tip; rigid ICP of the cropped scan points to the cropped
  predicted surface; then nearest-vertex distances in `direction`
  ('symmetric' concatenates both directions).

  The scan's nose tip is its landmark row 8 (or iBUG 30 of 68) when given;
  otherwise the scan vertex nearest to the aligned prediction's nose tip.
  The prediction must give its nose tip (68 landmarks, or 7 + nose tip).

  Returns:
    ErrorResult with protocol 'micc_p2p'.
  """
  if direction not in P2P_DIRECTIONS:
    raise ValueError(f'direction must be one of {P2P_DIRECTIONS}, got '
                     f'{direction!r}.')
  pred_tip = nose_tip_from_landmarks(pred_landmarks, pred_name + ' landmarks')
  if pred_tip is None:
    raise ValueError(f'{pred_name} landmarks: the MICC protocol needs the '
                     'nose tip (68 iBUG landmarks, or 7 keypoints + nose tip).')
  scan_tip = nose_tip_from_landmarks(scan_landmarks, scan_name + ' landmarks')
  (scan_vertices, _, pred_vertices, pred_triangles,
   transform) = _check_and_align(
      scan_vertices, scan_landmarks, pred_vertices, pred_triangles,
      pred_landmarks, with_scale, scan_name, pred_name)
  pred_aligned = transform.apply(pred_vertices)
  pred_tip = transform.apply(pred_tip)
  if scan_tip is None:
    nearest = np.argmin(np.sum((scan_vertices - pred_tip)**2, axis=1))
    scan_tip = scan_vertices[nearest]
  scan_kept = crop_sphere(scan_vertices, scan_tip, crop_radius)
  pred_kept, pred_crop, pred_tri = crop_mesh(pred_aligned, pred_triangles,
                                             pred_tip, crop_radius)
  if scan_kept.size < 3:
    raise ValueError(f'{scan_name}: fewer than 3 scan vertices within '
                     f'{crop_radius} mm of the nose tip.')
  if pred_tri.shape[0] == 0:
    raise ValueError(f'{pred_name}: no triangle within {crop_radius} mm of '
                     'the nose tip (units not millimetres?).')
  surface = point_mesh_distance.MeshDistance(pred_crop, pred_tri, backend,
                                             name=pred_name)
  result = alignment.icp(scan_vertices[scan_kept], surface, mode=icp_mode,
                         max_iterations=icp_max_iterations)
  scan_points = result.transform.apply(scan_vertices[scan_kept])
  transform = result.transform.inverse().compose(transform)
  parts, indices = [], []
  if direction in ('scan_to_prediction', 'symmetric'):
    d, _ = point_mesh_distance.nearest_vertex_distances(scan_points, pred_crop)
    parts.append(d)
    indices.append(scan_kept)
  if direction in ('prediction_to_scan', 'symmetric'):
    d, _ = point_mesh_distance.nearest_vertex_distances(pred_crop, scan_points)
    parts.append(d)
    indices.append(pred_kept)
  info = {'crop_radius': crop_radius, 'scan_nose_tip': scan_tip.tolist(),
          'num_scan_points': int(scan_kept.size),
          'num_prediction_points': int(pred_kept.size),
          'icp_iterations': result.iterations,
          'icp_converged': result.converged, 'direction': direction}
  return ErrorResult(np.concatenate(parts), np.concatenate(indices), transform,
                     'micc_p2p', info)


def summarize(distances):
  """{'mean','median','std','num_points'} of a distance array (mm)."""
  distances = np.asarray(distances, dtype=np.float64)
  if distances.size == 0:
    raise ValueError('summarize: no distances.')
  return {'mean': float(distances.mean()),
          'median': float(np.median(distances)),
          'std': float(distances.std()),
          'num_points': int(distances.size)}


def aggregate(per_subject_distances):
  """Statistics over subjects.

  Args:
    per_subject_distances: list of [M_i] distance arrays (mm).

  Returns:
    dict with 'pooled' (mean/median/std over all points of all subjects: the
    paper's "mean±std" form) and 'subject' (mean, median and std of the
    per-subject mean errors), plus 'num_subjects'.
  """
  if not per_subject_distances:
    raise ValueError('aggregate: no subjects.')
  means = np.array([np.mean(d) for d in per_subject_distances])
  return {
      'pooled': summarize(np.concatenate(per_subject_distances)),
      'subject': {'mean': float(means.mean()),
                  'median': float(np.median(means)),
                  'std': float(means.std())},
      'num_subjects': len(per_subject_distances),
  }
