"""Tests for detail/ri2itn.py (RI2ITN, Eq. 6-10)."""

import os

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from detail import ri2itn

SMALL = (4, 4, 8, 8)  # 4 stride-2 levels: 16^2 -> 1^2 bottleneck


def _small_net(passes, share=True):
  """An RI2ITN at 16^2 UV with the SMALL widths."""
  return ri2itn.RI2ITN(uv_size=16, num_passes=passes, share_weights=share,
                       channels=SMALL, stem_channels=4)


class RI2ITNTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters((1, True), (2, True), (3, False))
  def test_output_shape_and_range(self, passes, share):
    net = _small_net(passes, share)
    x = tf.random.normal([2, 16, 16, 3], seed=1) * 50.0
    y = net(x)
    self.assertEqual(y.shape, (2, 16, 16, 1))
    y = y.numpy()
    self.assertTrue(np.all(np.abs(y) <= 1.0))  # tanh may round to 1 in float32
    self.assertGreater(np.std(y), 0.0)

  def test_default_chen20_widths_at_64(self):
    net = ri2itn.RI2ITN(uv_size=64)
    self.assertEqual(net.channels, (32, 64, 128, 256, 512, 512))
    net = ri2itn.RI2ITN(uv_size=512)
    self.assertEqual(net.channels, ri2itn.CHEN20_CHANNELS)

  def test_one_pass_equals_base_network(self):
    x = tf.random.normal([1, 16, 16, 3], seed=2)
    net = _small_net(1)
    net(x)
    base, base_fn = ri2itn.chen20_uv_network(16,
                                             channels=SMALL,
                                             stem_channels=4)
    base(x)
    # Same base weights, random (not the initial) values.
    for v in net.passes[0].weights:
      v.assign(tf.random.normal(v.shape, stddev=0.3, seed=3))
    for dst, src in zip(base.weights, net.passes[0].weights):
      dst.assign(src)
    # With t = 1 there is no fusion layer: no other weights.
    self.assertIsNone(net.fusion)
    self.assertLen(net.weights, len(base.weights))
    self.assertAllEqual(net(x), base_fn(x))

  def test_second_pass_changes_output(self):
    x = tf.random.normal([1, 16, 16, 3], seed=4)
    net = _small_net(2)
    y2 = net(x)
    # Remove the feedback by running one pass with the same weights.
    f0, _ = net.passes[0](x)
    y1 = tf.tanh(net.fusion(tf.concat([f0, f0], -1)))
    self.assertNotAllClose(y1, y2)

  @parameterized.parameters(True, False)
  def test_feedback_convs_for_every_pair_with_gradient(self, share):
    levels = len(SMALL)
    net = _small_net(3, share)
    x = tf.random.normal([2, 16, 16, 3], seed=5)
    with tf.GradientTape() as tape:
      y = net(x)
      loss = tf.reduce_sum(tf.square(y - 0.3))
    self.assertLen(net.feedbacks, 1 if share else 2)
    self.assertLen(net.passes, 1 if share else 3)
    for fb in net.feedbacks:
      pairs = sorted(fb.chains)
      self.assertEqual(pairs,
                       [(i, j) for i in range(1, levels) for j in range(i)])
      for (i, j), chain in fb.chains.items():
        self.assertLen(chain, i - j)
    variables = [
        c.kernel
        for fb in net.feedbacks
        for chain in fb.chains.values()
        for c in chain
    ]
    grads = tape.gradient(loss, variables)
    for v, g in zip(variables, grads):
      self.assertIsNotNone(g, v.path)
      self.assertGreater(float(tf.reduce_max(tf.abs(g))), 0.0, v.path)

  @parameterized.parameters(True, False)
  def test_checkpoint_round_trip_restores_every_weight(self, share):
    x = tf.random.normal([1, 16, 16, 3], seed=6)
    kwargs = dict(uv_size=16,
                  num_passes=2,
                  share_weights=share,
                  channels=SMALL,
                  stem_channels=4)
    net = ri2itn.RI2ITN(**kwargs)
    net(x)
    path = tf.train.Checkpoint(network=net).save(
        os.path.join(self.get_temp_dir(), 'ckpt'))
    other = ri2itn.RI2ITN(**kwargs)
    other(x)
    self.assertNotAllClose(net(x), other(x))
    tf.train.Checkpoint(network=other).restore(path).assert_consumed()
    self.assertAllEqual(net(x), other(x))

  def test_bad_size_raises(self):
    with self.assertRaisesRegex(ValueError, 'power of two'):
      ri2itn.RI2ITN(uv_size=48)
    net = ri2itn.RI2ITN(uv_size=16, channels=SMALL, stem_channels=4)
    with self.assertRaisesRegex(ValueError, 'expected input'):
      net(tf.zeros([1, 32, 32, 3]))


if __name__ == '__main__':
  tf.test.main()
