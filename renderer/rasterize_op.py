"""Python wrapper of the compiled triangle rasterizer op.

The op (renderer/kernels/, built by `pip install -e .` into
renderer/_rasterize_triangles.so) picks, for every pixel, the nearest
triangle and its perspective-correct barycentrics. Its barycentrics are
differentiable w.r.t. the clip-space vertices: the gradient is a second
compiled op, FullposeRasterizeTrianglesGrad (`barycentrics_grad`), registered
here as the forward op's gradient. Triangle ids and depth carry no gradient,
and gradients do not account for visibility changes (which triangle covers a
pixel), as in tf_mesh_renderer. `interpolate_attributes` interpolates
per-vertex attributes with the barycentrics (compiled, with a compiled
gradient). renderer/interpolate.py keeps both written in TensorFlow ops
(`differentiable_barycentrics`, `interpolate`) as the reference.

Importing this module raises OpLibraryError (an ImportError) when the library
is missing or was built for another TensorFlow version; the message says how
to rebuild it.
"""

import collections
import os
import re

import numpy as np
import tensorflow as tf

LIBRARY_NAME = '_rasterize_triangles.so'
# The library carries the TensorFlow version it was compiled against as this
# string followed by the version (renderer/kernels/rasterize_triangles_op.cc).
_VERSION_MARKER = re.compile(rb'FULLPOSE_BUILT_FOR_TF=([0-9A-Za-z.+-]+)')
_CUDA_MARKER = re.compile(rb'FULLPOSE_BUILT_WITH_CUDA=([01])')
_REBUILD = ('rebuild it with `pip install -e .` from the repository root '
            '(%s)' % os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

Fragments = collections.namedtuple('Fragments',
                                   ['triangle_ids', 'barycentrics', 'depth'])
Fragments.__doc__ = """Per-pixel rasterizer output.

triangle_ids: [B, H, W] int32, nearest triangle, -1 on background.
barycentrics: [B, H, W, 3] float32, perspective-correct, zeros on background.
depth: [B, H, W] float32 z_ndc of the nearest fragment, 1.0 on background.
"""


class OpLibraryError(ImportError):
  """The compiled rasterizer library is missing or does not match TF."""


class RasterizeArgumentError(tf.errors.InvalidArgumentError, ValueError):
  """Bad argument to rasterize (both an InvalidArgumentError and ValueError)."""

  def __init__(self, message):
    super().__init__(None, None, message)


def _load_library():
  here = os.path.dirname(os.path.abspath(__file__))
  path = os.path.join(here, LIBRARY_NAME)
  if not os.path.exists(path):
    raise OpLibraryError('rasterizer library %s not found: %s' %
                         (path, _REBUILD))
  with open(path, 'rb') as f:
    contents = f.read()
  match = _VERSION_MARKER.search(contents)
  built_for = match.group(1).decode() if match else None
  if built_for != tf.__version__:
    raise OpLibraryError('rasterizer library %s was built for TensorFlow %s, '
                         'running TensorFlow %s: %s' %
                         (path, built_for or '(unknown)', tf.__version__,
                          _REBUILD))
  try:
    library = tf.load_op_library(path)
  except (tf.errors.NotFoundError, OSError) as e:
    raise OpLibraryError('rasterizer library %s does not load (%s): %s' %
                         (path, e, _REBUILD)) from e
  cuda = _CUDA_MARKER.search(contents)
  return library, bool(cuda and cuda.group(1) == b'1')


# BUILT_WITH_CUDA: whether the library has the GPU kernel (setup.py builds it
# when nvcc and an NVIDIA driver are found, or with FULLPOSE_CUDA=1).
_LIB, BUILT_WITH_CUDA = _load_library()


@tf.RegisterGradient('FullposeRasterizeTriangles')
def _rasterize_triangles_grad(op, d_ids, d_barycentrics, d_depth):
  """dL/dclip_vertices through the barycentrics (ids and depth: none)."""
  del d_ids, d_depth  # Integer ids; depth is not differentiated.
  vertices, triangles = op.inputs[0], op.inputs[1]
  if d_barycentrics is None:
    return [tf.zeros_like(vertices), None]
  return [barycentrics_grad(vertices, triangles, op.outputs[0],
                            d_barycentrics), None]


def barycentrics_grad(clip_vertices, triangles, triangle_ids, d_barycentrics):
  """Vector-Jacobian product of the op's barycentrics (the compiled gradient).

  Args:
    clip_vertices: [B, N, 4] (clip) or [B, N, 3] (NDC) float32, as given to
      `rasterize` (batched).
    triangles: [T, 3] int32, as given to `rasterize`.
    triangle_ids: [B, H, W] int32 from `rasterize`, in [-1, T).
    d_barycentrics: [B, H, W, 3] float32, dL/dbarycentrics.

  Returns:
    [B, N, 4] (or [B, N, 3]) float32 dL/dclip_vertices for the pixels'
    triangles held fixed; zero in z, and background pixels (id -1)
    contribute nothing.

  Raises:
    tf.errors.InvalidArgumentError for wrong shapes or out-of-range ids or
    indices.
  """
  return _LIB.fullpose_rasterize_triangles_grad(
      tf.convert_to_tensor(clip_vertices, tf.float32),
      tf.convert_to_tensor(triangles, tf.int32),
      tf.convert_to_tensor(triangle_ids, tf.int32),
      tf.convert_to_tensor(d_barycentrics, tf.float32))


@tf.RegisterGradient('FullposeInterpolateAttributes')
def _interpolate_attributes_grad(op, d_values):
  """dL/dattributes and dL/dbarycentrics (compiled)."""
  d_attributes, d_barycentrics = _LIB.fullpose_interpolate_attributes_grad(
      op.inputs[0], op.inputs[1], op.inputs[2], op.inputs[3], d_values)
  return [d_attributes, None, None, d_barycentrics]


def interpolate_attributes(attributes, triangles, triangle_ids, barycentrics):
  """Interpolates per-vertex attributes at every pixel (compiled op).

  values[b, r, c] = sum_k barycentrics[b, r, c, k] * attributes[b, v_k] for
  the corners v_k of triangle triangle_ids[b, r, c]; the compiled
  counterpart of renderer.interpolate.interpolate (the TensorFlow-ops
  reference), with a compiled gradient.

  Args:
    attributes: [B, N, C] float32 per-vertex attributes (any units).
    triangles: [T, 3] int32 vertex indices in [0, N).
    triangle_ids: [B, H, W] int32 from `rasterize`, in [-1, T).
    barycentrics: [B, H, W, 3] float32 from `rasterize`.

  Returns:
    [B, H, W, C] float32 in the attributes' units, zero where the id is -1;
    differentiable w.r.t. attributes and barycentrics.

  Raises:
    tf.errors.InvalidArgumentError for wrong shapes or out-of-range indices.
  """
  return _LIB.fullpose_interpolate_attributes(
      tf.convert_to_tensor(attributes, tf.float32), _triangles(triangles),
      tf.convert_to_tensor(triangle_ids, tf.int32),
      tf.convert_to_tensor(barycentrics, tf.float32))


def _image_size(image_size):
  try:
    height, width = image_size
  except (TypeError, ValueError):
    raise RasterizeArgumentError(
        'rasterize: image_size must be (height, width), got %r' %
        (image_size,)) from None
  for name, value in (('height', height), ('width', width)):
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, np.integer)):
      raise RasterizeArgumentError(
          'rasterize: image_size %s must be a python int, got %r' %
          (name, value))
    if value < 1:
      raise RasterizeArgumentError(
          'rasterize: image_size must be >= 1 in both dimensions, got %r' %
          (tuple(image_size),))
  return int(height), int(width)


