"""The self-augment mechanism (coarse/sam.py) on a tiny VGG at 32 px."""

from unittest import mock

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

import bfm
from coarse import coarse_model
from coarse import coefficients
from coarse import face_reconstruction
from coarse import losses
from coarse import sam
from coarse import sam_poses
from renderer import mesh_renderer

SIZE = 32
WIDTH = 1.0 / 16


def _model():
  return bfm.load('synthetic')


def _images(batch, seed=0):
  rng = np.random.RandomState(seed)
  return tf.constant(rng.uniform(0.0, 1.0, [batch, SIZE, SIZE, 3]),
                     tf.float32)


class RecordingNetwork:
  """Wraps a network and records the batch size of every call."""

  def __init__(self, net):
    self.net = net
    self.batch_sizes = []

  def __call__(self, images, training=False):
    self.batch_sizes.append(int(images.shape[0]))
    return self.net(images, training=training)


class CombineTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters('sum', 'mean')
  def test_matches_numpy(self, reduce):
    model = _model()
    dim = coefficients.vector_size(model)
    rng = np.random.RandomState(3)
    b, k = 3, 4
    first = rng.normal(size=[b, dim]).astype(np.float32)
    augmented = rng.normal(size=[b, k, dim]).astype(np.float32)
    out = sam.combine(model, tf.constant(first), tf.constant(augmented),
                      reduce)
    every = np.concatenate([first[:, None], augmented], 1)  # [B, 1+K, D]
    combined = every.sum(1) if reduce == 'sum' else every.mean(1)
    want = coefficients.Coefficients.from_vector(model, combined)
    own = coefficients.Coefficients.from_vector(model, first)
    # Eq. 4-5: identity and expression combine over the 1 + K views;
    # texture, pose and lighting are the input image's own.
    self.assertAllClose(out.identity, want.identity, atol=1e-5)
    self.assertAllClose(out.expression, want.expression, atol=1e-5)
    self.assertAllClose(out.texture, own.texture)
    self.assertAllClose(out.pose, own.pose)
    self.assertAllClose(out.lighting, own.lighting)

  def test_no_poses_returns_the_first_prediction(self):
    model = _model()
    dim = coefficients.vector_size(model)
    first = np.arange(2 * dim, dtype=np.float32).reshape(2, dim)
    out = sam.combine(model, first, tf.zeros([2, 0, dim]))
    self.assertAllEqual(out.to_vector(), first)

  def test_bad_reduce(self):
    model = _model()
    dim = coefficients.vector_size(model)
    with self.assertRaisesRegex(ValueError, 'sum or mean'):
      sam.combine(model, tf.zeros([1, dim]), tf.zeros([1, 1, dim]), 'max')


