"""Tests for detail/synthetic_details.py (known detail on synthetic faces)."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

import bfm
from coarse import face_reconstruction
from preprocess import synthetic_data
from detail import displacement
from detail import synthetic_details

UV = 32
SIZE = 48


class SyntheticDetailsTest(tf.test.TestCase, parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.model = bfm.load('synthetic')
    cls.applier = displacement.DisplacementApplier(cls.model, UV)

  def test_wrinkle_maps(self):
    a = synthetic_details.wrinkle_maps(np.random.RandomState(1), 3, 64)
    b = synthetic_details.wrinkle_maps(np.random.RandomState(1), 3, 64)
    self.assertEqual(a.shape, (3, 64, 64, 1))
    self.assertAllEqual(a, b)  # seeded
    self.assertNotAllClose(a[0], a[1])
    # Wrinkles, not noise: neighbouring texels are strongly correlated.
    x = a[..., 0]
    corr = np.corrcoef(x[:, :, 1:].ravel(), x[:, :, :-1].ravel())[0, 1]
    self.assertGreater(corr, 0.5)

  @parameterized.parameters(64, 128)
  def test_one_patch_has_the_documented_wavelength_size_and_place(self, size):
    """Measured on the map, independently of how it is drawn: the dominant
    spatial period (peak of the 2-D spectrum) lies in the documented 4-10
    texels x size/64, the envelope's spread (std of |map|^2 per axis,
    sigma / sqrt(2) for a Gaussian envelope) in 3-8 texels / sqrt(2) x
    size/64, and its centre in the middle 60% of the map."""
    scale = size / 64.0
    rows, cols = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5,
                             indexing='ij')
    freq = np.fft.fftfreq(size)  # cycles per texel
    for seed in range(12):
      m = synthetic_details.wrinkle_maps(np.random.RandomState(seed), 1, size,
                                         num_patches=1)[0, ..., 0]
      spectrum = np.abs(np.fft.fft2(m))
      spectrum[0, 0] = 0.0
      ky, kx = np.unravel_index(np.argmax(spectrum), spectrum.shape)
      period = 1.0 / np.hypot(freq[ky], freq[kx]) / scale
      self.assertBetween(period, 3.5, 11.0, 'seed %d' % seed)
      w = m**2 / np.sum(m**2)
      cr, cc = np.sum(w * rows), np.sum(w * cols)
      spread = np.sqrt(np.sum(w * ((rows - cr)**2 + (cols - cc)**2)) / 2)
      self.assertBetween(spread / scale, 3.0 / np.sqrt(2) * 0.85,
                         8.0 / np.sqrt(2) * 1.1, 'seed %d' % seed)
      for c in (cr, cc):
        self.assertBetween(c / size, 0.15, 0.85, 'seed %d' % seed)

  def test_detail_changes_face_pixels_only(self):
    batch = synthetic_data.sample_batch(self.model,
                                        2,
                                        SIZE,
                                        rng=np.random.RandomState(0),
                                        yaw_distribution='frontal')
    details = synthetic_details.SyntheticDetails(self.applier, 2.0, seed=3)
    images, maps = details.apply(batch.images, batch.coefficients)
    self.assertEqual(images.shape, batch.images.shape)
    self.assertEqual(maps.shape, (2, UV, UV, 1))
    change = np.abs(images.numpy() - batch.images).max(-1)
    skin = batch.skin_masks[..., 0] > 0.5
    coarse = face_reconstruction.reconstruct(self.model, batch.coefficients,
                                             SIZE)
    covered = coarse.mask.numpy()[..., 0] > 0
    # The background is untouched (the detailed mesh is the model's face
    # region; one pixel of slack at the silhouette).
    near = np.zeros_like(covered)
    for dy in (-1, 0, 1):
      for dx in (-1, 0, 1):
        near |= np.roll(covered, (dy, dx), axis=(1, 2))
    self.assertLess(float(change[~near].max()), 1e-6)
    self.assertGreater(float(change[skin].mean()), 0.01)
    with self.assertRaisesRegex(ValueError, 'amplitude_mm'):
      synthetic_details.SyntheticDetails(self.applier, 0.0)


if __name__ == '__main__':
  tf.test.main()
