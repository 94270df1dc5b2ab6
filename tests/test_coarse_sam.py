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
from renderer import camera
from renderer import mesh_renderer
from tests import test_utils

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
    """Render b * K + p is face b at pose p, centred: compared with renders
    built without coarse/sam.py, each face rendered alone at the config's
    pose and shifted by the offset of its rendered silhouette's bounding box
    from the image centre (measured on that render)."""
    size = 64
    batch = 2
    augment = sam.SelfAugment(self.model, self.net, 'our', size)
    k = augment.num_poses
    rng = np.random.RandomState(2)
    vec = rng.normal(0.0, 0.5, [batch, coefficients.vector_size(self.model)])
    coeffs = coefficients.Coefficients.from_vector(self.model,
                                                   vec.astype(np.float32))
    renders = augment.render(coeffs).numpy()
    self.assertEqual(renders.shape, (batch * k, size, size, 3))
    m = self.model
    poses = sam_poses.pose_vectors('our', size, 'none')
    px_to_pose = camera.REFERENCE_SIZE / size  # tx, ty units per pixel

    def box_centre(image):
      rows, cols = np.nonzero(np.any(image > 0, -1))
      return ((cols.min() + cols.max() + 1) / 2.0,
              (rows.min() + rows.max() + 1) / 2.0)

    expected = []
    for b in range(batch):
      verts = m.vertices(coeffs.identity[b:b + 1], coeffs.expression[b:b + 1])
      albedo = m.albedo(coeffs.texture[b:b + 1])
      for p in range(k):
        pose = poses[p:p + 1].copy()
        plain = face_reconstruction.render_faces(
            m, verts, albedo, pose, coeffs.lighting[b:b + 1], size)
        cx, cy = box_centre(plain.image[0].numpy())
        # +tx moves the face right, +ty up (screen y points down).
        pose[0, 3] -= (cx - size / 2.0) * px_to_pose
        pose[0, 4] += (cy - size / 2.0) * px_to_pose
        expected.append(face_reconstruction.render_faces(
            m, verts, albedo, pose, coeffs.lighting[b:b + 1],
            size).image[0].numpy())
    expected = np.stack(expected)
    # [expected, render] mean absolute pixel differences.
    dist = np.abs(expected[:, None] - renders[None]).mean(axis=(2, 3, 4))
    for q in range(batch * k):
      self.assertLess(dist[q, q], 0.02, 'image %d pose %d' % divmod(q, k))
      # And no other face or pose is as close: the order is image-major.
      others = np.delete(dist[q], q)
      self.assertLess(dist[q, q], 0.5 * others.min(),
                      'image %d pose %d' % divmod(q, k))
      cx, cy = box_centre(renders[q])
      self.assertAllClose([cx, cy], [size / 2.0] * 2, atol=1.0)

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

  def test_render_gradients_flag_adds_exactly_the_path_through_renders(self):
    """Off: the gradient with the renders as constants. On: that plus the
    chain rule through the renders back into the first pass (Eq. 1, 3). The
    two parts are computed here with separate tapes, not through forward."""
    batch = 2
    images = _images(batch, seed=7)
    model = self.model
    variables = self.net.trainable_variables
    rng = np.random.RandomState(8)
    w_id = tf.constant(rng.normal(size=[1, model.num_id]), tf.float32)
    w_exp = tf.constant(rng.normal(size=[1, model.num_exp]), tf.float32)

    def objective(coeffs):
      return (tf.reduce_sum(coeffs.identity * w_id) +
              tf.reduce_sum(coeffs.expression * w_exp))

    def forward_grads(render_gradients):
      augment = sam.SelfAugment(model, self.net, 'our', SIZE, reduce='mean',
                                render_gradients=render_gradients)
      with tf.GradientTape() as tape:
        out = augment.forward(images, training=False)
        loss = objective(out.coefficients)
      return tape.gradient(loss, variables), augment

    off, augment = forward_grads(False)
    on, _ = forward_grads(True)
    k = augment.num_poses
    with tf.GradientTape() as render_tape:
      first = self.net(images, training=False)
      renders = augment.render(
          coefficients.Coefficients.from_vector(model, first))
    fixed = tf.constant(renders)
    with tf.GradientTape(persistent=True) as tape:
      tape.watch(fixed)
      out = self.net(tf.concat([images, fixed], 0), training=False)
      combined = sam.combine(model, out[:batch],
                             tf.reshape(out[batch:], [batch, k, -1]), 'mean')
      loss = objective(combined)
    direct = tape.gradient(loss, variables)
    through = render_tape.gradient(renders, variables,
                                   output_gradients=tape.gradient(loss, fixed))
    through = [tf.zeros_like(v) if g is None else g
               for g, v in zip(through, variables)]
    # The path through the renders is small next to the direct one for this
    # random network, so compare it with on - off on its own scale.
    t_max = max(float(tf.reduce_max(tf.abs(g))) for g in through)
    d_max = max(float(tf.reduce_max(tf.abs(g))) for g in direct)
    self.assertGreater(t_max, 1e-4 * d_max)  # a path to compare at all
    for v, g_off, g_on, g_d, g_t in zip(variables, off, on, direct, through):
      self.assertAllClose(g_off, g_d, atol=1e-5 * d_max, msg=v.path)
      self.assertAllClose(g_on - g_off, g_t, atol=0.05 * t_max, msg=v.path)

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



