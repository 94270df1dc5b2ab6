"""Tests for the compiled gradient of the rasterizer's barycentrics.

renderer.rasterize_op registers FullposeRasterizeTrianglesGrad as the
gradient of the op's barycentrics. Checked here against the TensorFlow-ops
reference (renderer.interpolate.differentiable_barycentrics: equal Jacobians
to float32 precision) and against finite differences, batched and unbatched,
with back-face culling on and off, for perspective and orthographic clip
coordinates. As in tensorflow_graphics' rasterization backend tests, one base
class holds the tests and each backend (CPU kernel, CUDA kernel) subclasses
it, overriding only setUp.
"""

import unittest

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from renderer import camera
from renderer import interpolate
from renderer import mesh_renderer
from tests import test_utils

try:
  from renderer import rasterize_op
  _OP_MISSING = None
except ImportError as e:  # OpLibraryError says how to rebuild.
  rasterize_op = None
  _OP_MISSING = 'rasterizer op not available: %s' % e

# The mesh of tests/test_renderer_interpolate.py: screen pixels of a 12 x 12
# image, no pixel centre within 0.05 px of an edge, so that finite
# differences below never change which triangle covers a pixel. Triangle 2
# is clockwise in the image (a back face), so culling changes the ids.
_SIZE = (12, 12)
_TRIANGLES = np.array([[0, 1, 2], [0, 2, 3], [1, 2, 4]], np.int32)
_SCREEN = np.array([[[1.2, 10.83, 1.0], [6.09, 10.62, 2.0], [6.09, 0.82, 3.0],
                     [0.85, 2.04, 0.5], [10.73, 5.38, -1.0]]], np.float32)
_W = np.array([1.0, 2.0, 0.5, 1.5, 3.0], np.float32)


def _clip(perspective, batch=1):
  """[batch, 5, 4] clip vertices of the test mesh (image b shifted by b px).

  Perspective: w varies per vertex (NDC unchanged); orthographic: w = 1.
  """
  screen = np.concatenate([_SCREEN + [b, 0.0, 0.0] for b in range(batch)])
  ndc = camera.screen_to_clip(screen, _SIZE, 10.0).numpy()[..., :3]
  w = _W if perspective else np.ones_like(_W)
  return np.concatenate([ndc * w[:, None], np.broadcast_to(
      w[:, None], ndc.shape[:-1] + (1,))], -1).astype(np.float32)


def _random_mesh(rng, batch, num_vertices=12, num_triangles=14):
  """Random overlapping triangles with varying w: [B, N, 4], [T, 3]."""
  ndc = rng.uniform(-1.2, 1.2, [batch, num_vertices, 3])
  w = rng.uniform(0.5, 2.0, [batch, num_vertices, 1])
  clip = np.concatenate([ndc * w, w], -1).astype(np.float32)
  triangles = rng.randint(0, num_vertices, [num_triangles, 3]).astype(np.int32)
  return clip, triangles