def _vertices(clip_vertices):
  if isinstance(clip_vertices, (tf.Tensor, tf.Variable)):
    if not clip_vertices.dtype.is_floating:
      raise RasterizeArgumentError(
          'rasterize: clip_vertices must be float32, got %s' %
          clip_vertices.dtype.name)
    return tf.cast(clip_vertices, tf.float32)
  array = np.asarray(clip_vertices)
  if not np.issubdtype(array.dtype, np.floating):
    raise RasterizeArgumentError(
        'rasterize: clip_vertices must be float32, got %s' % array.dtype)
  return tf.constant(array, tf.float32)


def _triangles(triangles):
  if isinstance(triangles, (tf.Tensor, tf.Variable)):
    if triangles.dtype != tf.int32:
      raise RasterizeArgumentError(
          'rasterize: triangles must be int32, got %s' % triangles.dtype.name)
    return triangles
  array = np.asarray(triangles)
  if not np.issubdtype(array.dtype, np.integer):
    raise RasterizeArgumentError(
        'rasterize: triangles must be int32, got %s' % array.dtype)
  if array.size and (array.min() < np.iinfo(np.int32).min or
                     array.max() > np.iinfo(np.int32).max):
    raise RasterizeArgumentError('rasterize: triangles do not fit in int32')
  return tf.constant(array, tf.int32)


