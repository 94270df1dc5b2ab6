"""Per-vertex attribute interpolation and reference barycentrics.

The rasterizer op (renderer.rasterize_op) chooses, per pixel, the front-most
triangle and returns its perspective-correct barycentrics, differentiable
w.r.t. the clip-space vertices through a compiled gradient op.
`differentiable_barycentrics` recomputes the same barycentrics in TensorFlow
ops from the triangle ids (as tensorflow_graphics' rasterization backend
does): the reference the compiled gradient is tested against, selectable in
renderer.mesh_renderer (BARYCENTRICS_GRADIENT = 'tf'). `interpolate`
differentiates w.r.t. the vertex attributes and the barycentrics. Gradients
do not account for visibility changes (which triangle covers a pixel), like
tf_mesh_renderer.
"""

import tensorflow as tf

_EPS = 1e-12


def pixel_centres_ndc(image_size):
  """NDC positions of the pixel centres.

  Args:
    image_size: (height, width) python ints.

  Returns:
    [H, W, 2] float32 (x_ndc, y_ndc): x = -1 + (2c + 1)/W, y = 1 - (2r + 1)/H.
  """
  height, width = image_size
  x = -1.0 + (2.0 * tf.range(width, dtype=tf.float32) + 1.0) / width
  y = 1.0 - (2.0 * tf.range(height, dtype=tf.float32) + 1.0) / height
  xx, yy = tf.meshgrid(x, y)
  return tf.stack([xx, yy], axis=-1)


def check_triangles(triangles, name):
  """Triangles as an int32 tensor.

  Args:
    triangles: [T, 3] int32 (or int64) vertex indices.
    name: caller's name, for the error messages.

  Returns:
    [T, 3] int32 tensor.

  Raises:
    TypeError for a non-integer dtype; ValueError for a shape other than
    [T, 3].
  """
  triangles = tf.convert_to_tensor(triangles)
  if triangles.dtype not in (tf.int32, tf.int64):
    raise TypeError('%s: triangles must be int32, got %s' %
                    (name, triangles.dtype))
  triangles = tf.cast(triangles, tf.int32)
  if triangles.shape.rank != 2 or triangles.shape[-1] != 3:
    raise ValueError('%s: triangles must be [T, 3], got shape %s' %
                     (name, triangles.shape))
  return triangles


def _check_inputs(clip_vertices, triangles, triangle_ids, name):
  clip_vertices = tf.convert_to_tensor(clip_vertices, tf.float32)
  if clip_vertices.shape.rank != 3 or clip_vertices.shape[-1] not in (3, 4):
    raise ValueError('%s: clip_vertices must be [B, N, 4] (or [B, N, 3] NDC), '
                     'got shape %s' % (name, clip_vertices.shape))
  if clip_vertices.shape[-1] == 3:
    clip_vertices = tf.concat(
        [clip_vertices, tf.ones_like(clip_vertices[..., :1])], axis=-1)
  triangles = check_triangles(triangles, name)
  triangle_ids = tf.convert_to_tensor(triangle_ids)
  if triangle_ids.shape.rank != 3:
    raise ValueError('%s: triangle_ids must be [B, H, W], got shape %s' %
                     (name, triangle_ids.shape))
  triangle_ids = tf.cast(triangle_ids, tf.int32)
  return clip_vertices, triangles, triangle_ids


def _pixel_vertex_ids(triangles, triangle_ids):
  """[B, H, W, 3] vertex ids of each pixel's triangle (0 on background)."""
  safe_ids = tf.maximum(triangle_ids, 0)
  return tf.gather(triangles, safe_ids)


