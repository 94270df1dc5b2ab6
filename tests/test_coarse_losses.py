"""Coarse losses (coarse/losses.py) on hand-checkable inputs."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from coarse import coefficients
from coarse import face_reconstruction
from coarse import losses


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


if __name__ == '__main__':
  tf.test.main()
