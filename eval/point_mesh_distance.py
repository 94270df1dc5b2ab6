"""Exact closest points on a triangle mesh surface (point-to-triangle).

Three interchangeable backends answer the same query, "for every point, the
closest point on the union of the mesh's triangles":
- 'igl': libigl's AABB tree (`igl.AABB`), fast (C++); used when importable.
- 'kdtree': scipy cKDTrees over triangle centroids to shortlist candidates
  plus the exact vectorised point-triangle distance below. It is exact, not
  approximate: a triangle whose centroid is at distance D from the point and
  whose corners are within R of its centroid is at least D - R away. The
  triangles are grouped by R (classes a factor 2 apart, one tree each, so a
  few big triangles do not weaken the bound for all); per class the shortlist
  (k nearest centroids) is widened until the best distance found so far is
  <= D_k - R_class.
- 'brute': every point against every triangle (chunked). For tests.

All distances are in the units of the inputs (millimetres in this project).
"""

import numpy as np
from scipy import spatial

try:  # libigl from PyPI; optional.
  import igl as _igl
except ImportError:  # pragma: no cover - depends on the environment
  _igl = None

BACKENDS = ('auto', 'igl', 'kdtree', 'brute')


def _dot(u, v):
  return np.einsum('...i,...i->...', u, v)


def _closest_on_segments(p, a, b):
  """Closest points to p [M,3] on segments a-b [M,3]; degenerate segments ok."""
  ab = b - a
  denom = _dot(ab, ab)
  t = np.where(denom > 0, _dot(p - a, ab) / np.where(denom > 0, denom, 1), 0)
  t = np.clip(t, 0.0, 1.0)
  return a + t[..., None] * ab


def closest_points_on_triangles(points, a, b, c):
  """Closest point on each triangle (a, b, c) to each point, elementwise.

  Exact: if the orthogonal projection of the point onto the triangle's plane
  lies inside the triangle (barycentrics >= 0) it is the answer; otherwise the
  answer lies on the boundary and is the closest of the three edge answers.
  Degenerate (zero-area) triangles reduce to their edges.

  Args:
    points, a, b, c: [..., 3] float64 arrays of the same shape.

  Returns:
    (closest [..., 3] float64, squared_distance [...] float64).
  """
  points, a, b, c = (np.asarray(x, np.float64) for x in (points, a, b, c))
  ab, ac, ap = b - a, c - a, points - a
  d00, d01, d11 = _dot(ab, ab), _dot(ab, ac), _dot(ac, ac)
  d20, d21 = _dot(ap, ab), _dot(ap, ac)
  denom = d00 * d11 - d01 * d01
  scale = np.maximum(d00, d11)
  ok = denom > 1e-14 * scale * scale
  safe = np.where(ok, denom, 1.0)
  v = (d11 * d20 - d01 * d21) / safe
  w = (d00 * d21 - d01 * d20) / safe
  u = 1.0 - v - w
  inside = ok & (u >= 0) & (v >= 0) & (w >= 0)
  projected = a + v[..., None] * ab + w[..., None] * ac
  best = projected
  best_sq = _dot(points - projected, points - projected)
  if not np.all(inside):
    candidates = [
        _closest_on_segments(points, a, b),
        _closest_on_segments(points, b, c),
        _closest_on_segments(points, c, a)
    ]
    edge_best = candidates[0]
    edge_sq = _dot(points - edge_best, points - edge_best)
    for q in candidates[1:]:
      sq = _dot(points - q, points - q)
      better = sq < edge_sq
      edge_best = np.where(better[..., None], q, edge_best)
      edge_sq = np.where(better, sq, edge_sq)
    best = np.where(inside[..., None], projected, edge_best)
    best_sq = np.where(inside, best_sq, edge_sq)
  return best, best_sq


def _check_mesh(vertices, triangles, name):
  vertices = np.asarray(vertices, dtype=np.float64)
  triangles = np.asarray(triangles)
  if vertices.ndim != 2 or vertices.shape[1] != 3 or vertices.shape[0] == 0:
    raise ValueError(f'{name}: vertices must be a non-empty [N, 3] array, got '
                     f'shape {vertices.shape}.')
  if triangles.ndim != 2 or triangles.shape[1] != 3 or triangles.shape[0] == 0:
    raise ValueError(f'{name}: triangles must be a non-empty [T, 3] array, got '
                     f'shape {triangles.shape}.')
  if not np.issubdtype(triangles.dtype, np.integer):
    raise ValueError(f'{name}: triangles must be integers, got '
                     f'{triangles.dtype}.')
  if triangles.min() < 0 or triangles.max() >= vertices.shape[0]:
    raise ValueError(f'{name}: triangle index out of range [0, '
                     f'{vertices.shape[0]}).')
  if not np.all(np.isfinite(vertices)):
    raise ValueError(f'{name}: vertices contain NaN or inf.')
  return vertices, triangles.astype(np.int64)


def _check_points(points, name):
  points = np.asarray(points, dtype=np.float64)
  if points.ndim != 2 or points.shape[1] != 3:
    raise ValueError(
        f'{name}: query points must be [M, 3], got {points.shape}.')
  if not np.all(np.isfinite(points)):
    raise ValueError(f'{name}: query points contain NaN or inf.')
  return points