def rasterize(clip_vertices, triangles, image_size, cull_backfaces=False):
  """Rasterizes a batch of triangle meshes sharing one triangle list.

  Conventions (see renderer/kernels/rasterize_triangles_core.h): NDC = clip
  / w; x = -1 left image edge, +1 right; y = +1 TOP row, -1 bottom; pixel
  (row r, col c) centre at x = -1 + (2c+1)/W, y = 1 - (2r+1)/H. Depth z_ndc
  = z/w, smaller is closer; fragments with z_ndc outside [-1, 1] are
  dropped, and triangles with a vertex at w <= 0 are dropped whole (no
  near-plane clipping). The nearest fragment wins (lower id on ties).
  Front faces are counter-clockwise in NDC. A pixel centre exactly on an
  edge is covered by both triangles sharing it (depth decides).

  Args:
    clip_vertices: [B, N, 4] float32 homogeneous clip-space vertices, or
      [B, N, 3] NDC (w = 1); [N, 4] / [N, 3] for one unbatched image.
      Must be finite.
    triangles: [T, 3] int32 vertex indices in [0, N), shared by the batch.
    image_size: (height, width) python ints >= 1.
    cull_backfaces: python bool; drop triangles clockwise in NDC.

  Returns:
    Fragments(triangle_ids [B, H, W] int32, barycentrics [B, H, W, 3]
    float32, depth [B, H, W] float32), without B for unbatched input. The
    barycentrics are differentiable w.r.t. clip_vertices (x, y, w; the
    compiled `barycentrics_grad`), for the visible triangles held fixed;
    triangle_ids and depth are not differentiable.

  Raises:
    RasterizeArgumentError (a tf.errors.InvalidArgumentError and ValueError)
    for bad static arguments; tf.errors.InvalidArgumentError from the kernel
    for out-of-range indices, non-finite vertices or wrong shapes.
  """
  height, width = _image_size(image_size)
  if not isinstance(cull_backfaces, (bool, np.bool_)):
    raise RasterizeArgumentError(
        'rasterize: cull_backfaces must be a python bool, got %r' %
        (cull_backfaces,))
  vertices = _vertices(clip_vertices)
  triangles = _triangles(triangles)
  rank = vertices.shape.rank
  if rank is not None and rank not in (2, 3):
    raise RasterizeArgumentError(
        'rasterize: clip_vertices must be [B, N, 4] or [B, N, 3] (or [N, 4] '
        '/ [N, 3]), got shape %s' % vertices.shape)
  if vertices.shape[-1] is not None and vertices.shape[-1] not in (3, 4):
    raise RasterizeArgumentError(
        'rasterize: clip_vertices last dimension must be 4 (clip) or 3 '
        '(NDC), got shape %s' % vertices.shape)
  if triangles.shape.rank is not None and (triangles.shape.rank != 2 or
                                           triangles.shape[-1] not in (3,
                                                                       None)):
    raise RasterizeArgumentError(
        'rasterize: triangles must be [T, 3], got shape %s' % triangles.shape)
  unbatched = rank == 2
  if unbatched:
    vertices = vertices[None]
  ids, barycentrics, depth = _LIB.fullpose_rasterize_triangles(
      vertices, triangles, image_height=height, image_width=width,
      cull_backfaces=bool(cull_backfaces))
  if unbatched:
    ids, barycentrics, depth = ids[0], barycentrics[0], depth[0]
  return Fragments(ids, barycentrics, depth)