class BarycentricsGradTestBase(tf.test.TestCase, parameterized.TestCase):
  """Tests run on self.device: the CPU, or the GPU subclass's setUp sets
  it."""

  device = '/CPU:0'

  device = None

  def _jacobians(self, clip, triangles, size, cull):
    """Jacobians of the op's barycentrics w.r.t. clip.

    Returns ids and three [outputs, inputs] Jacobians (outputs: the
    barycentrics, flattened; inputs: clip, flattened): the compiled
    gradient's, the TF-ops reference's and central finite differences'.
    The first two come from one backward pass over R copies of the input
    (R = number of outputs), copy r weighted by the r-th unit vector.
    """
    clip = np.asarray(clip, np.float32)
    batched = clip if clip.ndim == 3 else clip[None]
    height, width = size
    rows = batched.shape[0] * height * width * 3
    with tf.device(self.device):
      ids = rasterize_op.rasterize(batched, triangles, size,
                                   cull).triangle_ids
      copies = tf.constant(np.tile(batched, [rows, 1, 1]))
      basis = tf.reshape(tf.eye(rows), [-1, height, width, 3])
      ids_copies = tf.tile(ids, [rows, 1, 1])

      def ours(c):
        return rasterize_op.rasterize(c, triangles, size, cull).barycentrics

      def reference(c):
        return interpolate.differentiable_barycentrics(c, triangles,
                                                       ids_copies)

      jacobians = []
      for fn in (ours, reference):
        with tf.GradientTape() as tape:
          tape.watch(copies)
          loss = tf.reduce_sum(fn(copies) * basis)
        jacobians.append(
            tape.gradient(loss, copies).numpy().reshape(rows, -1))
      self.assertAllEqual(ours(copies[:batched.shape[0]]).numpy(),
                          ours(tf.constant(batched)).numpy())
      # Finite differences of the op itself (unbatched input as given).
      delta = 1e-3
      flat = clip.reshape(-1)
      numerical = np.zeros([rows, flat.size], np.float32)
      for i in range(flat.size):
        plus, minus = flat.copy(), flat.copy()
        plus[i] += delta
        minus[i] -= delta
        f_plus, f_minus = (
            rasterize_op.rasterize(x.reshape(clip.shape), triangles, size,
                                   cull).barycentrics.numpy().reshape(-1)
            for x in (plus, minus))
        numerical[:, i] = (f_plus - f_minus) / (plus[i] - minus[i])
    return ids.numpy(), jacobians[0], jacobians[1], numerical

  @parameterized.product(batch=[None, 1, 2], cull=[False, True],
                         perspective=[False, True])
  def test_matches_reference_and_finite_differences(self, batch, cull,
                                                    perspective):
    clip = _clip(perspective, batch or 1)
    if batch is None:
      clip = clip[0]  # Unbatched [N, 4].
    ids, ours, reference, numerical = self._jacobians(clip, _TRIANGLES, _SIZE,
                                                      cull)
    self.assertEqual(np.any(ids == 2), not cull)  # Culling changed the ids.
    scale = np.abs(reference).max()
    self.assertGreater(scale, 0.5)
    # Compiled (float64 inside) vs TF ops (float32): float32 precision.
    self.assertAllClose(ours, reference, atol=2e-6 * scale, rtol=1e-5)
    self.assertAllClose(ours, numerical, atol=5e-3 * scale)
    # Columns are the inputs (x, y, z, w): z moves no barycentric.
    z_columns = ours.reshape(ours.shape[0], -1, 4)[..., 2]
    self.assertAllEqual(z_columns, np.zeros_like(z_columns))

  @parameterized.parameters((1, False, (64, 80)), (1, True, (23, 31)),
                            (3, True, (23, 31)), (4, False, (23, 31)))
  def test_vjp_matches_reference_on_random_meshes(self, batch, cull, size):
    # Overlapping random triangles (occlusion, pixels near edges): the
    # compiled vector-Jacobian product equals the TF-ops one. (At 64 x 80
    # one image's rows are summed in parallel parts.)
    rng = np.random.RandomState(batch + 10 * cull)
    clip, triangles = _random_mesh(rng, batch)
    weights = tf.constant(rng.randn(batch, *size, 3).astype(np.float32))
    clip = tf.constant(clip)
    with tf.device(self.device):
      with tf.GradientTape(persistent=True) as tape:
        tape.watch(clip)
        frags = rasterize_op.rasterize(clip, triangles, size, cull)
        ours = tf.reduce_sum(frags.barycentrics * weights)
        reference = tf.reduce_sum(interpolate.differentiable_barycentrics(
            clip, triangles, frags.triangle_ids) * weights)
      ours_grad = tape.gradient(ours, clip).numpy()
      reference_grad = tape.gradient(reference, clip).numpy()
    self.assertGreater(np.mean(frags.triangle_ids.numpy() >= 0), 0.2)
    scale = np.abs(reference_grad).max()
    self.assertGreater(scale, 0.1)
    # Random slivers are ill-conditioned: the float32 reference's error
    # grows to ~3e-5 of the largest entry (ours sums in float64).
    self.assertAllClose(ours_grad, reference_grad, atol=1e-4 * scale,
                        rtol=1e-5)

  def test_ndc_input_gradient(self):
    # [B, N, 3] NDC input (w = 1): gradient [B, N, 3] equal to the clip
    # gradient's x and y, zero in z.
    clip = tf.constant(_clip(perspective=False, batch=2))
    ndc = tf.constant(clip[..., :3])
    weights = tf.constant(np.random.RandomState(3).rand(2, 12, 12, 3),
                          tf.float32)
    grads = []
    with tf.device(self.device):
      for x in (clip, ndc):
        with tf.GradientTape() as tape:
          tape.watch(x)
          bary = rasterize_op.rasterize(x, _TRIANGLES, _SIZE).barycentrics
          loss = tf.reduce_sum(bary * weights)
        grads.append(tape.gradient(loss, x).numpy())
    self.assertEqual(grads[1].shape, (2, 5, 3))
    self.assertAllClose(grads[1][..., :2], grads[0][..., :2], atol=1e-6)
    self.assertAllEqual(grads[1][..., 2], np.zeros([2, 5]))

  def test_background_pixels_get_no_gradient(self):
    clip = _clip(perspective=True, batch=2)
    with tf.device(self.device):
      ids = rasterize_op.rasterize(clip, _TRIANGLES, _SIZE).triangle_ids
      foreground = tf.cast(ids >= 0, tf.float32)[..., None]
      self.assertGreater(float(tf.reduce_mean(foreground)), 0.2)
      self.assertLess(float(tf.reduce_mean(foreground)), 0.9)
      d_bary = tf.constant(np.random.RandomState(4).randn(2, 12, 12, 3),
                           tf.float32)
      everywhere = rasterize_op.barycentrics_grad(clip, _TRIANGLES, ids,
                                                  d_bary)
      covered_only = rasterize_op.barycentrics_grad(clip, _TRIANGLES, ids,
                                                    d_bary * foreground)
      background_only = rasterize_op.barycentrics_grad(
          clip, _TRIANGLES, ids, d_bary * (1.0 - foreground))
      # Nothing drawn (all ids -1): zero gradient.
      empty = rasterize_op.barycentrics_grad(
          clip, _TRIANGLES, -tf.ones_like(ids), d_bary)
    self.assertAllEqual(everywhere, covered_only)
    self.assertAllEqual(background_only, np.zeros_like(clip))
    self.assertAllEqual(empty, np.zeros_like(clip))
    self.assertGreater(np.abs(everywhere.numpy()).max(), 0.1)

  def test_render_gradients_op_equal_tf_reference(self):
    # Through mesh_renderer.render_clip: gradients w.r.t. vertices and
    # colours are the same with either barycentrics gradient.
    clip = tf.constant(_clip(perspective=True, batch=2))
    colors = tf.constant(np.random.RandomState(5).rand(2, 5, 3), tf.float32)
    weights = tf.constant(np.random.RandomState(6).rand(2, 12, 12, 3),
                          tf.float32)
    grads = {}
    with tf.device(self.device):
      for method in ('op', 'tf'):
        with tf.GradientTape() as tape:
          tape.watch([clip, colors])
          image = mesh_renderer.render_clip(
              clip, _TRIANGLES, colors, _SIZE, cull_backfaces=False,
              barycentrics_gradient=method).image
          loss = tf.reduce_sum(image * weights)
        grads[method] = [g.numpy() for g in tape.gradient(loss,
                                                          [clip, colors])]
    for ours, reference in zip(grads['op'], grads['tf']):
      self.assertGreater(np.abs(reference).max(), 0.1)
      self.assertAllClose(ours, reference, atol=1e-5 * np.abs(reference).max())

  def test_bad_input(self):
    clip = _clip(perspective=True)
    ids = np.zeros([1, 4, 4], np.int32)
    d_bary = np.zeros([1, 4, 4, 3], np.float32)
    with tf.device(self.device):
      with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                  r'd_barycentrics must have shape'):
        rasterize_op.barycentrics_grad(clip, _TRIANGLES, ids, d_bary[..., :2])
      with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                  r'triangle_ids must have shape'):
        rasterize_op.barycentrics_grad(clip, _TRIANGLES, ids[0], d_bary)


