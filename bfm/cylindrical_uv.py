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
  arc = radius * azimuth
  height = points[:, 1]
  span = max(arc.max() - arc.min(), height.max() - height.min())
  scale = (1.0 - 2.0 * margin) / span
  u = 0.5 + (arc - 0.5 * (arc.max() + arc.min())) * scale
  v = 0.5 + (height - 0.5 * (height.max() + height.min())) * scale
  return np.clip(np.stack([u, v], 1), 0.0, 1.0).astype(np.float32)


def uv_signed_areas(uv, triangles):
  """Signed UV area of every triangle, [T]; > 0 = counter-clockwise."""
  uv = np.asarray(uv, np.float64)
  t = np.asarray(triangles)
  a, b, c = uv[t[:, 0]], uv[t[:, 1]], uv[t[:, 2]]
  return 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) -
                (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))
