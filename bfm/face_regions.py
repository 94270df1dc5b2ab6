"""Per-vertex face regions derived from the 68 landmarks of the mean shape.

For models that do not ship their own masks or contour definitions (the
built-in synthetic face, ICT-FaceKit, raw BFM 2009), the regions Chen20 uses
to mask the displacement ('face', 'wo_eyes', 'wo_nose', 'wo_eyebrows') and the
contour-landmark candidate vertices are derived here from the iBUG-68
landmark positions in the frontal (x, y) projection of the mean shape.

Mask semantics follow Chen20 (face_model.py build_model): 'wo_X' is every
vertex outside region X (not restricted to the face); 'detail' = face AND
wo_eyes AND wo_nose AND wo_eyebrows is where the detail displacement applies.
UV-space masks at any resolution are renderer.uv.uv_mask(model.uv,
model.triangles, model.masks[key], size).
"""

import numpy as np

from bfm import mesh_geometry

# Region sizes relative to the landmark polygons (chosen by eye on the SFM,
# ICT and synthetic faces: eye region covers the lids, brow band a real brow).
EYE_SCALE_X = 1.35
EYE_SCALE_Y = 2.2
BROW_HALF_WIDTH = 0.09  # times the outer-eye-corner distance
NOSE_WING = 1.45  # nose half width = NOSE_WING * |x35 - x31| / 2
FOREHEAD = 0.45  # forehead height above the brows, times brow-to-chin


def points_in_polygon(points, polygon):
  """Even-odd rule. points [M, 2], polygon [P, 2] -> bool [M]."""
  points = np.asarray(points, np.float64)
  polygon = np.asarray(polygon, np.float64)
  x, y = points[:, 0], points[:, 1]
  inside = np.zeros(len(points), bool)
  for i in range(len(polygon)):
    x0, y0 = polygon[i]
    x1, y1 = polygon[(i + 1) % len(polygon)]
    crosses = (y0 > y) != (y1 > y)
    with np.errstate(divide='ignore', invalid='ignore'):
      x_at = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
    inside ^= crosses & (x < x_at)
  return inside


def distance_to_polyline(points, polyline):
  """Euclidean distance of points [M, 2] to an open polyline [P, 2] -> [M]."""
  points = np.asarray(points, np.float64)
  best = np.full(len(points), np.inf)
  for a, b in zip(polyline[:-1], polyline[1:]):
    ab = b - a
    t = np.clip(((points - a) @ ab) / max(ab @ ab, 1e-12), 0.0, 1.0)
    d = np.linalg.norm(points - (a + t[:, None] * ab), axis=1)
    best = np.minimum(best, d)
  return best


def _front_surface(mean_shape, triangles, landmarks68):
  """Vertices on the visible front surface in a frontal view."""
  normals = mesh_geometry.vertex_normals_np(mean_shape, triangles)
  lm = mean_shape[landmarks68]
  iod = np.linalg.norm(lm[45] - lm[36])
  return (normals[:, 2] > -0.3) & (mean_shape[:, 2] >= lm[:, 2].min() -
                                   0.1 * iod)


def face_polygon(landmarks_xy):
  """Jaw line 0..16 closed over the forehead above the brows, [27, 2]."""
  lm = np.asarray(landmarks_xy, np.float64)
  brows = lm[17:27]
  chin_y = lm[8, 1]
  lift = FOREHEAD * (brows[:, 1].mean() - chin_y)
  forehead = brows[::-1] + np.array([0.0, lift])
  return np.concatenate([lm[0:17], forehead], axis=0)


def eye_polygons(landmarks_xy):
  """The two 6-point eye outlines, scaled about their centres: 2 x [6, 2]."""
  lm = np.asarray(landmarks_xy, np.float64)
  out = []
  for first in (36, 42):
    eye = lm[first:first + 6]
    centre = eye.mean(0)
    out.append(centre + (eye - centre) * np.array([EYE_SCALE_X, EYE_SCALE_Y]))
  return out