class MeshDistance:
  """Closest-point queries against one fixed triangle mesh (tree built once).

  Args:
    vertices: [N, 3] float, units of the queries (mm).
    triangles: [T, 3] int, 0-based; T >= 1.
    backend: 'auto' (libigl if importable, else 'kdtree'), 'igl', 'kdtree' or
      'brute'.
    name: how error messages refer to the mesh (e.g. its file name).
  """

  def __init__(self, vertices, triangles, backend='auto', name='mesh'):
    if backend not in BACKENDS:
      raise ValueError(f'backend must be one of {BACKENDS}, got {backend!r}.')
    if backend == 'auto':
      backend = 'igl' if _igl is not None else 'kdtree'
    if backend == 'igl' and _igl is None:
      raise ImportError('backend="igl" needs libigl (`pip install libigl`).')
    self.name = name
    self.backend = backend
    self.vertices, self.triangles = _check_mesh(vertices, triangles, name)
    self._corners = self.vertices[self.triangles]  # [T, 3, 3]
    if backend == 'igl':
      self._tree = _igl.AABB()
      self._tree.init(self.vertices, self.triangles)
    elif backend == 'kdtree':
      centroids = self._corners.mean(axis=1)
      radii = np.sqrt(
          np.max(np.sum((self._corners - centroids[:, None])**2, -1), -1))
      unit = max(float(np.median(radii)), 1e-300)
      group = np.floor(np.log2(np.maximum(radii / unit, 1.0))).astype(int)
      self._classes = []  # (triangle ids, radius bound, tree), biggest first
      for g in np.unique(group):
        members = np.flatnonzero(group == g)
        self._classes.append((members, float(radii[members].max()),
                              spatial.cKDTree(centroids[members])))
      self._classes.sort(key=lambda c: -c[0].size)

  def query(self, points):
    """Closest points on the surface.

    Args:
      points: [M, 3] float query points.

    Returns:
      squared_distances [M] float64, triangle_ids [M] int64 (a triangle
      attaining the minimum), closest_points [M, 3] float64.
    """
    points = _check_points(points, self.name)
    if points.shape[0] == 0:
      return np.zeros([0]), np.zeros([0], np.int64), np.zeros([0, 3])
    if self.backend == 'igl':
      sq, ids, closest = self._tree.squared_distance(self.vertices,
                                                     self.triangles, points)
      return np.asarray(sq), np.asarray(ids, np.int64), np.asarray(closest)
    if self.backend == 'brute':
      return self._query_brute(points)
    return self._query_kdtree(points)

  def distances(self, points):
    """Unsigned point-to-surface distances [M] float64."""
    return np.sqrt(self.query(points)[0])

  def _exact(self, points, triangle_ids):
    """Exact distances of points [M,3] to triangles triangle_ids [M, K]."""
    corners = self._corners[triangle_ids]  # [M, K, 3, 3]
    closest, sq = closest_points_on_triangles(points[:, None, :],
                                              corners[..., 0, :],
                                              corners[..., 1, :],
                                              corners[..., 2, :])
    best = np.argmin(sq, axis=1)
    rows = np.arange(points.shape[0])
    return sq[rows, best], triangle_ids[rows, best], closest[rows, best]

  def _query_brute(self, points, chunk_elements=2_000_000):
    num_triangles = self.triangles.shape[0]
    step = max(1, chunk_elements // num_triangles)
    out = [np.empty(points.shape[0]),
           np.empty(points.shape[0], np.int64),
           np.empty_like(points)]
    all_ids = np.arange(num_triangles)
    for start in range(0, points.shape[0], step):
      chunk = points[start:start + step]
      ids = np.broadcast_to(all_ids, (chunk.shape[0], num_triangles))
      for o, r in zip(out, self._exact(chunk, ids)):
        o[start:start + step] = r
    return tuple(out)

  def _query_kdtree(self, points, first_k=16, chunk_elements=1_000_000):
    """Per radius class: shortlist by centroid distance, widening k until
    no triangle outside the shortlist can beat the best distance so far."""
    sq = np.full(points.shape[0], np.inf)
    ids = np.zeros(points.shape[0], np.int64)
    closest = np.zeros_like(points)
    for members, radius, tree in self._classes:
      todo = np.arange(points.shape[0])
      k = min(first_k, members.size)
      while todo.size:
        step = max(1, chunk_elements // k)
        still = []
        for start in range(0, todo.size, step):
          rows = todo[start:start + step]
          p = points[rows]
          centroid_dist, cand = tree.query(p, k=k)
          centroid_dist = centroid_dist.reshape(p.shape[0], k)
          best = np.sqrt(sq[rows])
          # Points where even the nearest centroid of the class cannot win.
          hopeless = best <= centroid_dist[:, 0] - radius
          work = np.flatnonzero(~hopeless)
          if work.size:
            cand = members[cand.reshape(p.shape[0], k)[work]]
            s, i, c = self._exact(p[work], cand)
            better = s < sq[rows[work]]
            upd = rows[work[better]]
            sq[upd], ids[upd], closest[upd] = s[better], i[better], c[better]
          if k < members.size:
            unresolved = np.sqrt(sq[rows]) > centroid_dist[:, -1] - radius
            still.append(rows[unresolved & ~hopeless])
        todo = np.concatenate(still) if still else np.zeros([0], np.int64)
        k = min(4 * k, members.size)
    return sq, ids, closest


def point_to_surface_distances(points, vertices, triangles, backend='auto'):
  """Distances [M] from points [M, 3] to the mesh surface (same units)."""
  return MeshDistance(vertices, triangles, backend).distances(points)


def nearest_vertex_distances(points, vertices):
  """Point-to-point: distance [M] to the nearest vertex, and its index [M]."""
  points = _check_points(points, 'points')
  vertices = _check_points(vertices, 'vertices')
  if vertices.shape[0] == 0:
    raise ValueError('vertices: empty vertex set.')
  dist, idx = spatial.cKDTree(vertices).query(points)
  return dist, idx
