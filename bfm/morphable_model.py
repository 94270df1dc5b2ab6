"""MorphableModel: one face model (arrays in NumPy, batched evaluation in TF).

Every model the project loads (the built-in synthetic face, the Surrey Face
Model, ICT-FaceKit, BFM 2009 / Chen20 conversions) ends up as this class, so
the stages never care which model is in use. Attributes follow the "bfm/"
section of /work/contract.md:

  name: str
  mean_shape [N,3] float32, millimetres, bounding-box centre at the origin;
    axes x = subject's left (image right in a frontal view), y up, z out of
    the face towards the viewer.
  id_basis [K_id,N,3], exp_basis [K_exp,N,3] float32 mm per unit coefficient
    (bases pre-multiplied by their sigmas; identity coefficients ~ N(0, 1);
    for blendshape models (SFM, ICT) an expression coefficient is a
    blendshape weight, 1 = the full blendshape).
  mean_albedo [N,3] float32 in [0,1]; tex_basis [K_tex,N,3] (K_tex may be 0).
  triangles [T,3] int32, counter-clockwise seen from outside.
  uv [N,2] float32 in [0,1], u right, v up.
  landmarks68 [68] int32 (iBUG order, 0-based vertex indices).
  contour_candidates: list of 17 int32 arrays, candidate vertices for
    landmarks 0..16 (a single element where the landmark is fixed).
  keypoints7 [7] int32 = landmarks68[[36, 39, 42, 45, 33, 48, 54]].
  masks: dict of bool [N] with keys 'face', 'wo_eyes', 'wo_nose',
    'wo_eyebrows', 'detail'.
  symmetry [N] int32, mirror vertex (an involution).
  symmetry_max_error_mm: float, worst |mirror(v_i) - v_symmetry[i]| on the
    mean shape.
  exp_names: list of str (may be empty); source: str (provenance).
"""

import numpy as np
import tensorflow as tf

from bfm import mesh_geometry

MASK_KEYS = ('face', 'wo_eyes', 'wo_nose', 'wo_eyebrows', 'detail')
KEYPOINT7_LANDMARKS = (36, 39, 42, 45, 33, 48, 54)


class ModelFormatError(ValueError):
  """A model file or array is malformed (message names the file and key)."""


def _fail(source, key, message):
  raise ModelFormatError('%s: %r %s' % (source, key, message))


def _finite_float(source, key, array, shape):
  """Checks a float array's rank/shape (None = any) and finiteness."""
  array = np.asarray(array)
  if not (np.issubdtype(array.dtype, np.floating) or
          np.issubdtype(array.dtype, np.integer)):
    _fail(source, key, 'must be numeric, got dtype %s' % array.dtype)
  if array.ndim != len(shape) or any(
      s is not None and s != a for s, a in zip(shape, array.shape)):
    _fail(source, key, 'has shape %s, expected %s' %
          (array.shape, '[' + ', '.join('?' if s is None else str(s)
                                        for s in shape) + ']'))
  array = array.astype(np.float32)
  if not np.all(np.isfinite(array)):
    _fail(source, key, 'contains %d NaN/Inf values' %
          int(np.sum(~np.isfinite(array))))
  return array


def _indices(source, key, array, shape, num_vertices):
  array = np.asarray(array)
  if not np.issubdtype(array.dtype, np.integer):
    _fail(source, key, 'must be integer indices, got dtype %s' % array.dtype)
  if array.ndim != len(shape) or any(
      s is not None and s != a for s, a in zip(shape, array.shape)):
    _fail(source, key, 'has shape %s, expected %s' % (array.shape, shape))
  if array.size and (array.min() < 0 or array.max() >= num_vertices):
    _fail(source, key, 'has vertex indices outside [0, %d): min %d, max %d' %
          (num_vertices, array.min(), array.max()))
  return array.astype(np.int32)