class SelfAugmentTest(tf.test.TestCase, parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.model = _model()
    tf.keras.utils.set_random_seed(1)
    cls.net = coarse_model.CoarseModel(cls.model, SIZE, WIDTH)
    cls.net(tf.zeros([1, SIZE, SIZE, 3]))

  @parameterized.parameters(('our_star', 2), ('our', 3), ('none', 2))
  def test_network_batch_is_b_times_1_plus_k(self, config, batch):
    k = sam_poses.num_poses(config)
    net = RecordingNetwork(self.net)
    augment = sam.SelfAugment(self.model, net, config, SIZE)
    out = augment.forward(_images(batch))
    self.assertEqual(int(out.network_batch_size), batch * (1 + k))
    self.assertEqual(out.renders.shape, (batch * k, SIZE, SIZE, 3))
    self.assertEqual(out.face.image.shape, (batch, SIZE, SIZE, 3))
    if k:
      # Eq. 1 on the inputs, then ONE pass on inputs + all renders.
      self.assertEqual(net.batch_sizes, [batch, batch * (1 + k)])
      # The renders show faces (not empty images).
      covered = tf.reduce_mean(tf.cast(out.renders > 0, tf.float32), [1, 2, 3])
      self.assertGreater(float(tf.reduce_min(covered)), 0.05)
    else:
      self.assertEqual(net.batch_sizes, [batch])

  @parameterized.parameters('sum', 'mean')
  def test_final_coefficients_combine_the_combined_pass(self, reduce):
    batch = 2
    augment = sam.SelfAugment(self.model, self.net, 'our', SIZE, reduce)
    images = _images(batch, seed=5)
    out = augment.forward(images)
    k = augment.num_poses
    # Re-run the network on the same concatenated batch and combine in NumPy.
    vec = self.net(tf.concat([images, out.renders], 0)).numpy()
    every = np.concatenate(
        [vec[:batch, None], vec[batch:].reshape(batch, k, -1)], 1)
    combined = every.sum(1) if reduce == 'sum' else every.mean(1)
    want = coefficients.Coefficients.from_vector(self.model, combined)
    self.assertAllClose(out.coefficients.identity, want.identity, atol=1e-4)
    self.assertAllClose(out.coefficients.expression, want.expression,
                        atol=1e-4)
    self.assertAllClose(out.coefficients.pose, vec[:batch, -33:-27],
                        atol=1e-5)

  @parameterized.parameters(('our_star', 2), ('our', 1), ('none', 2))
  def test_one_batched_rasterizer_call_for_all_sam_renders(self, config,
                                                           batch):
    k = sam_poses.num_poses(config)
    calls = []
    real = mesh_renderer.rasterize_fragments

    def counting(clip_vertices, *args, **kwargs):
      calls.append(int(clip_vertices.shape[0]))
      return real(clip_vertices, *args, **kwargs)

    augment = sam.SelfAugment(self.model, self.net, config, SIZE)
    with mock.patch.object(mesh_renderer, 'rasterize_fragments', counting):
      augment.forward(_images(batch))
      eager = list(calls)
      calls.clear()
      augment.function(_images(batch))  # traced once: same graph calls
    # All B*K SAM renders in one call, then the final faces (Eq. 5).
    want = [batch * k, batch] if k else [batch]
    self.assertEqual(eager, want)
    self.assertEqual(calls, want)

  def _grads(self, render_gradients):
    """Gradients of the coarse losses after one SAM pass (config 'our')."""
    batch = 2
    augment = sam.SelfAugment(self.model, self.net, 'our', SIZE,
                              render_gradients=render_gradients)
    images = _images(batch, seed=7)
    landmarks = tf.constant(
        np.random.RandomState(0).uniform(8, 24, [batch, 68, 2]), tf.float32)
    with tf.GradientTape() as tape:
      out = augment.forward(images)
      total, _ = losses.coarse_losses(
          images, landmarks, None, out.face, out.coefficients,
          dict(photo=1.0, landmark=1.0, shape_prior=1.0, exp_prior=1.0,
               tex_prior=1.0))
    return tape.gradient(total, self.net.trainable_variables)

  def test_renders_are_image_major_and_match_single_renders(self):
    batch = 2
    augment = sam.SelfAugment(self.model, self.net, 'our', SIZE)
    k = augment.num_poses
    rng = np.random.RandomState(2)
    vec = rng.normal(0.0, 0.5, [batch, coefficients.vector_size(self.model)])
    coeffs = coefficients.Coefficients.from_vector(self.model,
                                                   vec.astype(np.float32))
    renders = augment.render(coeffs).numpy()
    self.assertEqual(renders.shape, (batch * k, SIZE, SIZE, 3))
    # Image b, pose p is render b * K + p: the same as rendering that one
    # face at that pose on its own (normals computed there from scratch).
    m = self.model
    poses = sam_poses.pose_vectors('our', SIZE, 'none')
    for b, p in ((0, 0), (0, k - 1), (1, 4)):
      verts = m.vertices(coeffs.identity[b:b + 1], coeffs.expression[b:b + 1])
      pose = augment.recentre(verts, tf.constant(poses[p:p + 1]))
      face = face_reconstruction.render_faces(
          m, verts, m.albedo(coeffs.texture[b:b + 1]), pose,
          coeffs.lighting[b:b + 1], SIZE)
      self.assertAllClose(renders[b * k + p], face.image[0], atol=1e-4,
                          msg='image %d pose %d' % (b, p))
    self.assertNotAllClose(renders[0], renders[1])

  @parameterized.parameters(False, True)
  def test_gradients_reach_the_vgg_weights(self, render_gradients):
    variables = self.net.trainable_variables
    grads = self._grads(render_gradients)
    conv = [(v.name, g) for v, g in zip(variables, grads)
            if 'kernel' in v.name and 'head' not in v.path]
    self.assertLen(conv, 15)  # 13 convolutions + fc6 + fc7
    for name, g in conv:
      self.assertIsNotNone(g, name)
      self.assertGreater(float(tf.reduce_max(tf.abs(g))), 0.0, name)

  def test_render_gradients_flag_changes_the_gradient(self):
    off = self._grads(False)
    on = self._grads(True)
    diff = max(float(tf.reduce_max(tf.abs(a - b))) for a, b in zip(off, on))
    self.assertGreater(diff, 0.0)

  def test_renders_are_data_by_default(self):
    augment = sam.SelfAugment(self.model, self.net, 'our', SIZE)
    images = _images(1)
    with tf.GradientTape() as tape:
      out = augment.forward(images)
      target = tf.reduce_sum(out.renders)
    grads = tape.gradient(target, self.net.trainable_variables)
    self.assertTrue(all(g is None for g in grads))

  def test_bad_translation(self):
    with self.assertRaisesRegex(ValueError, 'recentre or paper'):
      sam.SelfAugment(self.model, self.net, 'our', SIZE, translation='chen')


if __name__ == '__main__':
  tf.test.main()
