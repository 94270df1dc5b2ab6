"""Tests for detail/losses.py (Eq. 12-13, 19-20)."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from detail import losses


def _ramp(size, slope):
  cols = np.arange(size, dtype=np.float32) * slope
  return tf.constant(np.tile(cols[None, None, :, None], [1, size, 1, 1]))


class DetailLossesTest(tf.test.TestCase, parameterized.TestCase):

  def test_photometric_known_difference_and_mask(self):
    images = tf.zeros([2, 8, 8, 3])
    renders = tf.concat([tf.fill([2, 8, 8, 1], 0.1),
                         tf.zeros([2, 8, 8, 2])], -1)
    mask = np.zeros([2, 8, 8, 1], np.float32)
    mask[:, :4] = 1.0
    # Outside the mask the render is wildly different: must not count.
    renders = renders + tf.constant(1.0 - mask) * 5.0
    # Colours are measured in [0, 255] units (Chen20's weights were set for
    # them): 0.1 of the colour range is 25.5.
    self.assertAllClose(losses.photometric_loss(images, renders, mask),
                        25.5,
                        atol=1e-3)
    self.assertAllClose(losses.photometric_loss(images, images, mask),
                        0.0,
                        atol=2e-4)

  def test_photometric_distance_is_the_colour_vector_norm(self):
    # (0.03, 0.04, 0) of the colour range is a 5/100 * 255 = 12.75 distance.
    images = tf.zeros([1, 4, 4, 3])
    renders = tf.constant(np.tile([0.03, 0.04, 0.0], [1, 4, 4, 1]), tf.float32)
    self.assertAllClose(
        losses.photometric_loss(images, renders, tf.ones([1, 4, 4, 1])),
        12.75, atol=1e-3)

  def test_skin_mask_restricts_the_photometric_term(self):
    images = tf.zeros([1, 8, 8, 3])
    # Rows 0-3 differ by 0.2 in red, rows 4-7 by 0.6.
    red = np.zeros([1, 8, 8, 3], np.float32)
    red[:, :4, :, 0] = 0.2
    red[:, 4:, :, 0] = 0.6
    photo_mask = tf.ones([1, 8, 8, 1])
    skin = np.zeros([1, 8, 8, 1], np.float32)
    skin[:, :4] = 1.0
    dn = tf.zeros([1, 4, 4, 3])
    dz = tf.zeros([1, 4, 4, 1])
    uv_mask = tf.ones([4, 4, 1])
    w = dict(losses.DEFAULT_WEIGHTS)
    _, without = losses.total_loss(images, red, photo_mask, dn, dz, uv_mask, w)
    _, with_skin = losses.total_loss(images, red, photo_mask, dn, dz, uv_mask,
                                     w, skin_mask=skin)
    # Mean over all pixels: (0.2 + 0.6) / 2 * 255; over skin only: 0.2 * 255.
    self.assertAllClose(without['photo'], 0.4 * 255, atol=1e-2)
    self.assertAllClose(with_skin['photo'], 0.2 * 255, atol=1e-2)
    # The skin mask multiplies the photo mask: rows outside either are out.
    partial = np.ones([1, 8, 8, 1], np.float32)
    partial[:, :2] = 0.0
    _, both = losses.total_loss(images, red, tf.constant(partial), dn, dz,
                                uv_mask, w, skin_mask=skin)
    self.assertAllClose(both['photo'], 0.2 * 255, atol=1e-2)
    self.assertAllClose(losses.photo_mask_with_skin(partial, skin),
                        partial * skin)

  def test_photo_term_outweighs_regularisers_at_chen20_weights(self):
    # With Chen20's weights, a visible 10% colour error (25.5) must weigh
    # far more than the regularisers of a 1 mm displacement (w_dz * 1 mm^2).
    w = losses.DEFAULT_WEIGHTS
    images = tf.zeros([1, 8, 8, 3])
    renders = tf.fill([1, 8, 8, 3], float(0.1 / np.sqrt(3.0)))
    dz = tf.ones([1, 4, 4, 1])
    dn = tf.zeros([1, 4, 4, 3])
    _, terms = losses.total_loss(images, renders, tf.ones([1, 8, 8, 1]), dn,
                                 dz, tf.ones([4, 4, 1]), w)
    self.assertGreater(w['photo'] * float(terms['photo']),
                       1000.0 * w['disp_reg'] * float(terms['disp_reg']))

  @parameterized.parameters(4, 9)
  def test_smoothness_of_linear_ramp(self, size):
    slope = 0.5
    mask = tf.ones([size, size, 1])
    # Horizontal and both diagonal pairs differ by `slope`, vertical by 0.
    n_h = size * (size - 1)
    n_d = (size - 1)**2
    expected = slope**2 * (n_h + 2 * n_d) / (2 * n_h + 2 * n_d)
    self.assertAllClose(losses.neighbour_smoothness(_ramp(size, slope), mask),
                        expected)
    self.assertAllClose(
        losses.neighbour_smoothness(tf.ones([1, size, size, 2]), mask), 0.0)

  def test_smoothness_ignores_pairs_leaving_the_mask(self):
    values = np.zeros([1, 6, 6, 1], np.float32)
    values[0, :, 3:] = 100.0
    mask = np.zeros([6, 6, 1], np.float32)
    mask[:, :3] = 1.0
    self.assertAllClose(losses.neighbour_smoothness(tf.constant(values), mask),
                        0.0)
    mask[:, 3] = 1.0
    self.assertGreater(
        float(losses.neighbour_smoothness(tf.constant(values), mask)), 1.0)

  def test_displacement_regulariser_and_clipping(self):
    mask = np.zeros([4, 4, 1], np.float32)
    mask[1:3, 1:3] = 1.0
    dz = tf.fill([1, 4, 4, 1], 2.0)
    dn = tf.zeros([1, 4, 4, 3])
    self.assertAllClose(losses.displacement_regulariser(dn, dz, mask, 1.0, 0.5),
                        0.5 * 4.0)
    # Chen20 clips squared values at 10.
    self.assertAllClose(
        losses.displacement_regulariser(dn, dz * 10, mask, 1.0, 1.0), 10.0)
    dn = tf.concat([tf.fill([1, 4, 4, 1], 0.3), tf.zeros([1, 4, 4, 2])], -1)
    self.assertAllClose(
        losses.displacement_regulariser(dn, dz * 0, mask, 2.0, 1.0), 2.0 * 0.09)

  def test_total_is_weighted_sum(self):
    images = tf.random.uniform([1, 8, 8, 3], seed=1)
    renders = tf.random.uniform([1, 8, 8, 3], seed=2)
    pmask = tf.ones([1, 8, 8, 1])
    dn = tf.random.normal([1, 4, 4, 3], stddev=0.1, seed=3)
    dz = tf.random.normal([1, 4, 4, 1], seed=4)
    uv_mask = tf.ones([4, 4, 1])
    w = {
        'photo': 2.0,
        'smooth': 3.0,
        'disp_reg': 5.0,
        'smooth_normal': 1.0,
        'smooth_depth': 0.01,
        'disp_normal': 0.001,
        'disp_depth': 0.002
    }
    total, terms = losses.total_loss(images, renders, pmask, dn, dz, uv_mask, w)
    self.assertAllClose(
        total,
        2.0 * terms['photo'] + 3.0 * terms['smooth'] + 5.0 * terms['disp_reg'])
    self.assertAllClose(
        terms['smooth'],
        losses.neighbour_smoothness(dn, uv_mask) +
        0.01 * losses.neighbour_smoothness(dz, uv_mask))


if __name__ == '__main__':
  tf.test.main()