@unittest.skipIf(_OP_MISSING, _OP_MISSING)
class BarycentricsGradCpuTest(BarycentricsGradTestBase):

  def test_out_of_range_ids(self):
    clip = _clip(perspective=True)
    d_bary = np.zeros([1, 4, 4, 3], np.float32)
    for bad in (3, -2):
      ids = np.zeros([1, 4, 4], np.int32)
      ids[0, 1, 2] = bad
      with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                  r'triangle_ids has %d, outside \[-1, 3\)' %
                                  bad):
        rasterize_op.barycentrics_grad(clip, _TRIANGLES, ids, d_bary)

  def test_deterministic(self):
    rng = np.random.RandomState(7)
    clip, triangles = _random_mesh(rng, 1, num_triangles=40)
    ids = rasterize_op.rasterize(clip, triangles, (64, 64)).triangle_ids
    d_bary = rng.randn(1, 64, 64, 3).astype(np.float32)
    first = rasterize_op.barycentrics_grad(clip, triangles, ids, d_bary)
    for _ in range(3):
      self.assertAllEqual(
          rasterize_op.barycentrics_grad(clip, triangles, ids, d_bary), first)


class BarycentricsGradGpuTest(BarycentricsGradTestBase):

  def setUp(self):
    super().setUp()
    self.device = test_utils.require_gpu_kernel()

  def test_gpu_matches_cpu(self):
    rng = np.random.RandomState(12)
    for batch, cull in ((1, False), (3, True)):
      clip, triangles = _random_mesh(rng, batch, num_triangles=30)
      with tf.device('/CPU:0'):
        ids = rasterize_op.rasterize(clip, triangles, (40, 56),
                                     cull).triangle_ids
      d_bary = rng.randn(batch, 40, 56, 3).astype(np.float32)
      with tf.device('/CPU:0'):
        cpu = rasterize_op.barycentrics_grad(clip, triangles, ids, d_bary)
      with tf.device('/GPU:0'):
        gpu = rasterize_op.barycentrics_grad(clip, triangles, ids, d_bary)
      self.assertIn('GPU', gpu.device)
      scale = np.abs(cpu.numpy()).max()
      self.assertAllClose(cpu, gpu, atol=1e-6 * scale, rtol=1e-6)


# Only the per-backend subclasses run.
del BarycentricsGradTestBase

if __name__ == '__main__':
  tf.test.main()
