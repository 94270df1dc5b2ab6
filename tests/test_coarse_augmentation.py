"""Tests for coarse/augmentation.py (Chen20's colour, flip, scale)."""

import numpy as np
import tensorflow as tf

import bfm
from coarse import augmentation
from coarse import coefficients
from coarse import face_reconstruction

SIZE = 64


class AugmentationTest(tf.test.TestCase):

  def test_flip_maps_landmarks_to_the_mirrored_pose(self):
    """The mean face turned by +20 deg, flipped, has the landmarks the
    renderer gives the face turned by -20 deg (the face is symmetric)."""
    model = bfm.load('synthetic')
    coeffs = coefficients.Coefficients.zeros(model, 2).numpy()
    coeffs.pose[:, 1] = np.deg2rad([20.0, -20.0])
    coeffs.pose[:, 5] = np.log(0.85)
    face = face_reconstruction.reconstruct(model, coeffs, SIZE)
    lm = face.landmarks2d.numpy()
    image = face.image[0]
    mask = face.mask[0]
    flipped_image, flipped_lm, flipped_mask = augmentation.flip(
        image, lm[0], mask)
    self.assertAllClose(flipped_lm, lm[1], atol=0.6)
    # Far from the symmetric pose, the unflipped points do not match.
    self.assertGreater(np.abs(lm[0] - lm[1]).max(), 5.0)
    self.assertAllClose(flipped_image, image.numpy()[:, ::-1])
    self.assertAllClose(flipped_mask, mask.numpy()[:, ::-1])
    again = augmentation.flip(flipped_image, flipped_lm, flipped_mask)
    self.assertAllClose(again[1], lm[0], atol=1e-4)

  def test_rescale_moves_content_with_the_landmarks(self):
    for scale in (0.9, 1.1):
      image = np.zeros([SIZE, SIZE, 3], np.float32)
      image[10:14, 44:48] = 1.0  # a 4x4 square, centre (46, 12) in x, y
      lm = np.full([68, 2], 32.0, np.float32)
      lm[0] = [46.0, 12.0]
      out, out_lm, out_mask = augmentation.rescale(
          tf.constant(image), tf.constant(lm), tf.ones([SIZE, SIZE, 1]),
          tf.constant(scale))
      self.assertEqual(out.shape, (SIZE, SIZE, 3))
      ys, xs = np.nonzero(out.numpy()[..., 0] > 0.5)
      centroid = [xs.mean() + 0.5, ys.mean() + 0.5]
      self.assertAllClose(out_lm[0], centroid, atol=0.75)
      # About the centre: expected c + s (p - c), up to Chen20's integer
      # rounding of the new size (one pixel).
      self.assertAllClose(out_lm[0], 32.0 + scale * (lm[0] - 32.0), atol=1.0)
      # Shrinking pads with zeros (mask included); growing crops.
      if scale < 1:
        self.assertEqual(float(out_mask[0, 0, 0]), 0.0)
      else:
        self.assertEqual(float(tf.reduce_min(out_mask)), 1.0)

  def test_color_shift_keeps_the_range(self):
    dark = tf.fill([4, 4, 3], 0.5)
    self.assertAllClose(
        augmentation.color_shift(dark, tf.constant([0.8, 1.0, 1.2]))[0, 0],
        [0.4, 0.5, 0.6])
    bright = tf.fill([4, 4, 3], 0.95)
    shifted = augmentation.color_shift(bright, tf.constant([1.2, 1.2, 0.9]))
    self.assertAllClose(shifted[0, 0], [1.0, 1.0, 0.855])

  def test_mirror_shape_moves_a_bump_to_the_mirrored_landmark(self):
    """A displacement at the right outer eye corner (iBUG 36) reappears,
    x negated, at the left outer eye corner (iBUG 45): the landmark mirror
    map is independent of the model's nearest-neighbour symmetry map."""
    model = bfm.load('synthetic')
    mean = np.asarray(model.mean_shape, np.float32)
    bump = np.array([2.0, -3.0, 1.5], np.float32)
    right = int(model.landmarks68[36])
    left = int(model.landmarks68[augmentation.IBUG68_MIRROR[36]])
    self.assertNotEqual(left, right)
    shape = mean.copy()
    shape[right] += bump
    mirrored = augmentation.mirror_shape(tf.constant(shape),
                                         model.symmetry).numpy()
    # The mean face is its own mirror image, up to the map's mismatch.
    tolerance = model.symmetry_max_error_mm + 1e-4
    moved = mirrored - augmentation.mirror_shape(
        tf.constant(mean), model.symmetry).numpy()
    self.assertAllClose(moved[left], bump * [-1.0, 1.0, 1.0], atol=1e-5)
    self.assertAllClose(np.delete(moved, left, 0), 0.0 * np.delete(
        moved, left, 0), atol=1e-5)
    self.assertAllClose(
        augmentation.mirror_shape(tf.constant(mean), model.symmetry), mean,
        atol=tolerance)
    twice = augmentation.mirror_shape(tf.constant(mirrored), model.symmetry)
    self.assertAllClose(twice, shape, atol=1e-5)

  def test_shape_is_mirrored_exactly_when_the_image_is(self):
    model = bfm.load('synthetic')
    rng = np.random.RandomState(1)
    image = tf.constant(rng.uniform(0, 0.8, [SIZE, SIZE, 3]), tf.float32)
    shape = tf.constant(np.asarray(model.mean_shape) +
                        rng.normal(size=model.mean_shape.shape), tf.float32)
    mirrored = augmentation.mirror_shape(shape, model.symmetry)
    flips = 0
    for index in range(8):
      seed = tf.constant([5, index], tf.int64)
      plain = augmentation.augment(image, tf.zeros([68, 2]),
                                   tf.ones([SIZE, SIZE, 1]), seed)
      out = augmentation.augment(image, tf.zeros([68, 2]),
                                 tf.ones([SIZE, SIZE, 1]), seed, shape,
                                 model.symmetry)
      self.assertLen(out, 4)
      self.assertAllClose(out[0], plain[0])  # the same draw with or without
      # Which way it went: a landmark at x = 0 lands near x = W if flipped.
      flipped = bool(np.asarray(out[1])[0, 0] > SIZE / 2)  # x -> W - x
      flips += flipped
      self.assertAllClose(out[3], mirrored if flipped else shape)
    self.assertBetween(flips, 1, 7)
    with self.assertRaisesRegex(ValueError, 'symmetry'):
      augmentation.augment(image, tf.zeros([68, 2]), tf.ones([SIZE, SIZE, 1]),
                           tf.constant([5, 0], tf.int64), shape)

  def test_dataset_is_seeded_and_varied(self):
    rng = np.random.RandomState(0)
    images = rng.uniform(0, 0.8, [8, SIZE, SIZE, 3]).astype(np.float32)
    lm = rng.uniform(10, 50, [8, 68, 2]).astype(np.float32)
    masks = np.ones([8, SIZE, SIZE, 1], np.float32)
    ds = tf.data.Dataset.from_tensor_slices((images, lm, masks)).batch(4)
    a = list(augmentation.augment_dataset(ds, 4, seed=3))
    b = list(augmentation.augment_dataset(ds, 4, seed=3))
    c = list(augmentation.augment_dataset(ds, 4, seed=4))
    self.assertLen(a, 2)
    for x, y in zip(a, b):
      for u, v in zip(x, y):
        self.assertAllEqual(u, v)
    self.assertNotAllClose(a[0][0], c[0][0])
    self.assertEqual(a[0][0].shape, (4, SIZE, SIZE, 3))
    self.assertEqual(a[0][1].shape, (4, 68, 2))
    self.assertEqual(a[0][2].shape, (4, SIZE, SIZE, 1))
    # Every image changed (colour factors are never all exactly 1).
    for i in range(4):
      self.assertNotAllClose(a[0][0][i], images[i])
    self.assertLessEqual(float(tf.reduce_max(a[0][0])), 1.0 + 1e-6)


if __name__ == '__main__':
  tf.test.main()
