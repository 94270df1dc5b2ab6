"""Cylindrical UV coordinates for models that ship none (Chen20's construction).

Chen20 (cyj907/unsupervised-detail-layer, tools/get_uv_ind.py) maps each BFM
vertex of the mean face to the UV map by a cylinder around the vertical axis:
the column is proportional to the azimuth arctan(x / z) and the row to the
height y, with constants that fit the face into a 512 x 512 map. Here the
same projection is written for any model: the cylinder axis is vertical
(parallel to y) and lies behind the face at the depth of the mesh's
half-width from the front; the azimuth is scaled by that radius so that
1 mm of arc and 1 mm of height cover the same UV distance; and the result is
centred and scaled to fill [margin, 1 - margin] along its longer side.
u grows with x (subject's left = image right), v grows with y (up).
"""

import numpy as np


def cylindrical_uv(mean_shape, margin=0.02):
  """Cylindrical projection of a mean shape into the unit UV square.

  Args:
    mean_shape: [N, 3] float, model axes (x left-right, y up, z forward).
    margin: empty border kept on the longer UV side.
  Returns:
    [N, 2] float32 in [0, 1] (u right, v up).
  """
  points = np.asarray(mean_shape, np.float64)
  if points.ndim != 2 or points.shape[1] != 3:
    raise ValueError('cylindrical_uv: mean_shape must be [N, 3], got %s' %
                     (points.shape,))
  lo, hi = points.min(0), points.max(0)
  radius = 0.5 * (hi[0] - lo[0])
  axis_x = 0.5 * (hi[0] + lo[0])
  axis_z = hi[2] - radius
  azimuth = np.arctan2(points[:, 0] - axis_x, points[:, 2] - axis_z)
  height = points[:, 1]

  def fill(values):
    lo, hi = values.min(), values.max()
    return margin + (values - lo) * (1.0 - 2.0 * margin) / max(hi - lo, 1e-12)

  uv = np.stack([fill(azimuth), fill(height)], 1)
  return np.clip(uv, 0.0, 1.0).astype(np.float32)


def texel_size_mm(mean_shape, uv, triangles, uv_size):
  """Median surface length of one texel along u and along v, in mm.

  Args:
    mean_shape: [N, 3] mm; uv: [N, 2]; triangles: [T, 3]; uv_size: S.
  Returns:
    (mm per texel along u, mm per texel along v), from the edges that run
    mostly along u (resp. v).
  """
  p = np.asarray(mean_shape, np.float64)
  uv = np.asarray(uv, np.float64)
  t = np.asarray(triangles)
  edges = np.concatenate([t[:, [0, 1]], t[:, [1, 2]], t[:, [2, 0]]])
  duv = (uv[edges[:, 1]] - uv[edges[:, 0]]) * uv_size
  length = np.linalg.norm(p[edges[:, 1]] - p[edges[:, 0]], axis=1)
  out = []
  for axis in (0, 1):
    along = np.abs(duv[:, axis]) > 3 * np.abs(duv[:, 1 - axis])
    out.append(float(np.median(length[along] / np.abs(duv[along, axis]))))
  return tuple(out)


def uv_signed_areas(uv, triangles):
  """Signed UV area of every triangle, [T]; > 0 = counter-clockwise."""
  uv = np.asarray(uv, np.float64)
  t = np.asarray(triangles)
  a, b, c = uv[t[:, 0]], uv[t[:, 1]], uv[t[:, 2]]
  return 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) -
                (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))