def differentiable_barycentrics(clip_vertices, triangles, triangle_ids):
  """Perspective-correct barycentrics in TensorFlow ops (the reference).

  The op's own barycentrics (renderer.rasterize_op.rasterize) have the same
  values and a compiled gradient; this is the TensorFlow-ops reference for
  it (renderer.mesh_renderer with barycentrics_gradient='tf').

  For pixel centre p = (x_ndc, y_ndc, 1) and the triangle's homogeneous 2D
  vertices v_i = (x_i, y_i, w_i), b_i is proportional to det[p, v_j, v_k]
  ((i, j, k) cyclic), normalised to sum to one. This is exact for a point of
  the triangle that projects onto p, with barycentrics linear in clip space
  (perspective-correct), and is differentiable w.r.t. clip_vertices.

  Args:
    clip_vertices: [B, N, 4] float32 clip-space vertices (or [B, N, 3] NDC).
    triangles: [T, 3] int32.
    triangle_ids: [B, H, W] int32 from the rasterizer, -1 on background;
      static H and W.

  Returns:
    [B, H, W, 3] float32 barycentrics (unitless, summing to 1), zero on
    background pixels; differentiable w.r.t. clip_vertices.

  Raises:
    ValueError / TypeError for bad shapes or dtypes.
  """
  clip_vertices, triangles, triangle_ids = _check_inputs(
      clip_vertices, triangles, triangle_ids, 'differentiable_barycentrics')
  image_size = (triangle_ids.shape[1], triangle_ids.shape[2])
  if None in image_size:
    raise ValueError('differentiable_barycentrics: triangle_ids needs a static '
                     'image size, got shape %s' % triangle_ids.shape)
  vertex_ids = _pixel_vertex_ids(triangles, triangle_ids)  # [B,H,W,3]
  # [B, H, W, 3 (vertex), 3 (x, y, w)]
  corners = tf.gather(tf.gather(clip_vertices, [0, 1, 3], axis=-1),
                      vertex_ids, batch_dims=1)
  centres = pixel_centres_ndc(image_size)
  p = tf.concat([centres, tf.ones_like(centres[..., :1])], axis=-1)
  p = tf.broadcast_to(p, tf.shape(corners[..., 0, :]))
  v0, v1, v2 = tf.unstack(corners, axis=-2)
  b0 = tf.reduce_sum(p * tf.linalg.cross(v1, v2), axis=-1)
  b1 = tf.reduce_sum(p * tf.linalg.cross(v2, v0), axis=-1)
  b2 = tf.reduce_sum(p * tf.linalg.cross(v0, v1), axis=-1)
  unnormalised = tf.stack([b0, b1, b2], axis=-1)
  total = tf.reduce_sum(unnormalised, axis=-1, keepdims=True)
  foreground = triangle_ids[..., None] >= 0
  safe_total = tf.where(
      foreground & (tf.abs(total) > _EPS), total, tf.ones_like(total))
  bary = unnormalised / safe_total
  return tf.where(foreground, bary, tf.zeros_like(bary))


def interpolate(attributes, triangles, triangle_ids, barycentrics=None):
  """Interpolates per-vertex attributes at every pixel.

  Args:
    attributes: [B, N, C] float32 per-vertex attributes.
    triangles: [T, 3] int32.
    triangle_ids: [B, H, W] int32, -1 on background; or a
      rasterize_op.Fragments when `barycentrics` is None (then its own,
      non-differentiable barycentrics are used).
    barycentrics: [B, H, W, 3] float32 (from differentiable_barycentrics for
      gradients w.r.t. positions, or the op's own for attributes only).

  Returns:
    [B, H, W, C] float32 (the attributes' units), zero on background pixels.
    Differentiable w.r.t. attributes and barycentrics.

  Raises:
    ValueError for bad shapes.
  """
  if barycentrics is None:
    if not hasattr(triangle_ids, 'barycentrics'):
      raise ValueError('interpolate: pass barycentrics, or a Fragments as '
                       'triangle_ids')
    triangle_ids, barycentrics = (triangle_ids.triangle_ids,
                                  triangle_ids.barycentrics)
  attributes = tf.convert_to_tensor(attributes, tf.float32)
  if attributes.shape.rank != 3:
    raise ValueError('interpolate: attributes must be [B, N, C], got shape %s'
                     % attributes.shape)
  triangles = tf.cast(tf.convert_to_tensor(triangles), tf.int32)
  triangle_ids = tf.cast(tf.convert_to_tensor(triangle_ids), tf.int32)
  barycentrics = tf.convert_to_tensor(barycentrics, tf.float32)
  if barycentrics.shape.rank != 4 or barycentrics.shape[-1] != 3:
    raise ValueError('interpolate: barycentrics must be [B, H, W, 3], got '
                     'shape %s' % barycentrics.shape)
  vertex_ids = _pixel_vertex_ids(triangles, triangle_ids)
  corner_values = tf.gather(attributes, vertex_ids, batch_dims=1)  # BHW3C
  values = tf.einsum('bhwk,bhwkc->bhwc', barycentrics, corner_values)
  foreground = triangle_ids[..., None] >= 0
  return tf.where(foreground, values, tf.zeros_like(values))

