"""Tests for the compiled rasterizer op (renderer/rasterize_op.py)."""

import importlib.util
import os
import shutil
import tempfile
import unittest

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from renderer import reference_rasterizer

try:
  from renderer import rasterize_op
  _OP_MISSING = None
except ImportError as e:  # OpLibraryError says how to rebuild.
  rasterize_op = None
  _OP_MISSING = 'rasterizer op not available: %s' % e

_RASTERIZE_OP_PY = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'renderer',
    'rasterize_op.py')


def _random_mesh(rng, batch, num_vertices=12, num_triangles=10,
                 perspective=True):
  """Random triangles over (and a bit beyond) the image; [B, N, 4] clip."""
  ndc = rng.uniform(-1.3, 1.3, [batch, num_vertices, 3])
  w = (rng.uniform(0.5, 2.0, [batch, num_vertices, 1]) if perspective else
       np.ones([batch, num_vertices, 1]))
  clip = np.concatenate([ndc * w, w], -1).astype(np.float32)
  triangles = rng.randint(0, num_vertices, [num_triangles, 3]).astype(np.int32)
  return clip, triangles


def _ndc_of_pixel(row, col, size):
  height, width = size
  return -1.0 + (2 * col + 1) / width, 1.0 - (2 * row + 1) / height


@unittest.skipIf(_OP_MISSING, _OP_MISSING)
class RasterizeOpTest(tf.test.TestCase, parameterized.TestCase):

  def assertMatchesReference(self, clip, triangles, size, cull):
    ours = rasterize_op.rasterize(clip, triangles, size, cull)
    ref = reference_rasterizer.rasterize(clip, triangles, size, cull)
    self.assertAllEqual(ours.triangle_ids, ref.triangle_ids)
    self.assertAllClose(ours.barycentrics, ref.barycentrics, atol=1e-6)
    self.assertAllEqual(ours.depth, ref.depth)
    return ours

  @parameterized.product(
      batch=[1, 3], cull=[False, True], perspective=[False, True],
      size=[(16, 24), (37, 29)])
  def test_matches_reference_on_random_meshes(self, batch, cull, perspective,
                                              size):
    # Batch 1 runs image bands in parallel, batch 3 whole images.
    rng = np.random.RandomState(batch * 7 + cull * 3 + perspective + size[0])
    clip, triangles = _random_mesh(rng, batch, num_triangles=24,
                                   perspective=perspective)
    ours = self.assertMatchesReference(clip, triangles, size, cull)
    covered = np.mean(ours.triangle_ids.numpy() >= 0)
    self.assertGreater(covered, 0.05)  # The test saw triangles.
    ids = ours.triangle_ids.numpy()
    self.assertGreater(len(np.unique(ids[ids >= 0])), 3)

  def test_dense_grid_mesh_matches_reference(self):
    # Many small triangles sharing edges and vertices (pixel centres on
    # edges); over 8192 triangles, so the op sets them up in several chunks.
    n = 66
    xs, ys = np.meshgrid(np.linspace(-0.9, 0.9, n), np.linspace(-0.9, 0.9, n))
    z = 0.3 * np.sin(3 * xs) * np.cos(2 * ys)
    ndc = np.stack([xs, ys, z], -1).reshape(-1, 3).astype(np.float32)
    quads = [(j * n + i, j * n + i + 1, (j + 1) * n + i + 1, (j + 1) * n + i)
             for j in range(n - 1) for i in range(n - 1)]
    triangles = np.array([[a, b, c] for a, b, c, _ in quads] +
                         [[a, c, d] for a, _, c, d in quads], np.int32)
    self.assertGreater(len(triangles), 8192)
    ours = self.assertMatchesReference(ndc[None], triangles, (32, 32), True)
    # The grid covers NDC [-0.9, 0.9]^2 without gaps: 0.9 * 16 = 14.4 px
    # around the centre, i.e. columns/rows 2..29.
    covered = ours.triangle_ids.numpy()[0] >= 0
    self.assertTrue(np.all(covered[2:30, 2:30]))
    self.assertFalse(np.any(covered[:2]) or np.any(covered[30:]))
    self.assertFalse(np.any(covered[:, :2]) or np.any(covered[:, 30:]))

  def test_unbatched_and_ndc_input(self):
    rng = np.random.RandomState(5)
    clip, triangles = _random_mesh(rng, 1, perspective=False)
    batched = rasterize_op.rasterize(clip, triangles, (20, 20))
    unbatched = rasterize_op.rasterize(clip[0, :, :3], triangles, (20, 20))
    self.assertEqual(unbatched.triangle_ids.shape, (20, 20))
    self.assertEqual(unbatched.barycentrics.shape, (20, 20, 3))
    self.assertEqual(unbatched.depth.shape, (20, 20))
    for a, b in zip(batched, unbatched):
      self.assertAllEqual(a[0], b)

  def test_batch_equals_single_images(self):
    rng = np.random.RandomState(6)
    clip, triangles = _random_mesh(rng, 4, num_triangles=20)
    batched = rasterize_op.rasterize(clip, triangles, (24, 24))
    for b in range(4):
      single = rasterize_op.rasterize(clip[b:b + 1], triangles, (24, 24))
      for x, y in zip(batched, single):
        self.assertAllEqual(x[b], y[0])

  def test_perspective_barycentrics_reproject_to_pixel_centre(self):
    # Independent of the reference: the clip-space point given by the
    # barycentrics projects to the pixel centre at the reported depth.
    size = (10, 14)
    w = np.array([1.0, 3.0, 0.5], np.float32)
    ndc = np.array([[-0.9, -0.8, -0.5], [0.95, -0.7, 0.2], [0.1, 0.9, 0.6]],
                   np.float32)
    clip = np.concatenate([ndc * w[:, None], w[:, None]], -1)
    frags = rasterize_op.rasterize(clip, [[0, 1, 2]], size)
    ids, bary, depth = (x.numpy() for x in frags)
    rows, cols = np.nonzero(ids == 0)
    self.assertGreater(len(rows), 30)
    point = np.einsum('pk,kc->pc', bary[rows, cols], clip)
    x, y = _ndc_of_pixel(rows, cols, size)
    self.assertAllClose(point[:, 0] / point[:, 3], x, atol=1e-5)
    self.assertAllClose(point[:, 1] / point[:, 3], y, atol=1e-5)
    self.assertAllClose(point[:, 2] / point[:, 3], depth[rows, cols],
                        atol=1e-5)
    self.assertAllClose(bary.sum(-1)[rows, cols], np.ones(len(rows)))
    self.assertTrue(np.all(bary[rows, cols] >= -1e-6))
    background = ids < 0
    self.assertAllEqual(bary[background], np.zeros([background.sum(), 3]))
    self.assertAllEqual(depth[background], np.ones(background.sum()))

  def test_pixel_centre_convention(self):
    # A small counter-clockwise triangle around the centre of pixel (row 2,
    # col 5) of a 4x8 image covers exactly that pixel.
    x, y = _ndc_of_pixel(2, 5, (4, 8))
    d = 0.05
    ndc = np.array([[x - d, y - d, 0.0], [x + d, y - d, 0.0], [x, y + d, 0.0]],
                   np.float32)
    ids = rasterize_op.rasterize(ndc, [[0, 1, 2]], (4, 8), True).triangle_ids
    expected = -np.ones([4, 8], np.int32)
    expected[2, 5] = 0
    self.assertAllEqual(ids, expected)

  def test_occlusion_nearest_wins_in_any_order(self):
    big = [[-1.0, -1.0], [3.0, -1.0], [-1.0, 3.0]]  # Covers the whole image.
    near = [p + [-0.5] for p in big]
    far = [p + [0.5] for p in big]
    for order, near_id in ((near + far, 0), (far + near, 1)):
      frags = rasterize_op.rasterize(
          np.array(order, np.float32), [[0, 1, 2], [3, 4, 5]], (6, 6))
      self.assertAllEqual(frags.triangle_ids, np.full([6, 6], near_id))
      self.assertAllClose(frags.depth, np.full([6, 6], -0.5))

  def test_equal_depth_lower_id_wins(self):
    tri = [[-1.0, -1.0, 0.1], [3.0, -1.0, 0.1], [-1.0, 3.0, 0.1]]
    frags = rasterize_op.rasterize(np.array(tri * 2, np.float32),
                                   [[3, 4, 5], [0, 1, 2]], (5, 5))
    self.assertAllEqual(frags.triangle_ids, np.zeros([5, 5]))

  def test_backface_culling(self):
    ccw = np.array([[-1.0, -1.0, 0.0], [3.0, -1.0, 0.0], [-1.0, 3.0, 0.0]],
                   np.float32)
    cw = ccw[[0, 2, 1]]
    for vertices, front in ((ccw, True), (cw, False)):
      for cull in (False, True):
        ids = rasterize_op.rasterize(vertices, [[0, 1, 2]], (4, 4),
                                     cull).triangle_ids
        drawn = front or not cull
        self.assertAllEqual(ids, np.full([4, 4], 0 if drawn else -1))

  def test_depth_and_w_clipping(self):
    full = np.array([[-1.0, -1.0], [3.0, -1.0], [-1.0, 3.0]], np.float32)
    for z, drawn in ((-1.0, True), (1.0, True), (1.01, False), (-1.5, False)):
      ndc = np.concatenate([full, np.full([3, 1], z, np.float32)], -1)
      ids = rasterize_op.rasterize(ndc, [[0, 1, 2]], (3, 3)).triangle_ids
      self.assertAllEqual(ids, np.full([3, 3], 0 if drawn else -1))
    # A vertex behind the camera (w <= 0) drops the triangle.
    clip = np.concatenate([full, np.zeros([3, 1]), [[1.0], [1.0], [-0.5]]],
                          -1).astype(np.float32)
    ids = rasterize_op.rasterize(clip, [[0, 1, 2]], (3, 3)).triangle_ids
    self.assertAllEqual(ids, np.full([3, 3], -1))

  def test_empty_mesh_and_empty_batch(self):
    frags = rasterize_op.rasterize(np.zeros([2, 3, 4], np.float32),
                                   np.zeros([0, 3], np.int32), (3, 5))
    self.assertAllEqual(frags.triangle_ids, -np.ones([2, 3, 5]))
    frags = rasterize_op.rasterize(np.zeros([0, 3, 4], np.float32),
                                   [[0, 1, 2]], (3, 5))
    self.assertEqual(frags.barycentrics.shape, (0, 3, 5, 3))

  def test_gradient_only_through_barycentrics(self):
    # The barycentrics have the compiled gradient (tests/
    # test_renderer_barycentrics_grad.py); depth and ids have none.
    clip = tf.constant(_random_mesh(np.random.RandomState(0), 1)[0])
    weights = np.random.RandomState(1).rand(1, 8, 8, 3).astype(np.float32)
    with tf.GradientTape(persistent=True) as tape:
      tape.watch(clip)
      frags = rasterize_op.rasterize(clip, [[0, 1, 2], [3, 4, 5]], (8, 8))
      depth_loss = tf.reduce_sum(frags.depth)
      bary_loss = tf.reduce_sum(frags.barycentrics * weights)
    self.assertTrue(np.any(frags.triangle_ids.numpy() >= 0))
    depth_grad = tape.gradient(depth_loss, clip)
    self.assertTrue(depth_grad is None or not np.any(depth_grad.numpy()))
    self.assertTrue(np.any(tape.gradient(bary_loss, clip).numpy()))

  def test_inside_tf_function_with_unknown_shapes(self):
    rng = np.random.RandomState(9)
    clip, triangles = _random_mesh(rng, 2)

    @tf.function(input_signature=[
        tf.TensorSpec([None, None, 4], tf.float32),
        tf.TensorSpec([None, 3], tf.int32)])
    def run(c, t):
      frags = rasterize_op.rasterize(c, t, (16, 16))
      self.assertEqual(frags.triangle_ids.shape.as_list(), [None, 16, 16])
      return frags

    for a, b in zip(run(clip, triangles),
                    reference_rasterizer.rasterize(clip, triangles, (16, 16))):
      self.assertAllClose(a, b, atol=1e-6)
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                r'triangles\[0, 1\] = 12 is out of range'):
      run(clip, np.array([[0, 12, 1]], np.int32))

  @parameterized.named_parameters(
      ('index_too_large', None, [[0, 1, 3]],
       r'triangles\[0, 2\] = 3 is out of range \[0, 3\)'),
      ('index_negative', None, [[0, 1, 2], [0, -1, 2]],
       r'triangles\[1, 1\] = -1 is out of range'),
      ('nan_vertex', 'nan', [[0, 1, 2]],
       r'clip_vertices has a non-finite value \(nan\) at \[0, 1, 2\]'),
      ('inf_vertex', 'inf', [[0, 1, 2]],
       r'clip_vertices has a non-finite value \(inf\) at \[0, 1, 2\]'),
      ('vertices_rank', 'rank1', [[0, 1, 2]], 'clip_vertices must be'),
      ('vertices_last_dim', 'dim2', [[0, 1, 2]], 'last dimension must be'),
      ('triangles_shape', None, [[0, 1]], r'triangles must be \[T, 3\]'),
      ('triangles_dtype', None, [[0.0, 1.0, 2.0]], 'triangles must be int32'),
      ('triangles_tensor_dtype', None, tf.constant([[0, 1, 2]], tf.int64),
       'triangles must be int32'),
      ('vertices_dtype', 'int', [[0, 1, 2]], 'clip_vertices must be float32'),
  )
  def test_bad_input_raises_invalid_argument(self, vertices, triangles,
                                             message):
    clip = np.zeros([1, 3, 4], np.float32)
    clip[..., 3] = 1.0
    if vertices in ('nan', 'inf'):
      clip[0, 1, 2] = float(vertices)
    elif vertices == 'rank1':
      clip = clip.reshape([-1])
    elif vertices == 'dim2':
      clip = clip[..., :2]
    elif vertices == 'int':
      clip = clip.astype(np.int32)
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError, message):
      rasterize_op.rasterize(clip, triangles, (4, 4))

  def test_reports_first_bad_value_of_large_inputs(self):
    # Inputs are checked in parallel blocks; the first bad element is named.
    clip = np.ones([2, 60000, 4], np.float32)
    clip[1, 50000, 1] = np.inf
    clip[1, 20000, 3] = np.nan
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                r'\(nan\) at \[1, 20000, 3\]'):
      rasterize_op.rasterize(clip, [[0, 1, 2]], (4, 4))
    triangles = np.zeros([30000, 3], np.int32)
    triangles[25000, 1] = 60000
    triangles[9000, 2] = -7
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                r'triangles\[9000, 2\] = -7 is out of range'):
      rasterize_op.rasterize(np.ones([1, 60000, 4], np.float32), triangles,
                             (4, 4))

  @parameterized.parameters(((0, 4),), ((4, 0),), ((-1, 4),), ((4,),),
                            ((4.0, 4),), (None,))
  def test_bad_image_size(self, size):
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError, 'image_size'):
      rasterize_op.rasterize(np.zeros([3, 4], np.float32), [[0, 1, 2]], size)
    # Also a ValueError, as Python callers may expect.
    with self.assertRaises(ValueError):
      rasterize_op.rasterize(np.zeros([3, 4], np.float32), [[0, 1, 2]], size)

  def test_kernel_rejects_bad_rank_in_graph(self):
    @tf.function(input_signature=[tf.TensorSpec(None, tf.float32)])
    def run(c):
      return rasterize_op.rasterize(c, [[0, 1, 2]], (4, 4)).triangle_ids

    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                r'clip_vertices must have shape \[B, N, 4\]'):
      run(tf.zeros([2, 3, 4, 1]))