class SamTranslationTest(tf.test.TestCase, parameterized.TestCase):
  """Where the SAM renders land in the frame, for face models whose origin
  is the mean shape's bounding-box centre (every model bfm.load returns),
  not BFM 2009's raw origin behind the face that the paper's translations
  were printed for."""

  SIZE = 64

  def _model(self, name):
    if name == 'sfm':
      test_utils.require_data('sfm', 'sfm_shape_3448.bin')
      return bfm.load('sfm', data_dir=test_utils.data_dir())
    return bfm.load(name)

  def _mean_face(self, model):
    coeffs = coefficients.Coefficients.zeros(model, 1)
    return coeffs, model.vertices(coeffs.identity, coeffs.expression)

  @staticmethod
  def _inside(screen, size):
    """[K] fraction of projected vertices [K,N,2+] inside the frame."""
    xy = np.asarray(screen)[..., :2]
    return np.mean(np.all((xy >= 0) & (xy < size), -1), -1)

  @parameterized.product(name=['synthetic', 'sfm'], config=['our', 'our_star'])
  def test_paper_translations(self, name, config):
    """--sam_translation=paper: the printed translations, Chen20 pixels of a
    300-px screen, shift each face by tx / 300 of the image width (ty up),
    and the renders are those faces. With the origin at the face's centre
    the shift moves the rotated face off-centre: it stays mostly, not fully,
    in the frame (README: coarse stage)."""
    size = self.SIZE
    model = self._model(name)
    coeffs, verts = self._mean_face(model)
    augment = sam.SelfAugment(model, None, config, size, translation='paper')
    renders = augment.render(coeffs).numpy()
    k = augment.num_poses
    printed = sam_poses.get(config)  # tx, ty in Chen20 screen pixels
    plain = sam_poses.pose_vectors(config, size, 'none')
    shifted = sam_poses.pose_vectors(config, size, 'paper')
    verts_k = tf.repeat(verts, k, axis=0)
    at_plain = camera.orthographic_project(verts_k, plain, (size, size))
    at_paper = camera.orthographic_project(verts_k, shifted, (size, size))
    shift = np.mean(np.asarray(at_paper - at_plain)[..., :2], axis=1)
    self.assertAllClose(shift[:, 0], printed[:, 3] * size / 300.0, atol=0.01)
    self.assertAllClose(shift[:, 1], -printed[:, 4] * size / 300.0, atol=0.01)
    direct = face_reconstruction.render_faces(
        model, verts_k, tf.tile(model.albedo(coeffs.texture), [k, 1, 1]),
        shifted, tf.tile(coeffs.lighting, [k, 1]), size).image.numpy()
    self.assertAllClose(renders, direct, atol=1e-4)
    inside = self._inside(at_paper, size)
    covered = np.mean(np.any(renders > 0, -1), axis=(1, 2))
    # Every face mostly in the frame (README's figures: at least 64% of the
    # vertices of the built-in face, 74% of SFM's, for our_star), and visible.
    self.assertGreater(inside.min(), 0.6)
    self.assertGreater(covered.min(), 0.05)
    # The off-centre faces of the printed translations reach the border.
    self.assertLess(inside[np.abs(printed[:, 3]) > 0].max(), 1.0)

  @parameterized.product(name=['synthetic', 'sfm'], config=['our', 'our_star'])
  def test_recentred_faces_are_whole_and_centred(self, name, config):
    """--sam_translation=recentre (default): every rotated face entirely in
    the frame, its rendered silhouette centred, whatever the model's
    origin."""
    size = self.SIZE
    model = self._model(name)
    coeffs, _ = self._mean_face(model)
    augment = sam.SelfAugment(model, None, config, size)
    self.assertEqual(augment.translation, 'recentre')
    renders = augment.render(coeffs).numpy()
    masks = np.any(renders > 0, -1)
    for q, mask in enumerate(masks):
      rows, cols = np.nonzero(mask)
      self.assertGreater(rows.size, 0.05 * size * size, 'pose %d' % q)
      self.assertFalse(mask[0].any() or mask[-1].any() or mask[:, 0].any() or
                       mask[:, -1].any(), 'pose %d touches the border' % q)
      centre = [(cols.min() + cols.max() + 1) / 2.0,
                (rows.min() + rows.max() + 1) / 2.0]
      self.assertAllClose(centre, [size / 2.0] * 2, atol=1.0)

if __name__ == '__main__':
  tf.test.main()
