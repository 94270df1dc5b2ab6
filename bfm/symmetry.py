"""Left-right vertex symmetry map by nearest mirrored neighbour.

For models without a symmetry list: mirror the mean shape in x (x -> -x),
look up each vertex's nearest mirrored neighbours (scipy cKDTree), and pair
vertices greedily by increasing distance so the result is an involution
(i <-> j both ways; midline vertices may pair with themselves). The worst
mismatch |mirror(v_i) - v_symmetry[i]| is returned so converters can report it.
"""

import numpy as np
from scipy import spatial


def mirror_map(mean_shape, num_neighbours=8):
  """Symmetry involution of a near-symmetric mesh.

  Args:
    mean_shape: [N, 3] mm, mirror plane x = 0.
    num_neighbours: candidates per vertex for the pairing.
  Returns:
    (symmetry [N] int32 with symmetry[symmetry] == arange(N),
     max_error_mm float, mean_error_mm float).
  """
  points = np.asarray(mean_shape, np.float64)
  n = len(points)
  mirrored = points * np.array([-1.0, 1.0, 1.0])
  k = min(num_neighbours, n)
  dist, idx = spatial.cKDTree(points).query(mirrored, k=k)
  dist, idx = dist.reshape(n, k), idx.reshape(n, k)
  rows = np.repeat(np.arange(n), k)
  order = np.argsort(dist.reshape(-1), kind='stable')
  pair_i, pair_j = rows[order], idx.reshape(-1)[order]
  symmetry = np.full(n, -1, np.int64)
  for i, j in zip(pair_i, pair_j):
    if symmetry[i] < 0 and symmetry[j] < 0:
      symmetry[i] = j
      symmetry[j] = i
  unpaired = np.flatnonzero(symmetry < 0)
  if len(unpaired):
    # Rare: all candidates taken. Pair the leftovers among themselves.
    tree = spatial.cKDTree(points[unpaired])
    _, near = tree.query(mirrored[unpaired], k=len(unpaired))
    near = np.asarray(near).reshape(len(unpaired), -1)
    for a, row in enumerate(near):
      i = unpaired[a]
      if symmetry[i] >= 0:
        continue
      for b in row:
        j = unpaired[b]
        if symmetry[j] < 0:
          symmetry[i] = j
          symmetry[j] = i
          break
  symmetry = _improve_pairs(points, mirrored, symmetry, idx)
  errors = mismatch_mm(points, symmetry)
  return symmetry.astype(np.int32), float(errors.max()), float(errors.mean())


def _improve_pairs(points, mirrored, symmetry, candidates, passes=3):
  """Two-pair swaps that lower the worse error of the two pairs involved.

  Greedy pairing can leave a few vertices whose good partners were taken;
  for such a vertex i (partner j) and a candidate c (partner d), re-pair as
  (i, c), (j, d) when that lowers max(error) of the two pairs.
  """
  def err(a, b):
    return np.linalg.norm(mirrored[a] - points[b])

  for _ in range(passes):
    changed = False
    errors = np.linalg.norm(mirrored - points[symmetry], axis=1)
    best = np.linalg.norm(mirrored - points[candidates[:, 0]], axis=1)
    for i in np.flatnonzero(errors > 2.0 * best + 1e-9):
      j = symmetry[i]
      for c in candidates[i]:
        d = symmetry[c]
        if c in (i, j) or d in (i, j) or d == c or j == i:
          continue
        if max(err(i, c), err(j, d)) < max(err(i, j), err(c, d)):
          symmetry[i], symmetry[c] = c, i
          symmetry[j], symmetry[d] = d, j
          changed = True
          break
    if not changed:
      break
  return symmetry


def mismatch_mm(mean_shape, symmetry):
  """Per-vertex |mirror(v_i) - v_symmetry[i]| in the shape's units, [N]."""
  points = np.asarray(mean_shape, np.float64)
  mirrored = points * np.array([-1.0, 1.0, 1.0])
  return np.linalg.norm(mirrored - points[np.asarray(symmetry)], axis=1)