class LibraryLoadingTest(tf.test.TestCase):
  """The wrapper refuses a missing or mismatched library with rebuild advice."""

  def _import_copy(self, library_bytes):
    folder = tempfile.mkdtemp(dir=self.get_temp_dir())
    shutil.copy(_RASTERIZE_OP_PY, folder)
    if library_bytes is not None:
      with open(os.path.join(folder, '_rasterize_triangles.so'), 'wb') as f:
        f.write(library_bytes)
    spec = importlib.util.spec_from_file_location(
        'rasterize_op_copy', os.path.join(folder, 'rasterize_op.py'))
    spec.loader.exec_module(importlib.util.module_from_spec(spec))

  def test_missing_library(self):
    with self.assertRaisesRegex(ImportError,
                                r'not found: rebuild it with `pip install -e'):
      self._import_copy(None)

  def test_library_for_other_tensorflow(self):
    with self.assertRaisesRegex(
        ImportError, r'built for TensorFlow 0\.1\.0, running TensorFlow %s: '
        r'rebuild it with `pip install -e \.`' % tf.__version__):
      self._import_copy(b'\0junk FULLPOSE_BUILT_FOR_TF=0.1.0\0junk')

  def test_unloadable_library(self):
    with self.assertRaisesRegex(ImportError, r'does not load .*pip install'):
      self._import_copy(b'not an ELF file FULLPOSE_BUILT_FOR_TF=%s\0' %
                        tf.__version__.encode())