def nose_polygon(landmarks_xy):
  """Nose outline from the bridge (27) to the nostril base (31..35), [8, 2]."""
  lm = np.asarray(landmarks_xy, np.float64)
  half = NOSE_WING * abs(lm[35, 0] - lm[31, 0]) / 2
  cx = lm[27:36, 0].mean()
  top, tip, base = lm[27, 1], lm[30, 1], lm[33, 1]
  below = base - 0.25 * max(tip - base, 1e-6)
  return np.array([
      [cx - 0.35 * half, top], [cx + 0.35 * half, top],
      [cx + 0.8 * half, tip + 0.25 * (top - tip)], [cx + half, tip],
      [cx + 0.8 * half, below], [cx - 0.8 * half, below], [cx - half, tip],
      [cx - 0.8 * half, tip + 0.25 * (top - tip)]
  ])


def region_masks(mean_shape, triangles, landmarks68):
  """Chen20's per-vertex masks from the landmark geometry of the mean shape.

  Args:
    mean_shape: [N, 3] mm, model axes (frontal view along -z).
    triangles: [T, 3] int, outward winding.
    landmarks68: [68] int vertex indices.
  Returns:
    dict of bool [N]: 'face', 'wo_eyes', 'wo_nose', 'wo_eyebrows', 'detail'.
  """
  mean_shape = np.asarray(mean_shape, np.float64)
  xy = mean_shape[:, :2]
  lm = mean_shape[np.asarray(landmarks68)][:, :2]
  front = _front_surface(mean_shape, triangles, landmarks68)
  iod = np.linalg.norm(lm[45] - lm[36])
  face = front & points_in_polygon(xy, face_polygon(lm))
  eyes = np.zeros(len(xy), bool)
  for poly in eye_polygons(lm):
    eyes |= points_in_polygon(xy, poly)
  eyes &= front
  nose = front & points_in_polygon(xy, nose_polygon(lm))
  brows = np.zeros(len(xy), bool)
  for first in (17, 22):
    brows |= distance_to_polyline(xy, lm[first:first + 5]) < (
        BROW_HALF_WIDTH * iod)
  brows &= front
  return {
      'face': face,
      'wo_eyes': ~eyes,
      'wo_nose': ~nose,
      'wo_eyebrows': ~brows,
      'detail': face & ~eyes & ~nose & ~brows,
  }


def contour_candidates(mean_shape, triangles, landmarks68, fixed=(8,)):
  """Candidate vertices for the jaw-contour landmarks 0..16.

  A 2D landmark detector marks the jaw contour on the silhouette, which
  moves over the surface with the pose; as in 3DDFA-style fitting, each
  contour landmark k gets a horizontal band of vertices at its height on its
  side of the face (from the midline to the mesh edge) and the landmark loss
  picks the silhouette vertex among them. Landmarks in `fixed` (the chin, 8)
  keep their single vertex.

  Returns:
    list of 17 int32 arrays; element k always contains landmarks68[k].
  """
  mean_shape = np.asarray(mean_shape, np.float64)
  landmarks68 = np.asarray(landmarks68)
  lm = mean_shape[landmarks68]
  front = _front_surface(mean_shape, triangles, landmarks68)
  edge = np.median(mesh_geometry.edge_lengths(mean_shape, triangles))
  midline = 0.5 * (lm[0:8, 0].mean() + lm[9:17, 0].mean())
  out = []
  for k in range(17):
    if k in fixed:
      out.append(np.array([landmarks68[k]], np.int32))
      continue
    neighbours = [j for j in (k - 1, k + 1) if 0 <= j <= 16]
    gap = min(abs(lm[k, 1] - lm[j, 1]) for j in neighbours)
    half = max(0.75 * edge, 0.5 * gap)
    side = np.sign(lm[k, 0] - midline)
    band = (front & (np.abs(mean_shape[:, 1] - lm[k, 1]) <= half) &
            ((mean_shape[:, 0] - midline) * side >= 0))
    cand = np.union1d(np.flatnonzero(band), [landmarks68[k]])
    out.append(cand.astype(np.int32))
  return out
