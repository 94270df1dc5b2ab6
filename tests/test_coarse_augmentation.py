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