@unittest.skipIf(_OP_MISSING, _OP_MISSING)
class RasterizeOpGpuTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    if not rasterize_op.BUILT_WITH_CUDA:
      self.skipTest('the op library was built without the CUDA kernel')
    if not tf.config.list_physical_devices('GPU'):
      self.skipTest('CUDA kernel built but no GPU is visible to TensorFlow')

  def test_gpu_matches_cpu(self):
    rng = np.random.RandomState(11)
    for batch, cull in ((1, False), (3, True)):
      clip, triangles = _random_mesh(rng, batch, num_triangles=30)
      with tf.device('/CPU:0'):
        cpu = rasterize_op.rasterize(clip, triangles, (40, 56), cull)
      with tf.device('/GPU:0'):
        gpu = rasterize_op.rasterize(clip, triangles, (40, 56), cull)
      self.assertIn('GPU', gpu.triangle_ids.device)
      # float32 on the GPU, float64 on the CPU: allow rare edge-pixel flips.
      same = cpu.triangle_ids.numpy() == gpu.triangle_ids.numpy()
      self.assertGreater(same.mean(), 0.995)
      self.assertAllClose(cpu.barycentrics.numpy()[same],
                          gpu.barycentrics.numpy()[same], atol=1e-4)
      self.assertAllClose(cpu.depth.numpy()[same], gpu.depth.numpy()[same],
                          atol=1e-5)

  def test_gpu_bad_input(self):
    with tf.device('/GPU:0'):
      with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                  'out of range'):
        rasterize_op.rasterize(np.zeros([1, 3, 4], np.float32), [[0, 1, 3]],
                               (4, 4))
      with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                  'non-finite'):
        rasterize_op.rasterize(np.full([1, 3, 4], np.nan, np.float32),
                               [[0, 1, 2]], (4, 4))


if __name__ == '__main__':
  tf.test.main()
