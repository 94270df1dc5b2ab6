"""Coarse losses (coarse/losses.py) on hand-checkable inputs."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

import bfm
from coarse import coefficients
from coarse import face_reconstruction
from coarse import losses
from preprocess import synthetic_data
from renderer import camera
from tests import test_utils


def _face(image, mask, photo_mask, landmarks):
  """A CoarseFace holding only what the losses read."""
  return face_reconstruction.CoarseFace(
      vertices=None, screen_vertices=None, albedo=None, colors=None,
      normals=None, image=tf.constant(image, tf.float32),
      mask=tf.constant(mask, tf.float32), landmarks2d=tf.constant(
          landmarks, tf.float32), photo_mask=tf.constant(photo_mask,
                                                         tf.float32))


class PhotoLossTest(tf.test.TestCase):

  def test_l21_over_masked_pixels_in_255_units(self):
    images = np.zeros([1, 2, 2, 3], np.float32)
    renders = np.zeros([1, 2, 2, 3], np.float32)
    renders[0, 0, 0] = [3 / 255.0, 4 / 255.0, 0.0]  # distance 5
    renders[0, 1, 1] = [1.0, 1.0, 1.0]  # huge, but masked out
    mask = np.zeros([1, 2, 2, 1], np.float32)
    mask[0, 0, 0] = mask[0, 0, 1] = 1.0  # one wrong, one exact pixel
    loss = losses.photo_loss(images, renders, mask)
    self.assertAllClose(loss, (5.0 + 0.0) / 2.0, atol=1e-3)

  def test_batch_mean_of_per_image_means(self):
    images = np.zeros([2, 1, 2, 3], np.float32)
    renders = np.zeros([2, 1, 2, 3], np.float32)
    renders[0, 0, 0, 0] = 6 / 255.0  # image 0: one pixel off by 6
    renders[1, 0, :, 2] = 2 / 255.0  # image 1: both pixels off by 2
    mask = np.ones([2, 1, 2, 1], np.float32)
    # image 0: (6 + 0) / 2 = 3; image 1: (2 + 2) / 2 = 2; mean 2.5.
    self.assertAllClose(losses.photo_loss(images, renders, mask), 2.5,
                        atol=1e-3)

  def test_empty_mask_gives_zero_not_nan(self):
    z = np.zeros([1, 2, 2, 3], np.float32)
    loss = losses.photo_loss(z, z + 0.5, np.zeros([1, 2, 2, 1], np.float32))
    self.assertAllClose(loss, 0.0)


class LandmarkLossTest(tf.test.TestCase, parameterized.TestCase):

  def test_weights(self):
    w = losses.landmark_weights()
    self.assertEqual(w.shape, (68,))
    self.assertEqual(w[0], 1.0)
    self.assertEqual(w[8], 2.0)  # chin
    self.assertEqual(w[36], 5.0)  # eye corner
    self.assertEqual(w[30], 5.0)  # nose tip
    self.assertEqual(w[62], 10.0)  # inner upper lip centre
    # Chen20's 15 on one upper + one lower lid point = 7.5 on each of the
    # four iBUG lid points per eye.
    self.assertEqual(w[[37, 38, 40, 41]].sum(), 30.0)

  @parameterized.parameters((0, 300, 1.0), (0, 150, 4.0), (51, 300, 10.0),
                            (51, 600, 2.5))
  def test_one_landmark_off_by_one_pixel(self, index, width, weighted_sq):
    gt = np.zeros([1, 68, 2], np.float32)
    pred = gt.copy()
    pred[0, index, 0] = 1.0
    # mean over 68 x 2 values of w * (err * 300 / width)^2.
    loss = losses.landmark_loss(gt, pred, width)
    self.assertAllClose(loss, weighted_sq / 136.0)

  def test_custom_weights_and_symmetry(self):
    gt = np.zeros([2, 68, 2], np.float32)
    pred = np.full([2, 68, 2], 2.0, np.float32)
    ones = np.ones([68], np.float32)
    self.assertAllClose(losses.landmark_loss(gt, pred, 300, ones), 4.0)
    self.assertAllClose(losses.landmark_loss(pred, gt, 300, ones), 4.0)


class OtherTermsTest(tf.test.TestCase):

  def test_identity_loss_is_mean_squared_feature_difference(self):
    a = np.array([[1.0, 2.0], [0.0, 0.0]], np.float32)
    b = np.array([[1.0, 0.0], [1.0, 0.0]], np.float32)
    self.assertAllClose(losses.identity_loss(a, b), (0 + 4 + 1 + 0) / 4.0)

  def test_coefficient_prior(self):
    self.assertAllClose(
        losses.coefficient_prior(tf.constant([[1.0, -3.0], [0.0, 2.0]])),
        (1 + 9 + 0 + 4) / 4.0)
    self.assertAllClose(losses.coefficient_prior(tf.zeros([3, 0])), 0.0)

  def test_composite(self):
    render = np.ones([1, 1, 2, 3], np.float32)
    image = np.zeros([1, 1, 2, 3], np.float32)
    mask = np.array([1.0, 0.0], np.float32).reshape([1, 1, 2, 1])
    out = losses.composite(render, mask, image)
    self.assertAllClose(out[0, 0, :, 0], [1.0, 0.0])


class CoarseLossesTest(tf.test.TestCase, parameterized.TestCase):

  def _inputs(self):
    images = np.zeros([1, 2, 2, 3], np.float32)
    render = np.zeros([1, 2, 2, 3], np.float32)
    render[0, 0, 0] = [3 / 255.0, 4 / 255.0, 0.0]
    ones = np.ones([1, 2, 2, 1], np.float32)
    lm = np.zeros([1, 68, 2], np.float32)
    pred_lm = lm.copy()
    pred_lm[0, 0, 1] = 1.0 / 150.0  # 1/150 px in a 2-px image = 1 px at 300
    face = _face(render, ones, ones, pred_lm)
    coeffs = coefficients.Coefficients(
        identity=tf.constant([[1.0, 1.0]]), expression=tf.constant([[2.0]]),
        texture=tf.constant([[0.0, 3.0]]), pose=tf.zeros([1, 6]),
        lighting=tf.zeros([1, 27]))
    return images, lm, face, coeffs

  def test_terms_and_weighted_total(self):
    images, lm, face, coeffs = self._inputs()
    weights = dict(photo=2.0, landmark=10.0, id=0.8, shape_prior=3.0,
                   exp_prior=10.0, tex_prior=1.0)
    total, terms = losses.coarse_losses(images, lm, None, face, coeffs,
                                        weights)
    self.assertNotIn('id', terms)  # no identity network
    expect = dict(photo=5.0 / 4.0, landmark=1.0 / 136.0, shape_prior=1.0,
                  exp_prior=4.0, tex_prior=4.5)
    for name, value in expect.items():
      self.assertAllClose(terms[name], value, atol=1e-3, msg=name)
    self.assertAllClose(
        total, sum(weights[k] * v for k, v in expect.items()), atol=1e-2)

  def test_skin_mask_restricts_the_photo_term(self):
    images, lm, face, coeffs = self._inputs()
    skin = np.zeros([1, 2, 2, 1], np.float32)
    skin[0, 0, 0] = skin[0, 1, 1] = 1.0
    _, terms = losses.coarse_losses(images, lm, skin, face, coeffs,
                                    dict(photo=1, landmark=1, shape_prior=1,
                                         exp_prior=1, tex_prior=1))
    self.assertAllClose(terms['photo'], 5.0 / 2.0, atol=1e-3)

  @parameterized.parameters(0.0, 0.5)
  def test_identity_term_uses_the_composite(self, id_weight):
    images, lm, face, coeffs = self._inputs()
    seen = []

    def features(batch):
      seen.append(batch)
      return tf.reshape(batch, [tf.shape(batch)[0], -1]) * 255.0

    weights = dict(photo=0, landmark=0, id=id_weight, shape_prior=0,
                   exp_prior=0, tex_prior=0)
    total, terms = losses.coarse_losses(images, lm, None, face, coeffs,
                                        weights, id_features=features)
    if not id_weight:
      self.assertNotIn('id', terms)
      self.assertEmpty(seen)
      return
    # One call on [inputs; composites]; features differ by (3, 4) in one of
    # the 12 values: mean (9 + 16) / 12.
    self.assertLen(seen, 1)
    self.assertEqual(seen[0].shape[0], 2)
    self.assertAllClose(terms['id'], 25.0 / 12.0, atol=1e-3)
    self.assertAllClose(total, id_weight * 25.0 / 12.0, atol=1e-3)


def _contour_inputs(width=300.0):
  """17 visible contour landmarks exactly on their fixed vertices, and 4
  model vertices of which 2 are on the outline."""
  gt = np.zeros([1, 17, 2], np.float32)
  gt[0, :, 0] = np.arange(17) * 10.0 + 20.0
  gt[0, :, 1] = 100.0
  fixed = gt.copy()
  facing = np.ones([1, 17], np.float32)
  screen = np.array([[[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]],
                    np.float32)
  outline = np.array([[1.0, 1.0, 0.0, 0.0]], np.float32)
  return gt, fixed, facing, screen, outline, width


class ContourLandmarkLossTest(tf.test.TestCase, parameterized.TestCase):

  def _loss(self, gt, fixed, facing, screen, outline, width):
    return float(losses.contour_landmark_loss(gt, fixed, facing, screen,
                                              outline, width))

  def _screen_gradient(self, gt, fixed, facing, screen, outline, width):
    """[B,N,2] gradient of the loss with respect to the screen vertices."""
    screen_t = tf.constant(screen)
    with tf.GradientTape() as tape:
      tape.watch(screen_t)
      loss = losses.contour_landmark_loss(gt, fixed, facing, screen_t,
                                          outline, width)
    return tape.gradient(loss, screen_t).numpy()

  def test_zero_when_the_contour_points_coincide(self):
    self.assertEqual(self._loss(*_contour_inputs()), 0.0)
    # A hidden landmark with an outline vertex exactly on it.
    gt, fixed, facing, screen, outline, width = _contour_inputs()
    facing[0, 4] = -0.3
    fixed[0, 4] += 50.0  # the hidden fixed vertex is not what counts
    screen[0, 1] = gt[0, 4]
    self.assertEqual(self._loss(gt, fixed, facing, screen, outline, width),
                     0.0)

  @parameterized.parameters((300.0, 1.0), (150.0, 4.0))
  def test_visible_landmark_mean_squared_error(self, width, unit):
    gt, fixed, facing, screen, outline, _ = _contour_inputs()
    fixed[0, 3] += [3.0, 4.0]  # 25 px^2 over x and y: mean 12.5
    self.assertAllClose(
        self._loss(gt, fixed, facing, screen, outline, width),
        12.5 * unit / 17.0)

  def test_hidden_landmark_slides_to_the_nearest_outline_vertex(self):
    gt, fixed, facing, screen, outline, width = _contour_inputs()
    facing[0, 2] = -0.5  # landmark 2, weight 1
    target = gt[0, 2]
    screen[0, 0] = target + [1.0, 0.0]  # outline, 1 px away
    screen[0, 1] = target + [0.0, 2.0]  # outline, 2 px away
    screen[0, 2] = target  # exactly there, but not on the outline
    screen[0, 3] = target + [0.5, 0.0]  # not on the outline
    self.assertAllClose(
        self._loss(gt, fixed, facing, screen, outline, width), 1.0 / 17.0)
    # The gradient moves only the chosen outline vertex, towards the point.
    grad = self._screen_gradient(gt, fixed, facing, screen, outline,
                                 width)[0]
    self.assertAllClose(grad[0], [2.0 / 17.0, 0.0])
    self.assertAllClose(grad[1:], np.zeros([3, 2]))

  def test_hidden_weights_and_cap(self):
    gt, fixed, facing, screen, outline, width = _contour_inputs()
    facing[0, 4] = -1.0  # Chen20 weight 5
    screen[0, 0] = gt[0, 4] + [1.0, 0.0]
    screen[0, 1] = gt[0, 4] + [30.0, 0.0]
    self.assertAllClose(
        self._loss(gt, fixed, facing, screen, outline, width), 5.0 / 17.0)
    # 2 px away: 4 x 5 = 20, capped at 7 px of a 224-px image in 300-px
    # units (9.375), with no gradient beyond the cap.
    screen[0, 0] = gt[0, 4] + [2.0, 0.0]
    self.assertAllClose(
        self._loss(gt, fixed, facing, screen, outline, width), 9.375 / 17.0)
    self.assertAllClose(
        self._screen_gradient(gt, fixed, facing, screen, outline, width),
        np.zeros([1, 4, 2]))
    self.assertAllEqual(losses.contour_landmark_weights()[[0, 1, 4, 8, 16]],
                        [1, 5, 5, 5, 1])


class SilhouetteVerticesTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters((0.0, 0.0), (0.7, 0.3), (-1.2, 2.0))
  def test_outline_of_a_sphere(self, pitch, yaw):
    """Under an orthographic camera the outline of a sphere is the great
    circle at its centre's depth: every outline vertex lies within one edge
    of it, and the outline goes all the way round."""
    vertices, triangles = test_utils.icosphere(radius=40.0, subdivisions=3)
    corners = vertices[triangles]  # [T,3,3]
    edge = float(np.max(np.linalg.norm(
        corners - np.roll(corners, 1, axis=1), axis=-1)))
    pose = tf.constant([[pitch, yaw, 0.4, 0.0, 0.0, 0.0]], tf.float32)
    # 224 px, log_scale 0: 1 px per mm, centre (112, 112), depth 0 there.
    screen = camera.orthographic_project(
        tf.constant(vertices[None], tf.float32), pose, (224, 224)).numpy()
    outline = face_reconstruction.silhouette_vertices(
        triangles, screen).numpy()[0] > 0.5
    depth = screen[0, :, 2]
    self.assertGreater(outline.sum(), 30)
    self.assertLess(np.abs(depth[outline]).max(), edge)
    self.assertGreater(np.abs(depth[~outline]).max(), 30.0)
    xy = screen[0, outline, :2] - 112.0
    angles = np.sort(np.arctan2(xy[:, 1], xy[:, 0]))
    gaps = np.diff(np.concatenate([angles, angles[:1] + 2 * np.pi]))
    self.assertLess(gaps.max(), 2.0 * edge / 40.0)

  @parameterized.parameters(30.0, 60.0, -50.0)
  def test_hidden_jaw_slides_onto_the_rendered_silhouette(self, yaw):
    """At a turned pose each hidden fixed jaw vertex is far from the face's
    outline in the image; the outline vertex the loss picks is within a
    pixel of it. The outline in the image is read from the rasterized mask
    (the outermost covered pixel of the row on the turned-away side), not
    from silhouette_vertices."""
    test_utils.require_rasterizer()
    size = 128
    model = bfm.load('synthetic')
    coeffs = coefficients.Coefficients.zeros(model, 1).numpy()
    coeffs.pose[:, 1] = np.deg2rad(yaw)
    coeffs.pose[:, 5] = np.log(0.5)
    face = face_reconstruction.reconstruct(model, coeffs, size)
    screen = face.screen_vertices.numpy()[0]
    mask = face.mask.numpy()[0, ..., 0] > 0.5
    fixed = np.asarray(model.landmarks68[:17])
    hidden = np.nonzero(face.normals.numpy()[0, fixed, 2] <= 0.0)[0]
    self.assertGreaterEqual(len(hidden), 5)
    gt = screen[fixed, :2].copy()  # visible: on their fixed vertices
    for k in hidden:
      row = int(screen[fixed[k], 1])
      cols = np.nonzero(mask[row])[0]
      # Positive yaw turns the face to image right: its far side is there.
      edge_x = cols.max() + 1.0 if yaw > 0 else float(cols.min())
      gt[k] = [edge_x, row + 0.5]
      self.assertGreater(np.linalg.norm(gt[k] - screen[fixed[k], :2]), 3.0)
    outline = face_reconstruction.silhouette_vertices(
        model.triangles, face.screen_vertices)
    index, dist2 = losses.nearest_outline_vertex(
        gt[None], face.screen_vertices[..., :2], outline)
    index, dist2 = index.numpy()[0], dist2.numpy()[0]
    for k in hidden:
      # The chosen vertex is where the image's outline is, within a pixel.
      self.assertLess(np.linalg.norm(screen[index[k], :2] - gt[k]), 1.2)
      self.assertAllClose(dist2[k], np.sum(np.square(screen[index[k], :2] -
                                                     gt[k])), rtol=1e-4)
    # The term: visible ones on their fixed vertices (0), hidden ones at
    # the chosen vertex's distance x weight, capped.
    landmarks = np.zeros([1, 68, 2], np.float32)
    landmarks[0, :17] = gt
    per_px2 = (300.0 / size)**2
    expected = np.zeros([17])
    expected[hidden] = np.minimum(
        dist2[hidden] * per_px2 * losses.contour_landmark_weights()[hidden],
        7.0 / 224.0 * 300.0)
    self.assertAllClose(
        losses.contour_landmark_term(model, face, landmarks, size),
        expected.mean(), rtol=1e-4)
    # 3 px outwards on every hidden landmark: the term grows.
    moved = landmarks.copy()
    moved[0, hidden, 0] += 3.0 if yaw > 0 else -3.0
    self.assertGreater(
        float(losses.contour_landmark_term(model, face, moved, size)),
        float(expected.mean()) + 0.5)


class ContourTermInCoarseLossesTest(tf.test.TestCase, parameterized.TestCase):

  def _face(self):
    test_utils.require_rasterizer()
    model = bfm.load('synthetic')
    coeffs = coefficients.Coefficients.zeros(model, 2).numpy()
    coeffs.pose[:, 1] = np.deg2rad([40.0, -20.0])
    coeffs.pose[:, 5] = np.log(0.5)
    face = face_reconstruction.reconstruct(model, coeffs, 64)
    landmarks = face.landmarks2d.numpy() + 1.5
    images = np.zeros([2, 64, 64, 3], np.float32)
    return model, face, coeffs, landmarks, images

  @parameterized.parameters(0.5, 2.0)
  def test_weight_scales_the_term(self, weight):
    model, face, coeffs, landmarks, images = self._face()
    weights = dict(photo=0.0, landmark=0.0, shape_prior=0.0, exp_prior=0.0,
                   tex_prior=0.0, contour_landmark=weight)
    total, terms = losses.coarse_losses(images, landmarks, None, face, coeffs,
                                        weights, contour_model=model)
    expected = losses.contour_landmark_term(model, face, landmarks, 64)
    self.assertGreater(float(expected), 0.1)
    self.assertAllClose(terms['contour_landmark'], expected)
    self.assertAllClose(total, weight * float(expected), rtol=1e-5)

  def test_off_without_the_model_or_weight(self):
    model, face, coeffs, landmarks, images = self._face()
    weights = dict(losses.DEFAULT_WEIGHTS)
    self.assertEqual(weights['contour_landmark'], 0.5)  # Chen20's
    _, terms = losses.coarse_losses(images, landmarks, None, face, coeffs,
                                    weights)
    self.assertNotIn('contour_landmark', terms)
    weights['contour_landmark'] = 0.0
    _, terms = losses.coarse_losses(images, landmarks, None, face, coeffs,
                                    weights, contour_model=model)
    self.assertNotIn('contour_landmark', terms)


class VertexLossTest(tf.test.TestCase, parameterized.TestCase):

  def test_mean_squared_distance_in_mm2(self):
    truth = np.zeros([2, 4, 3], np.float32)
    pred = truth.copy()
    pred[0, 1] = [3.0, 4.0, 0.0]  # 5 mm off: 25 mm^2 on 1 of 8 vertices
    pred[1, :] = [0.0, 0.0, 2.0]  # 2 mm off everywhere: 4 mm^2 on 4
    self.assertAllClose(losses.vertex_loss(pred, truth),
                        (25.0 + 4 * 4.0) / 8.0)

  @parameterized.parameters(0.5, 2.0)
  def test_term_of_the_predicted_mesh(self, weight):
    """The term compares the face's model-space vertices (model.vertices of
    the predicted coefficients) with the given meshes: zero at the true
    coefficients, the mean squared offset at the mean face."""
    model = bfm.load('synthetic')
    rng = np.random.RandomState(0)
    coeffs = coefficients.Coefficients.zeros(model, 2).numpy()
    coeffs.identity[:] = rng.normal(size=coeffs.identity.shape)
    coeffs.expression[:] = rng.normal(size=coeffs.expression.shape)
    truth = np.asarray(model.vertices(coeffs.identity, coeffs.expression))
    zero = coefficients.Coefficients.zeros(model, 2).numpy()

    def face_of(c):
      return _face(np.zeros([2, 2, 2, 3]), np.ones([2, 2, 2, 1]),
                   np.ones([2, 2, 2, 1]), np.zeros([2, 68, 2]))._replace(
                       vertices=model.vertices(c.identity, c.expression))

    weights = dict(photo=0.0, landmark=0.0, shape_prior=0.0, exp_prior=0.0,
                   tex_prior=0.0, vertex=weight)
    images, lm = np.zeros([2, 2, 2, 3], np.float32), np.zeros([2, 68, 2])
    _, terms = losses.coarse_losses(images, lm, None, face_of(coeffs), coeffs,
                                    weights, true_shapes=truth)
    self.assertAllClose(terms['vertex'], 0.0, atol=1e-6)
    total, terms = losses.coarse_losses(images, lm, None, face_of(zero), zero,
                                        weights, true_shapes=truth)
    mean = np.asarray(model.mean_shape)[None]
    expected = np.mean(np.sum((truth - mean)**2, -1))
    self.assertGreater(expected, 1.0)
    self.assertAllClose(terms['vertex'], expected, rtol=1e-4)
    self.assertAllClose(total, weight * expected, rtol=1e-4)

  def test_off_by_default_and_needs_the_meshes(self):
    self.assertEqual(losses.DEFAULT_WEIGHTS['vertex'], 0.0)
    model = bfm.load('synthetic')
    coeffs = coefficients.Coefficients.zeros(model, 1).numpy()
    face = _face(np.zeros([1, 2, 2, 3]), np.ones([1, 2, 2, 1]),
                 np.ones([1, 2, 2, 1]), np.zeros([1, 68, 2]))
    images, lm = np.zeros([1, 2, 2, 3], np.float32), np.zeros([1, 68, 2])
    _, terms = losses.coarse_losses(images, lm, None, face, coeffs,
                                    dict(losses.DEFAULT_WEIGHTS))
    self.assertNotIn('vertex', terms)
    with self.assertRaisesRegex(ValueError, 'true_shapes'):
      losses.coarse_losses(images, lm, None, face, coeffs,
                           dict(losses.DEFAULT_WEIGHTS, vertex=1.0))


class ContourTermAtKnownFacesTest(tf.test.TestCase, parameterized.TestCase):
  """On renders of known faces (landmarks of the truth, the synthetic sets'
  convention) the contour term is smallest at the true identity.

  Regression: SFM's jaw candidates were its whole right / left contour list
  for every landmark, so marching put landmarks 0-7 (9-16) on one vertex;
  the contour term then matched that one point to 8 distinct fixed
  vertices, was ~2,000 at the truth and lower along random identity
  directions (issue 17: identity rms 3.3 in the benchmark's pre-training).
  """

  def _model(self, name):
    test_utils.require_rasterizer()
    if name != 'synthetic':
      test_utils.require_data(name)
    return bfm.load(name)

  def _term(self, model, coeffs, identity, gt):
    coeffs = coeffs._replace(identity=identity.astype(np.float32))
    face = face_reconstruction.reconstruct(model, coeffs, 64)
    return float(losses.contour_landmark_term(model, face, gt, 64))

  # ICT's residual at the truth is larger (~113 against ~20: its marched
  # landmarks 7 and 9 sit up to 13 px of 64 from their fixed vertices on the
  # near side of a turned face, which the term's visible branch compares),
  # so random directions are checked to within 1% there.
  @parameterized.parameters(('synthetic', 0.0), ('sfm', 0.0), ('ict', 0.01))
  def test_minimum_at_the_true_identity(self, name, tolerance):
    model = self._model(name)
    rng = np.random.RandomState(3)
    coeffs = synthetic_data.sample_coefficients(model, 12, rng, 'celeba')
    truth = face_reconstruction.reconstruct(model, coeffs, 64)
    jaw = face_reconstruction.landmark_indices(
        model, truth.screen_vertices).numpy()[:, :17]
    # 17 distinct jaw vertices per face (one per landmark).
    self.assertAllEqual([len(set(row)) for row in jaw], [17] * 12)
    gt = truth.landmarks2d.numpy()
    ident = coeffs.identity
    at_truth = self._term(model, coeffs, ident, gt)
    for scale in (0.0, 0.5, 1.5, 2.0, 3.0):
      self.assertLess(at_truth, self._term(model, coeffs, scale * ident, gt),
                      msg='identity x %g' % scale)
    for _ in range(3):
      u = rng.normal(size=ident.shape)
      u *= np.linalg.norm(ident, axis=1, keepdims=True) / np.linalg.norm(
          u, axis=1, keepdims=True)
      for t in (-0.5, 0.5):
        self.assertLess(at_truth, (1.0 + tolerance) *
                        self._term(model, coeffs, ident + t * u, gt))


if __name__ == '__main__':
  tf.test.main()
