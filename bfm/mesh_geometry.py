"""Triangle-mesh geometry: the project's one normal computation, plus NumPy
helpers that the model converters use to check and fix topology.

Conventions (see /work/contract.md): triangles wind counter-clockwise when seen
from outside, so the right-hand-rule normal (v1 - v0) x (v2 - v0) points out
of the surface.
"""

import numpy as np
import tensorflow as tf


def _check_triangles(triangles, name='triangles'):
  triangles = np.asarray(triangles)
  if triangles.ndim != 2 or triangles.shape[1] != 3:
    raise ValueError('%s must have shape [T, 3], got %s' %
                     (name, triangles.shape))
  if not np.issubdtype(triangles.dtype, np.integer):
    raise ValueError('%s must be integer vertex indices, got dtype %s' %
                     (name, triangles.dtype))
  return triangles.astype(np.int32)


def triangle_normals(vertices, triangles, normalize=True):
  """Right-hand-rule triangle normals.

  Args:
    vertices: [B, N, 3] float32 (any units).
    triangles: [T, 3] int32 vertex indices shared by the batch.
    normalize: if False, returns the cross products (length = 2 * area).

  Returns:
    [B, T, 3] float32; unit length if normalize (zero for degenerate
    triangles).
  """
  vertices = tf.convert_to_tensor(vertices, tf.float32)
  triangles = tf.convert_to_tensor(_check_triangles(triangles), tf.int32)
  v0 = tf.gather(vertices, triangles[:, 0], axis=1)
  v1 = tf.gather(vertices, triangles[:, 1], axis=1)
  v2 = tf.gather(vertices, triangles[:, 2], axis=1)
  cross = tf.linalg.cross(v1 - v0, v2 - v0)
  if normalize:
    cross = tf.math.l2_normalize(cross, axis=-1, epsilon=1e-20)
  return cross


def vertex_normals(vertices, triangles):
  """Area-weighted unit vertex normals of meshes with a shared topology.

  Each vertex normal is the normalised sum of the right-hand normals of the
  triangles around it, weighted by triangle area, so with triangles
  counter-clockwise seen from outside it points out of the surface.
  Differentiable w.r.t. vertices.

  Args:
    vertices: [B, N, 3] float32 (or [N, 3], then the result is [N, 3]).
    triangles: [T, 3] int32 vertex indices (NumPy, or an eager tensor).

  Returns:
    [B, N, 3] float32 unit normals (zero for vertices used by no triangle).
  """
  vertices = tf.convert_to_tensor(vertices, tf.float32)
  unbatched = vertices.shape.rank == 2
  if unbatched:
    vertices = vertices[None]
  if vertices.shape.rank != 3 or vertices.shape[-1] != 3:
    raise ValueError('vertex_normals: vertices must be [B, N, 3], got %s' %
                     vertices.shape)
  triangles = _check_triangles(triangles)
  num_vertices = tf.shape(vertices)[1]
  face = triangle_normals(vertices, triangles, normalize=False)  # [B,T,3]
  face = tf.transpose(face, [1, 0, 2])  # [T,B,3]
  ids = tf.constant(triangles.T.reshape(-1), tf.int32)  # corner-major [3T]
  summed = tf.math.unsorted_segment_sum(
      tf.concat([face, face, face], axis=0), ids, num_vertices)  # [N,B,3]
  normals = tf.math.l2_normalize(
      tf.transpose(summed, [1, 0, 2]), axis=-1, epsilon=1e-20)
  return normals[0] if unbatched else normals


def triangle_normals_np(vertices, triangles):
  """NumPy right-hand-rule cross products [T, 3] (length = 2 * area)."""
  vertices = np.asarray(vertices, np.float64)
  t = _check_triangles(triangles)
  return np.cross(vertices[t[:, 1]] - vertices[t[:, 0]],
                  vertices[t[:, 2]] - vertices[t[:, 0]])


def vertex_normals_np(vertices, triangles):
  """NumPy twin of vertex_normals for one mesh: [N, 3] float64 unit normals."""
  vertices = np.asarray(vertices, np.float64)
  t = _check_triangles(triangles)
  face = triangle_normals_np(vertices, t)
  acc = np.zeros_like(vertices)
  for corner in range(3):
    np.add.at(acc, t[:, corner], face)
  norm = np.linalg.norm(acc, axis=1, keepdims=True)
  return acc / np.maximum(norm, 1e-30)


def outward_fraction(vertices, triangles):
  """Area-weighted fraction of triangle normals pointing away from the centre.

  The centre is the bounding-box centre of the mesh pushed back by half the
  depth extent, i.e. a point inside the head behind a face mask. Used to
  check (and fix) winding: 1.0 = all outward, 0.0 = all inward.
  """
  vertices = np.asarray(vertices, np.float64)
  t = _check_triangles(triangles)
  lo, hi = vertices.min(0), vertices.max(0)
  centre = 0.5 * (lo + hi)
  centre[2] -= 0.5 * (hi[2] - lo[2])
  face = triangle_normals_np(vertices, t)
  tri_centre = vertices[t].mean(1)
  dots = np.sum(face * (tri_centre - centre), axis=1)
  weights = np.linalg.norm(face, axis=1)
  total = weights.sum()
  if total <= 0:
    raise ValueError('mesh has no non-degenerate triangle')
  return float(weights[dots > 0].sum() / total)


def orient_outward(vertices, triangles):
  """Returns triangles with the winding flipped if most normals point inward.

  Args:
    vertices: [N, 3] a mean shape in the model frame (z out of the face).
    triangles: [T, 3] int.
  Returns:
    ([T, 3] int32 triangles, bool flipped).
  """
  t = _check_triangles(triangles)
  if outward_fraction(vertices, t) < 0.5:
    return t[:, ::-1].copy(), True
  return t, False


def edge_lengths(vertices, triangles):
  """Lengths of the three edges of every triangle, [T, 3] float64."""
  vertices = np.asarray(vertices, np.float64)
  t = _check_triangles(triangles)
  p = vertices[t]
  return np.linalg.norm(p - np.roll(p, -1, axis=1), axis=2)
