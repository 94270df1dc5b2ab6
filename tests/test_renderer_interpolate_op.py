"""Tests for the compiled attribute interpolation and its gradient.

renderer.rasterize_op.interpolate_attributes (FullposeInterpolateAttributes,
gradient FullposeInterpolateAttributesGrad) against the TensorFlow-ops
reference renderer.interpolate.interpolate and finite differences; one base
class, subclassed per backend (CPU kernel, CUDA kernel).
"""

import unittest

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from renderer import interpolate
from tests import test_utils

try:
  from renderer import rasterize_op
  _OP_MISSING = None
except ImportError as e:  # OpLibraryError says how to rebuild.
  rasterize_op = None
  _OP_MISSING = 'rasterizer op not available: %s' % e


def _scene(seed, batch, channels, size=(19, 23), num_vertices=12,
           num_triangles=14):
  """Rasterized random triangles: attributes, triangles, ids, barycentrics."""
  rng = np.random.RandomState(seed)
  ndc = rng.uniform(-1.2, 1.2, [batch, num_vertices, 3])
  w = rng.uniform(0.5, 2.0, [batch, num_vertices, 1])
  clip = np.concatenate([ndc * w, w], -1).astype(np.float32)
  triangles = rng.randint(0, num_vertices, [num_triangles, 3]).astype(np.int32)
  frags = rasterize_op.rasterize(clip, triangles, size)
  attributes = rng.randn(batch, num_vertices, channels).astype(np.float32)
  return attributes, triangles, frags.triangle_ids, frags.barycentrics


class InterpolateOpTestBase(tf.test.TestCase, parameterized.TestCase):
  """Tests run on self.device: the CPU, or the GPU subclass's setUp sets
  it."""

  device = '/CPU:0'

  device = None

  @parameterized.parameters((1, 1), (1, 3), (3, 4))
  def test_matches_reference_values_and_gradients(self, batch, channels):
    attributes, triangles, ids, bary = _scene(batch + channels, batch,
                                              channels)
    self.assertGreater(float(tf.reduce_mean(tf.cast(ids >= 0, tf.float32))),
                       0.2)
    attributes, bary = tf.constant(attributes), tf.constant(bary)
    weights = tf.constant(np.random.RandomState(0).randn(
        *ids.shape, channels).astype(np.float32))
    with tf.device(self.device):
      with tf.GradientTape(persistent=True) as tape:
        tape.watch([attributes, bary])
        ours = rasterize_op.interpolate_attributes(attributes, triangles, ids,
                                                   bary)
        reference = interpolate.interpolate(attributes, triangles, ids, bary)
        ours_loss = tf.reduce_sum(ours * weights)
        reference_loss = tf.reduce_sum(reference * weights)
      ours_grads = tape.gradient(ours_loss, [attributes, bary])
      reference_grads = tape.gradient(reference_loss, [attributes, bary])
    self.assertAllClose(ours, reference, atol=1e-6)
    background = ids.numpy() < 0
    self.assertAllEqual(ours.numpy()[background],
                        np.zeros([background.sum(), channels]))
    for a, b in zip(ours_grads, reference_grads):
      b = tf.convert_to_tensor(b).numpy()
      self.assertGreater(np.abs(b).max(), 0.1)
      self.assertAllClose(a, b, atol=1e-5 * np.abs(b).max())
    # No gradient to the barycentrics of background pixels.
    self.assertAllEqual(ours_grads[1].numpy()[background],
                        np.zeros([background.sum(), 3]))

  def test_finite_differences(self):
    attributes, triangles, ids, bary = _scene(7, 1, 2, size=(5, 6))
    with tf.device(self.device):
      theoretical, numerical = tf.test.compute_gradient(
          lambda a, b: rasterize_op.interpolate_attributes(a, triangles, ids,
                                                           b),
          [tf.constant(attributes), tf.constant(bary)], delta=1e-2)
    for t, n in zip(theoretical, numerical):
      self.assertGreater(np.abs(t).max(), 0.1)
      self.assertAllClose(t, n, atol=2e-3)

  def test_bad_input(self):
    attributes, triangles, ids, bary = _scene(8, 1, 2)
    with tf.device(self.device):
      with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                  r'barycentrics must have shape'):
        rasterize_op.interpolate_attributes(attributes, triangles, ids,
                                            bary[..., :2])
      with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                  r'attributes must have shape'):
        rasterize_op.interpolate_attributes(attributes[0], triangles, ids,
                                            bary)


@unittest.skipIf(_OP_MISSING, _OP_MISSING)
class InterpolateOpCpuTest(InterpolateOpTestBase):

  def test_out_of_range_indices(self):
    attributes, triangles, ids, bary = _scene(9, 1, 2)
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                r'out of range \[0, 5\)'):
      rasterize_op.interpolate_attributes(attributes[:, :5], triangles, ids,
                                          bary)
    bad_ids = ids.numpy()
    bad_ids[0, 0, 0] = 14
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                r'triangle_ids has 14, outside \[-1, 14\)'):
      rasterize_op.interpolate_attributes(attributes, triangles, bad_ids,
                                          bary)


class InterpolateOpGpuTest(InterpolateOpTestBase):

  def setUp(self):
    super().setUp()
    self.device = test_utils.require_gpu_kernel()

  def test_gpu_matches_cpu(self):
    attributes, triangles, ids, bary = _scene(10, 3, 3, size=(40, 56))
    d_values = np.random.RandomState(1).randn(3, 40, 56, 3).astype(np.float32)
    results = []
    for device in ('/CPU:0', '/GPU:0'):
      with tf.device(device):
        with tf.GradientTape() as tape:
          a, b = tf.constant(attributes), tf.constant(bary)
          tape.watch([a, b])
          values = rasterize_op.interpolate_attributes(a, triangles, ids, b)
          loss = tf.reduce_sum(values * d_values)
        results.append([values] + tape.gradient(loss, [a, b]))
    self.assertIn('GPU', results[1][0].device)
    for cpu, gpu in zip(*results):
      self.assertAllClose(cpu, gpu, atol=1e-5)


# Only the per-backend subclasses run.
del InterpolateOpTestBase

if __name__ == '__main__':
  tf.test.main()
