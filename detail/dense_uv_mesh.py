"""A triangle mesh with one vertex per UV texel (Chen20's dense detail mesh).

Chen20 (tools/uv_utils.py, `TopoUV2Ver(uv_size, uv_face_mask, 'dense')`) turns
every texel inside the UV face mask into a vertex; here two triangles per 2x2
block of inside texels (one when three are inside), wound counter-clockwise in
(u right, v up). Pure NumPy topology plus TF gather/scatter between UV maps and
vertices.
"""

import numpy as np
import tensorflow as tf


class DenseUVMesh:
  """A triangle mesh with one vertex per UV texel inside a mask.

  Attributes (numpy):
    uv_size: S.
    texels: [M,2] int32 (row, col) of every vertex; row 0 = v = 1 (top).
    uv: [M,2] float32 texture coordinates of the vertices (property).
    flat_index: [M] int32 = row * S + col.
    triangles: [T,3] int32, two per 2x2 block of texels that are all inside
      (one when three are), counter-clockwise in (u right, v up).
  """

  def __init__(self, texel_mask):
    texel_mask = np.asarray(texel_mask).astype(bool)
    if texel_mask.ndim == 3:
      texel_mask = texel_mask[..., 0]
    if texel_mask.ndim != 2 or texel_mask.shape[0] != texel_mask.shape[1]:
      raise ValueError(
          'DenseUVMesh: texel_mask must be [S,S] or [S,S,1], got %s' %
          (texel_mask.shape,))
    if not texel_mask.any():
      raise ValueError('DenseUVMesh: texel_mask is empty')
    size = texel_mask.shape[0]
    self.uv_size = size
    rows, cols = np.nonzero(texel_mask)
    self.texels = np.stack([rows, cols], -1).astype(np.int32)
    self.flat_index = (rows * size + cols).astype(np.int32)
    index = -np.ones([size, size], np.int64)
    index[rows, cols] = np.arange(len(rows))
    a = index[:-1, :-1]  # (r, c)
    b = index[1:, :-1]  # (r+1, c)   below
    c = index[:-1, 1:]  # (r, c+1)   right
    d = index[1:, 1:]  # (r+1, c+1)
    tris = []
    full = (a >= 0) & (b >= 0) & (c >= 0) & (d >= 0)
    # (r,c),(r+1,c),(r,c+1) and (r+1,c),(r+1,c+1),(r,c+1): CCW with v up.
    tris.append(np.stack([a[full], b[full], c[full]], -1))
    tris.append(np.stack([b[full], d[full], c[full]], -1))
    # Blocks with exactly three corners inside get the one triangle they hold.
    corners = {'a': a, 'b': b, 'c': c, 'd': d}
    three = sum((x >= 0).astype(int) for x in corners.values()) == 3
    for missing, tri in (('a', (b, d, c)), ('b', (a, d, c)), ('c', (a, b, d)),
                         ('d', (a, b, c))):
      sel = three & (corners[missing] < 0)
      tris.append(np.stack([t[sel] for t in tri], -1))
    self.triangles = np.concatenate(tris, 0).astype(np.int32)

  @property
  def num_vertices(self):
    return len(self.flat_index)

  @property
  def uv(self):
    """[M,2] float32 (u, v) of the texel centres, v up (renderer/uv.py:
    texel (row r, col c) centre = (u S, (1 - v) S) = (c + 0.5, r + 0.5))."""
    rows = self.texels[:, 0].astype(np.float64)
    cols = self.texels[:, 1].astype(np.float64)
    return np.stack([(cols + 0.5) / self.uv_size,
                     1.0 - (rows + 0.5) / self.uv_size], -1).astype(np.float32)

  def sample(self, uv_map):
    """[B,S,S,C] -> [B,M,C]: the map's values at the mesh vertices."""
    shape = tf.shape(uv_map)
    flat = tf.reshape(uv_map, [shape[0], self.uv_size * self.uv_size, shape[3]])
    return tf.gather(flat, self.flat_index, axis=1)

  def to_uv(self, values):
    """[B,M,C] -> [B,S,S,C], zeros outside the mesh."""
    values = tf.convert_to_tensor(values)
    batch = tf.shape(values)[0]
    channels = values.shape[-1]
    flat = tf.transpose(values, [1, 0, 2])  # [M,B,C]
    out = tf.scatter_nd(
        self.flat_index[:, None], flat,
        tf.stack([self.uv_size * self.uv_size, batch, channels]))
    out = tf.transpose(out, [1, 0, 2])
    return tf.reshape(out, [batch, self.uv_size, self.uv_size, channels])