class MorphableModel:
  """A 3D morphable face model; see the module docstring for the attributes.

  Construct through bfm.load() or bfm.model_builder.build_model(); the
  constructor only validates (shapes, dtypes, finiteness, index ranges,
  symmetry involution) and raises ModelFormatError naming `source` and the
  offending array.
  """

  def __init__(self, name, mean_shape, id_basis, exp_basis, mean_albedo,
               tex_basis, triangles, uv, landmarks68, contour_candidates,
               masks, symmetry, symmetry_max_error_mm=0.0, exp_names=(),
               source=''):
    src = source or name
    self.name = str(name)
    self.source = str(source)
    self.mean_shape = _finite_float(src, 'mean_shape', mean_shape, (None, 3))
    n = self.mean_shape.shape[0]
    if n < 3:
      _fail(src, 'mean_shape', 'has only %d vertices' % n)
    self.id_basis = _finite_float(src, 'id_basis', id_basis, (None, n, 3))
    self.exp_basis = _finite_float(src, 'exp_basis', exp_basis, (None, n, 3))
    self.mean_albedo = _finite_float(src, 'mean_albedo', mean_albedo, (n, 3))
    if self.mean_albedo.min() < 0 or self.mean_albedo.max() > 1:
      _fail(src, 'mean_albedo', 'must lie in [0, 1], got [%g, %g]' %
            (self.mean_albedo.min(), self.mean_albedo.max()))
    self.tex_basis = _finite_float(src, 'tex_basis', tex_basis, (None, n, 3))
    self.triangles = _indices(src, 'triangles', triangles, (None, 3), n)
    if self.triangles.shape[0] == 0:
      _fail(src, 'triangles', 'is empty')
    if np.any((self.triangles[:, 0] == self.triangles[:, 1]) |
              (self.triangles[:, 1] == self.triangles[:, 2]) |
              (self.triangles[:, 0] == self.triangles[:, 2])):
      _fail(src, 'triangles', 'has triangles with repeated vertices')
    self.uv = _finite_float(src, 'uv', uv, (n, 2))
    if self.uv.min() < 0 or self.uv.max() > 1:
      _fail(src, 'uv', 'must lie in [0, 1], got [%g, %g]' %
            (self.uv.min(), self.uv.max()))
    self.landmarks68 = _indices(src, 'landmarks68', landmarks68, (68,), n)
    if len(contour_candidates) != 17:
      _fail(src, 'contour_candidates', 'must hold 17 arrays, got %d' %
            len(contour_candidates))
    self.contour_candidates = []
    for k, cand in enumerate(contour_candidates):
      cand = _indices(src, 'contour_candidates[%d]' % k, np.asarray(cand),
                      (None,), n)
      if cand.size == 0:
        _fail(src, 'contour_candidates[%d]' % k, 'is empty')
      self.contour_candidates.append(cand)
    self.masks = {}
    for key in MASK_KEYS:
      if key not in masks:
        _fail(src, 'masks', 'has no %r mask (needs %s)' % (key, MASK_KEYS))
      m = np.asarray(masks[key])
      if m.shape != (n,):
        _fail(src, 'mask_' + key, 'has shape %s, expected (%d,)' % (m.shape, n))
      if m.dtype != np.bool_:
        if not np.all((m == 0) | (m == 1)):
          _fail(src, 'mask_' + key, 'must be boolean (0/1)')
        m = m.astype(bool)
      self.masks[key] = m
    self.symmetry = _indices(src, 'symmetry', symmetry, (n,), n)
    if not np.array_equal(self.symmetry[self.symmetry], np.arange(n)):
      bad = int(np.sum(self.symmetry[self.symmetry] != np.arange(n)))
      _fail(src, 'symmetry', 'is not an involution (%d vertices i with '
            'symmetry[symmetry[i]] != i)' % bad)
    self.symmetry_max_error_mm = float(symmetry_max_error_mm)
    self.exp_names = [str(s) for s in exp_names]
    if self.exp_names and len(self.exp_names) != self.num_exp:
      _fail(src, 'exp_names', 'has %d names for %d expression components' %
            (len(self.exp_names), self.num_exp))
    self._tf_cache = {}

  # ---------------------------------------------------------------- sizes
  @property
  def num_vertices(self):
    return self.mean_shape.shape[0]

  @property
  def num_triangles(self):
    return self.triangles.shape[0]

  @property
  def num_id(self):
    return self.id_basis.shape[0]

  @property
  def num_exp(self):
    return self.exp_basis.shape[0]

  @property
  def num_tex(self):
    return self.tex_basis.shape[0]

  @property
  def keypoints7(self):
    """[7] int32: eye corners (36, 39, 42, 45), 33, mouth corners (48, 54)."""
    return self.landmarks68[list(KEYPOINT7_LANDMARKS)]

  def __repr__(self):
    return ('MorphableModel(%r: %d vertices, %d triangles, %d id, %d exp, '
            '%d tex components)' % (self.name, self.num_vertices,
                                    self.num_triangles, self.num_id,
                                    self.num_exp, self.num_tex))

  # ----------------------------------------------------------- TF methods
  def _constant(self, key, array):
    """Float32 constants, created once and reused.

    Created under tf.init_scope() (eagerly) even when first needed inside a
    tf.function, so the cached tensor is valid in every later graph.
    """
    if key not in self._tf_cache:
      with tf.init_scope():
        self._tf_cache[key] = tf.constant(array)
    return self._tf_cache[key]

  def _combine(self, coeff, basis, key, arg):
    """coeff [B,K] x basis [K,N,3] -> [B,N,3] (float32)."""
    k = basis.shape[0]
    coeff = tf.convert_to_tensor(coeff, tf.float32)
    if coeff.shape.rank != 2 or (coeff.shape[1] is not None and
                                 coeff.shape[1] != k):
      raise ValueError('MorphableModel(%s): %s must be [B, %d], got %s' %
                       (self.name, arg, k, coeff.shape))
    flat = self._constant(key, basis.reshape(k, 3 * self.num_vertices))
    return tf.reshape(tf.matmul(coeff, flat), [-1, self.num_vertices, 3])

  def vertices(self, id_coeff, exp_coeff=None):
    """Shape from coefficients.

    Args:
      id_coeff: [B, K_id] float32 identity coefficients (~ N(0, 1)).
      exp_coeff: [B, K_exp] float32 expression coefficients, or None (= 0).
    Returns:
      [B, N, 3] float32 vertices in millimetres, model space.
    """
    mean = self._constant('mean_shape', self.mean_shape)
    out = mean[None] + self._combine(id_coeff, self.id_basis, 'id_basis',
                                     'id_coeff')
    if exp_coeff is not None:
      out += self._combine(exp_coeff, self.exp_basis, 'exp_basis', 'exp_coeff')
    return out

  def albedo(self, tex_coeff=None):
    """Per-vertex albedo, clipped to [0, 1] (as Chen20 clips to [0, 255]).

    Args:
      tex_coeff: [B, K_tex] float32 (~ N(0, 1)); [B, 0] or None for models
        without a texture basis (None gives batch size 1).
    Returns:
      [B, N, 3] float32 in [0, 1].
    """
    mean = self._constant('mean_albedo', self.mean_albedo)[None]
    if tex_coeff is None:
      return mean
    out = mean + self._combine(tex_coeff, self.tex_basis, 'tex_basis',
                               'tex_coeff')
    return tf.clip_by_value(out, 0.0, 1.0)

  def landmarks(self, vertices):
    """[B, N, C] per-vertex values -> [B, 68, C] at the 68 landmark vertices."""
    return tf.gather(vertices, self.landmarks68, axis=1)

  def vertex_normals(self, vertices):
    """[B, N, 3] vertices -> [B, N, 3] unit outward vertex normals."""
    return mesh_geometry.vertex_normals(vertices, self.triangles)

  # ----------------------------------------------------------- conversion
  def save(self, path):
    """Writes the model in the project's .npz format (bfm/README.md)."""
    from bfm import npz_format  # pylint: disable=g-import-not-at-top
    npz_format.save(self, path)
