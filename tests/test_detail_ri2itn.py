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
    # Chen20 face_model.py FineModel.generator: conv0 16 channels (stride 1),
    # conv1..conv9 32, 64, 128, 256, 512, 512, 512, 512, 512 (stride 2); at
    # 64^2 six stride-2 levels bring the map to 1x1.
    net = ri2itn.RI2ITN(uv_size=64)
    x = tf.zeros([1, 64, 64, 3])
    skips, features, _ = net.unroll(x)[0]
    widths = [16, 32, 64, 128, 256, 512, 512]
    self.assertEqual([tuple(t.shape) for t in skips],
                     [(1, 64 >> s, 64 >> s, w) for s, w in enumerate(widths)])
    self.assertEqual([tuple(t.shape) for t in features],
                     [(1, 64 >> s, 64 >> s, w)
                      for s, w in enumerate(widths[:-1])])
    layers = [net.passes[0].stem] + net.passes[0].encoder
    self.assertEqual([tuple(l.kernel.shape) for l in layers],
                     [(3, 3, 3, 16)] + [(3, 3, a, b)
                                        for a, b in zip(widths, widths[1:])])

  def test_chen20_base_network_has_22_million_parameters_at_512(self):
    """Counted from Chen20's layer list (3x3 kernels, biases), not from the
    code: stem, 9 stride-2 convolutions, 9 transposed convolutions back, and
    the one-channel output deconvolution."""
    widths = [16, 32, 64, 128, 256, 512, 512, 512, 512, 512]
    expected = 9 * 3 * 16 + 16 + 9 * 16 * 1 + 1
    for a, b in zip(widths, widths[1:]):
      expected += (9 * a * b + b) + (9 * b * a + a)  # conv down, deconv up
    base, fn = ri2itn.chen20_uv_network(512)
    fn(tf.zeros([1, 512, 512, 3]))
    self.assertEqual(base.count_params(), expected)
    self.assertAllClose(expected / 1e6, 22.0, atol=0.05)  # README's figure

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

  def test_second_pass_sees_the_first_pass(self):
    x = tf.random.normal([1, 16, 16, 3], seed=4)
    net = _small_net(2)
    net(x)
    for v in net.weights:  # random weights, not the initial values
      v.assign(tf.random.normal(v.shape, stddev=0.3, seed=11))
    base, base_fn = ri2itn.chen20_uv_network(16, channels=SMALL,
                                             stem_channels=4)
    base(x)
    for dst, src in zip(base.weights, net.passes[0].weights):
      dst.assign(src)
    # Eq. 10 with fusion weights (1, 0): the first pass alone, which is
    # Chen20's network with the same weights.
    net.fusion.kernel.assign([[[[1.0], [0.0]]]])
    net.fusion.bias.assign([0.0])
    self.assertAllClose(net(x), base_fn(x), atol=1e-6)
    # Weights (0, 1): the second pass, which differs because it receives
    # the first pass's decoder features (Eq. 6-7).
    net.fusion.kernel.assign([[[[0.0], [1.0]]]])
    self.assertGreater(float(tf.reduce_max(tf.abs(net(x) - base_fn(x)))),
                       1e-3)
    # Eq. 7 at full resolution, where no chain arrives: the second pass's
    # x_0 is the first pass's x_0 plus the first pass's decoder feature f_0.
    (skips1, features1, _), (skips2, _, _) = net.unroll(x)
    self.assertAllClose(skips2[0], skips1[0] + features1[0], atol=1e-5)

  @parameterized.parameters('per_pair', 'per_source')
  def test_each_feedback_chain_reaches_only_its_target_scale(self, mode):
    """All feedback convolutions zeroed but one chain's: of the second
    pass's encoder activations, the first that changes is the chain's
    (first) target scale; the first pass does not change at all."""
    levels = len(SMALL)
    net = ri2itn.RI2ITN(uv_size=16, num_passes=2, channels=SMALL,
                        stem_channels=4, feedback_chains=mode)
    x = tf.random.normal([2, 16, 16, 3], seed=12)
    net(x)
    chains = net.feedbacks[0].chains
    saved = {key: [[w.numpy() for w in c.weights] for c in chain]
             for key, chain in chains.items()}

    def zero_all():
      for chain in chains.values():
        for conv in chain:
          for w in conv.weights:
            w.assign(tf.zeros_like(w))

    zero_all()
    base = net.unroll(x)
    if mode == 'per_pair':
      expected_keys = [(i, j) for i in range(1, levels) for j in range(i)]
    else:
      expected_keys = list(range(levels - 1))
    self.assertEqual(sorted(chains), expected_keys)
    for key in expected_keys:
      target = key[0] if mode == 'per_pair' else key + 1
      zero_all()
      for conv, values in zip(chains[key], saved[key]):
        for w, value in zip(conv.weights, values):
          w.assign(value)
      trace = net.unroll(x)
      for a, b in zip(base[0][0], trace[0][0]):
        self.assertAllEqual(a, b)  # pass 1 has no feedback
      changed = [
          float(tf.reduce_max(tf.abs(a - b))) > 1e-6
          for a, b in zip(base[1][0], trace[1][0])
      ]
      self.assertEqual(changed.index(True), target, 'chain %s' % (key,))

  def test_per_source_chains_parameter_count(self):
    """Parameter counts of the feedback from the widths (3x3 kernels and
    biases; the conv reaching scale k maps widths[k-1] -> widths[k])."""
    widths = (4,) + SMALL[:-1]  # decoder scales 0..L-1 of _small_net
    levels = len(widths)

    def conv(k):
      return 9 * widths[k - 1] * widths[k] + widths[k]

    per_pair = sum(conv(k) for i in range(1, levels) for j in range(i)
                   for k in range(j + 1, i + 1))
    per_source = sum(conv(k) for j in range(levels - 1)
                     for k in range(j + 1, levels))
    x = tf.zeros([1, 16, 16, 3])
    counts = {}
    for mode in ('per_pair', 'per_source'):
      net = ri2itn.RI2ITN(uv_size=16, num_passes=2, channels=SMALL,
                          stem_channels=4, feedback_chains=mode)
      net(x)
      counts[mode] = net.feedbacks[0].count_params()
    self.assertEqual(counts, {'per_pair': per_pair, 'per_source': per_source})
    self.assertLess(per_source, per_pair)
    with self.assertRaisesRegex(ValueError, 'per_pair'):
      ri2itn.RI2ITN(uv_size=16, channels=SMALL, feedback_chains='per_target')

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
