"""Slow pure-NumPy triangle rasterizer: the reference for the compiled op.

Same contract as renderer.rasterize_op.rasterize (see its docstring and
renderer/kernels/rasterize_triangles_core.h) and the same float64 arithmetic,
operation for operation, so that both agree exactly on which triangle covers
a pixel. Meant for tests on small meshes and images only.
"""

import collections

import numpy as np

Fragments = collections.namedtuple('Fragments',
                                   ['triangle_ids', 'barycentrics', 'depth'])


def _edge(ax, ay, bx, by, px, py):
  return (bx - ax) * (py - ay) - (by - ay) * (px - ax)


def _centre_range(lo, hi, size):
  first = max(0.0, np.ceil(lo))
  last = min(float(size - 1), np.floor(hi))
  return (int(first), int(last)) if first <= last else None


def _rasterize_image(vertices, triangles, height, width, cull_backfaces):
  """One image: vertices [N, 4] float32 clip, returns ids, bary, depth."""
  v = vertices.astype(np.float64)
  w = v[:, 3]
  positive = w > 0.0
  safe_w = np.where(positive, w, 1.0)
  px = (v[:, 0] / safe_w + 1.0) * (0.5 * width) - 0.5
  py = (1.0 - v[:, 1] / safe_w) * (0.5 * height) - 0.5
  z = v[:, 2] / safe_w
  inv_w = 1.0 / safe_w

  zbuf = np.full([height, width], np.inf)
  ids = np.full([height, width], -1, np.int32)
  for t, (i0, i1, i2) in enumerate(triangles):
    if not (positive[i0] and positive[i1] and positive[i2]):
      continue
    x0, y0, x1, y1, x2, y2 = px[i0], py[i0], px[i1], py[i1], px[i2], py[i2]
    area = _edge(x0, y0, x1, y1, x2, y2)
    # Counter-clockwise in NDC (y up) is a negative area in pixels (y down).
    if area == 0.0 or not np.isfinite(area) or (cull_backfaces and
                                                 area > 0.0):
      continue
    cols = _centre_range(min(x0, x1, x2), max(x0, x1, x2), width)
    rows = _centre_range(min(y0, y1, y2), max(y0, y1, y2), height)
    if cols is None or rows is None:
      continue
    r, c = np.meshgrid(np.arange(rows[0], rows[1] + 1, dtype=np.float64),
                       np.arange(cols[0], cols[1] + 1, dtype=np.float64),
                       indexing='ij')
    e0 = _edge(x1, y1, x2, y2, c, r)
    e1 = _edge(x2, y2, x0, y0, c, r)
    e2 = _edge(x0, y0, x1, y1, c, r)
    if area > 0.0:
      covers = (e0 >= 0.0) & (e1 >= 0.0) & (e2 >= 0.0)
    else:
      covers = (e0 <= 0.0) & (e1 <= 0.0) & (e2 <= 0.0)
    inv_area = 1.0 / area
    depth = (e0 * z[i0] + e1 * z[i1] + e2 * z[i2]) * inv_area
    window = (slice(rows[0], rows[1] + 1), slice(cols[0], cols[1] + 1))
    wins = covers & (depth >= -1.0) & (depth <= 1.0) & (depth < zbuf[window])
    zbuf[window] = np.where(wins, depth, zbuf[window])
    ids[window] = np.where(wins, t, ids[window])

  bary = np.zeros([height, width, 3], np.float32)
  depth_out = np.ones([height, width], np.float32)
  for r, c in zip(*np.nonzero(ids >= 0)):
    i0, i1, i2 = triangles[ids[r, c]]
    e0 = _edge(px[i1], py[i1], px[i2], py[i2], float(c), float(r))
    e1 = _edge(px[i2], py[i2], px[i0], py[i0], float(c), float(r))
    e2 = _edge(px[i0], py[i0], px[i1], py[i1], float(c), float(r))
    # Perspective-correct: screen-space weights divided by w, normalised.
    p0 = e0 * inv_w[i0]
    p1 = e1 * inv_w[i1]
    p2 = e2 * inv_w[i2]
    inv_sum = 1.0 / (p0 + p1 + p2)
    bary[r, c] = [p0 * inv_sum, p1 * inv_sum, p2 * inv_sum]
    depth_out[r, c] = zbuf[r, c]
  return ids, bary, depth_out


def rasterize(clip_vertices, triangles, image_size, cull_backfaces=False):
  """Rasterizes meshes with NumPy.

  Args:
    clip_vertices: [B, N, 4] (or [N, 4]) float32 homogeneous clip-space
      vertices, or [B, N, 3] / [N, 3] NDC (w = 1).
    triangles: [T, 3] integer vertex indices in [0, N).
    image_size: (height, width) python ints >= 1.
    cull_backfaces: drop triangles that are clockwise in NDC (x right, y up).

  Returns:
    Fragments of numpy arrays: triangle_ids [B, H, W] int32 (-1 background),
    barycentrics [B, H, W, 3] float32 perspective-correct (0 background),
    depth [B, H, W] float32 z_ndc (1 background); without the leading B for
    unbatched input.
  """
  vertices = np.asarray(clip_vertices, np.float32)
  triangles = np.asarray(triangles)
  height, width = (int(s) for s in image_size)
  if height < 1 or width < 1:
    raise ValueError('reference rasterize: image_size must be >= 1, got %s' %
                     (image_size,))
  unbatched = vertices.ndim == 2
  if unbatched:
    vertices = vertices[None]
  if vertices.ndim != 3 or vertices.shape[-1] not in (3, 4):
    raise ValueError('reference rasterize: clip_vertices must be [B, N, 4] '
                     'or [B, N, 3], got %s' % (vertices.shape,))
  if vertices.shape[-1] == 3:
    vertices = np.concatenate(
        [vertices, np.ones(vertices.shape[:-1] + (1,), np.float32)], -1)
  if not np.all(np.isfinite(vertices)):
    raise ValueError('reference rasterize: clip_vertices must be finite')
  if triangles.ndim != 2 or triangles.shape[1] != 3:
    raise ValueError('reference rasterize: triangles must be [T, 3], got %s' %
                     (triangles.shape,))
  if triangles.size and (triangles.min() < 0 or
                         triangles.max() >= vertices.shape[1]):
    raise ValueError('reference rasterize: triangle index out of range')
  results = [_rasterize_image(v, triangles, height, width, cull_backfaces)
             for v in vertices]
  ids, bary, depth = (np.stack(x) for x in zip(*results)) if results else (
      np.zeros([0, height, width], np.int32),
      np.zeros([0, height, width, 3], np.float32),
      np.zeros([0, height, width], np.float32))
  if unbatched:
    ids, bary, depth = ids[0], bary[0], depth[0]
  return Fragments(ids, bary, depth)
