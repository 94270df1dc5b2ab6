"""Similarity/rigid Procrustes on corresponding points and rigid ICP to a mesh.

Transforms act on row-vector points: x' = scale * x @ rotation.T + translation
(i.e. x' = s R x + t for column vectors). Rotations are proper (det = +1):
unlike the FG 2018 reference script's `reflection='best'`, a mirror image is
never accepted as an alignment. Units are those of the target (millimetres).
"""

import dataclasses

import numpy as np

from eval import point_mesh_distance


@dataclasses.dataclass
class SimilarityTransform:
  """x' = scale * x @ rotation.T + translation.

  Attributes:
    scale: float (1.0 for a rigid transform).
    rotation: [3, 3] float64, proper rotation.
    translation: [3] float64, target units.
  """
  scale: float = 1.0
  rotation: np.ndarray = dataclasses.field(default_factory=lambda: np.eye(3))
  translation: np.ndarray = dataclasses.field(
      default_factory=lambda: np.zeros(3))

  def apply(self, points):
    """points [..., 3] -> transformed [..., 3] float64."""
    points = np.asarray(points, dtype=np.float64)
    return self.scale * points @ np.asarray(self.rotation).T + self.translation

  def inverse(self):
    rotation_t = np.asarray(self.rotation).T
    return SimilarityTransform(1.0 / self.scale, rotation_t,
                               -(rotation_t @ self.translation) / self.scale)

  def compose(self, first):
    """The transform applying `first`, then `self`."""
    return SimilarityTransform(
        self.scale * first.scale, self.rotation @ first.rotation,
        self.scale * self.rotation @ first.translation + self.translation)

  @property
  def rotation_angle_degrees(self):
    cos = (np.trace(self.rotation) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def rotation_from_axis_angle(axis_angle):
  """Rodrigues: [3] axis * angle (radians) -> [3, 3] rotation."""
  axis_angle = np.asarray(axis_angle, dtype=np.float64)
  angle = np.linalg.norm(axis_angle)
  if angle < 1e-16:
    return np.eye(3)
  k = axis_angle / angle
  kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
  return np.eye(3) + np.sin(angle) * kx + (1 - np.cos(angle)) * kx @ kx


def _as_points(x, name):
  x = np.asarray(x, dtype=np.float64)
  if x.ndim != 2 or x.shape[1] != 3:
    raise ValueError(f'{name}: expected [K, 3] points, got shape {x.shape}.')
  if not np.all(np.isfinite(x)):
    raise ValueError(f'{name}: contains NaN or inf.')
  return x


def procrustes(source, target, with_scale=True, weights=None,
               source_name='source', target_name='target'):
  """Least-squares similarity (or rigid) transform mapping source onto target.

  Minimises sum_i w_i |s R source_i + t - target_i|^2 over proper rotations
  (Umeyama 1991). Closed form, exact for noise-free correspondences.

  Args:
    source: [K, 3] points (e.g. a reconstruction's 7 landmarks).
    target: [K, 3] corresponding points (e.g. the scan's 7 landmarks), mm.
    with_scale: estimate the scale s; otherwise s = 1 (rigid).
    weights: optional [K] non-negative weights.
    source_name, target_name: how errors name the inputs (e.g. file names).

  Returns:
    SimilarityTransform with source -> target.

  Raises:
    ValueError: shapes differ (message gives both counts and names), fewer
      than 3 points, NaN/inf, or degenerate (collinear) points.
  """
  source = _as_points(source, source_name)
  target = _as_points(target, target_name)
  if source.shape[0] != target.shape[0]:
    raise ValueError(
        f'landmark count mismatch: {source_name} has {source.shape[0]} '
        f'points, {target_name} has {target.shape[0]}.')
  if source.shape[0] < 3:
    raise ValueError(f'{source_name}: need at least 3 correspondences, got '
                     f'{source.shape[0]}.')
  if weights is None:
    weights = np.ones(source.shape[0])
  weights = np.asarray(weights, dtype=np.float64)
  if weights.shape != (source.shape[0],) or np.any(weights < 0) or not np.all(
      np.isfinite(weights)) or weights.sum() <= 0:
    raise ValueError('weights must be [K] finite, non-negative, not all 0.')
  w = weights / weights.sum()
  mu_s = w @ source
  mu_t = w @ target
  xs = source - mu_s
  xt = target - mu_t
  covariance = (xt * w[:, None]).T @ xs  # [3, 3] target x source
  u, sigma, vt = np.linalg.svd(covariance)
  var_s = float(w @ np.sum(xs * xs, axis=1))
  if var_s <= 0 or sigma[1] <= 1e-12 * max(sigma[0], 1e-300):
    raise ValueError(f'{source_name} / {target_name}: points are degenerate '
                     '(coincident or collinear); no unique alignment.')
  d = np.ones(3)
  if np.linalg.det(u) * np.linalg.det(vt) < 0:
    d[2] = -1.0
  rotation = u @ np.diag(d) @ vt
  scale = float(sigma @ d / var_s) if with_scale else 1.0
  translation = mu_t - scale * rotation @ mu_s
  return SimilarityTransform(scale, rotation, translation)


@dataclasses.dataclass
class IcpResult:
  """Result of `icp`.

  Attributes:
    transform: rigid SimilarityTransform (scale 1) moving the source points
      onto the target surface (composed with the initial transform).
    iterations: number of iterations run.
    converged: whether the stopping criterion was met before max_iterations.
    rms_history: [iterations + 1] RMS point-to-surface distance (mm) before
      each iteration and after the last one.
  """
  transform: SimilarityTransform
  iterations: int
  converged: bool
  rms_history: list


def _triangle_normals(vertices, triangles):
  corners = vertices[triangles]
  n = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
  norm = np.linalg.norm(n, axis=1, keepdims=True)
  return n / np.where(norm > 0, norm, 1.0)


def boundary_edge_mask(triangles):
  """[T, 3] bool: edge k of triangle t (corners k, k+1) is on the boundary."""
  triangles = np.asarray(triangles, np.int64)
  edges = np.stack([triangles, np.roll(triangles, -1, axis=1)], -1)  # [T,3,2]
  edges = np.sort(edges.reshape(-1, 2), axis=1)
  _, inverse, counts = np.unique(edges, axis=0, return_inverse=True,
                                 return_counts=True)
  return (counts[inverse.ravel()] == 1).reshape(-1, 3)


def _on_boundary(closest, triangle_ids, vertices, triangles, boundary, tol):
  """[M] bool: closest point lies on a boundary edge of its triangle."""
  result = np.zeros(closest.shape[0], bool)
  has = boundary[triangle_ids]
  for k in range(3):
    rows = np.flatnonzero(has[:, k])
    if not rows.size:
      continue
    tri = triangles[triangle_ids[rows]]
    a, b = vertices[tri[:, k]], vertices[tri[:, (k + 1) % 3]]
    ab = b - a
    t = np.clip(np.sum((closest[rows] - a) * ab, 1) /
                np.maximum(np.sum(ab * ab, 1), 1e-300), 0, 1)
    gap = np.linalg.norm(closest[rows] - (a + t[:, None] * ab), axis=1)
    result[rows] |= gap <= tol
  return result


def icp(source_points, target, initial=None, mode='point_to_plane',
        max_iterations=100, rotation_tolerance_deg=1e-6,
        translation_tolerance=1e-6, rms_tolerance=1e-5,
        max_correspondence_distance=None, reject_boundary=True):
  """Rigid ICP of a point set to a triangle mesh's surface.

  Each iteration finds, for every (currently transformed) source point, its
  exact closest point on the target surface, then solves for the rigid update:
  'point_to_point' = rigid Procrustes onto the closest points; 'point_to_plane'
  = linearised least squares of the distances along the closest triangles'
  normals (Chen & Medioni 1992), re-orthonormalised by Rodrigues' formula.
  Stops when the update rotates less than rotation_tolerance_deg AND moves
  less than translation_tolerance (mm), or when the RMS distance changed by
  less than rms_tolerance (relative) since the previous iteration (with noisy
  scans the closest-triangle assignment makes the update jitter at the
  1e-3 degree / 1e-3 mm level forever while the RMS is stationary to 1e-6),
  or after max_iterations.

  Args:
    source_points: [M, 3] points to move (e.g. cropped scan vertices), mm.
    target: a `point_mesh_distance.MeshDistance` (the fixed surface).
    initial: SimilarityTransform to start from (its scale is kept fixed).
    mode: 'point_to_plane' or 'point_to_point'.
    max_iterations: iteration cap.
    rotation_tolerance_deg, translation_tolerance, rms_tolerance: convergence
      thresholds (degrees, mm, relative).
    max_correspondence_distance: if set, pairs farther apart (mm) are ignored
      in the update (not in the reported RMS).
    reject_boundary: ignore, in the update, source points whose closest point
      lies on a boundary edge of the target (they overhang it: e.g. scan
      points outside the predicted face); standard ICP practice (Turk & Levoy
      1994). Falls back to all pairs if fewer than 6 would remain.

  Returns:
    IcpResult.
  """
  if mode not in ('point_to_plane', 'point_to_point'):
    raise ValueError(f'mode must be point_to_plane or point_to_point, got '
                     f'{mode!r}.')
  source_points = _as_points(source_points, 'ICP source points')
  if source_points.shape[0] < 3:
    raise ValueError('ICP needs at least 3 source points, got '
                     f'{source_points.shape[0]}.')
  if not isinstance(target, point_mesh_distance.MeshDistance):
    raise TypeError('target must be a point_mesh_distance.MeshDistance.')
  transform = initial if initial is not None else SimilarityTransform()
  normals = None
  if mode == 'point_to_plane':
    normals = _triangle_normals(target.vertices, target.triangles)
  if reject_boundary:
    boundary = boundary_edge_mask(target.triangles)
    extent = np.ptp(target.vertices, axis=0).max()
    boundary_tol = 1e-9 * max(extent, 1e-12)
  history = []
  converged = False
  iteration = 0
  for iteration in range(1, max_iterations + 1):
    moved = transform.apply(source_points)
    sq, ids, closest = target.query(moved)
    history.append(float(np.sqrt(np.mean(sq))))
    if (len(history) >= 2 and
        abs(history[-2] - history[-1]) <= rms_tolerance * history[-2]):
      converged = True  # this iteration only measured: not counted
      return IcpResult(transform, iteration - 1, converged, history)
    keep = np.ones(moved.shape[0], bool)
    if max_correspondence_distance is not None:
      keep = sq <= max_correspondence_distance**2
      if keep.sum() < 6:
        raise ValueError('ICP: fewer than 6 correspondences within '
                         f'{max_correspondence_distance} mm.')
    if reject_boundary:
      inner = keep & ~_on_boundary(closest, ids, target.vertices,
                                   target.triangles, boundary, boundary_tol)
      if inner.sum() >= 6:
        keep = inner
    p, q = moved[keep], closest[keep]
    if mode == 'point_to_point':
      update = procrustes(p, q, with_scale=False)
    else:
      n = normals[ids[keep]]
      # Residual along the normal; points lying exactly on an edge/vertex have
      # (q - p) not parallel to n: use the normal of the closest triangle.
      centre = p.mean(axis=0)
      pc = p - centre
      a = np.concatenate([np.cross(pc, n), n], axis=1)  # [M, 6]
      b = np.einsum('ij,ij->i', q - p, n)
      # Tiny Tikhonov term keeps sliding directions (e.g. of a plane) fixed.
      ata = a.T @ a + 1e-9 * np.trace(a.T @ a) * np.eye(6)
      x = np.linalg.solve(ata, a.T @ b)
      rotation = rotation_from_axis_angle(x[:3])
      update = SimilarityTransform(1.0, rotation,
                                   centre + x[3:] - rotation @ centre)
    transform = update.compose(transform)
    if (update.rotation_angle_degrees < rotation_tolerance_deg and
        np.linalg.norm(update.translation) < translation_tolerance):
      converged = True
      break
  history.append(float(np.sqrt(np.mean(target.query(
      transform.apply(source_points))[0]))))
  return IcpResult(transform, iteration, converged, history)
