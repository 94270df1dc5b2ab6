"""Tests for detail/displacement_fitting.py (the --fit displacement-map fit).

The photos are renders of the built-in synthetic face with a known bump
pattern displaced into its detail region (64 px, 32^2 UV map, batch 2), so
the fit has something to find and runs in seconds on 2 CPU cores.
"""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

import unittest
from tests import test_utils

try:
  import bfm
  from coarse import coefficients as coefficients_lib
  from coarse import face_reconstruction
  from detail import detail_reconstruction
  from detail import displacement_fitting
  from reconstruct import pipeline as pipeline_lib
except ImportError as e:  # bfm/ or renderer/ not written yet
  raise unittest.SkipTest('dependency missing: %s' % e)

UV_SIZE = 32
IMAGE_SIZE = 64
BATCH = 2
# Enough steps for the fits below to level off.
STEPS = 60


def _scene(model, recon):
  """(images [B,S,S,3], Coefficients) with a known displacement rendered in."""
  coeffs = coefficients_lib.Coefficients.zeros(model, BATCH).numpy()
  extent = float(np.ptp(model.mean_shape[:, 1]))
  coeffs.pose[:, 1] = (0.1, -0.25)  # yaw, within the small-pose threshold
  coeffs.pose[:, 5] = np.log(0.8 * 224.0 / extent)
  # Ambient plus a light from the side, so displaced normals change shading.
  light = np.zeros([9], np.float32)
  light[[0, 1, 3]] = (0.8, 0.5, 0.3)
  coeffs.lighting[:] = np.tile(light, 3)
  u = np.linspace(0.0, 6.0 * np.pi, UV_SIZE, dtype=np.float32)
  bumps = 0.6 * np.sin(u)[None, :] * np.cos(u)[:, None]
  truth = np.tile(bumps[None, ..., None], [BATCH, 1, 1, 1])
  face = face_reconstruction.reconstruct(model, coeffs,
                                         (IMAGE_SIZE, IMAGE_SIZE))
  render = recon.applier.render(face.vertices, face.albedo, coeffs.pose,
                                coeffs.lighting, tf.constant(truth),
                                (IMAGE_SIZE, IMAGE_SIZE),
                                recon.displacement_scale_mm)
  return render.image.numpy(), coeffs


class ConvergedTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(
      ('levelled_off', [10.0, 6.0, 4.0, 3.5, 3.49, 3.489], 0.01, 2, True),
      ('still_falling', [10.0, 9.0, 8.0, 7.0, 6.0, 5.0], 0.01, 2, False),
      ('zero_tolerance_never_stops', [5.0, 4.0, 4.0, 4.0, 4.0], 0.0, 2,
       False),
      ('too_short_for_the_window', [10.0, 5.0, 5.0], 0.5, 3, False),
      ('never_decreased', [5.0, 5.1, 5.2, 5.3], 0.01, 2, True),
  )
  def test_converged(self, history, tolerance, window, expected):
    self.assertEqual(
        displacement_fitting.converged(history, tolerance, window), expected)

  def test_decrease_is_relative_to_the_decrease_so_far(self):
    # The same shape of history on top of a large constant residual (the
    # photometric loss the displacement cannot remove) converges alike.
    falling = [10.0, 6.0, 4.0, 3.0]
    levelled = falling + [2.95, 2.9]
    for offset in (0.0, 1e4):
      self.assertFalse(
          displacement_fitting.converged([h + offset for h in falling], 0.05,
                                         2))
      self.assertTrue(
          displacement_fitting.converged([h + offset for h in levelled],
                                         0.05, 2))


class FitDisplacementTest(tf.test.TestCase, parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    test_utils.require_rasterizer()
    cls.model = bfm.load('synthetic')
    cls.recon = detail_reconstruction.DetailReconstructor(cls.model, UV_SIZE)
    cls.images, cls.coeffs = _scene(cls.model, cls.recon)
    cls.fixed = displacement_fitting.fit_displacement(
        cls.recon, cls.images, cls.coeffs, steps=STEPS,
        learning_rate=displacement_fitting.DEFAULT_LEARNING_RATE,
        tolerance=0.0)

  def _fit(self, **kwargs):
    return displacement_fitting.fit_displacement(
        self.recon, self.images, self.coeffs, steps=STEPS,
        learning_rate=displacement_fitting.DEFAULT_LEARNING_RATE, **kwargs)

  def test_zero_tolerance_runs_every_step(self):
    self.assertLen(self.fixed.history, STEPS)

  def test_fit_lowers_the_loss(self):
    self.assertLess(self.fixed.final_terms['total'], self.fixed.history[0])
    self.assertLess(self.fixed.final_terms['photo'],
                    self.fixed.history[0])

  @parameterized.parameters(0.2, 0.05)
  def test_stop_is_the_first_converged_step_of_the_fixed_run(self,
                                                             tolerance):
    stopped = self._fit(tolerance=tolerance)
    steps = len(stopped.history)
    self.assertLess(steps, STEPS)
    # Same schedule, so the stopped run is a prefix of the fixed run ...
    self.assertAllClose(stopped.history, self.fixed.history[:steps],
                        rtol=1e-5)
    # ... ending at the first step where its loss history has converged.
    self.assertTrue(
        displacement_fitting.converged(stopped.history, tolerance))
    for n in range(1, steps):
      self.assertFalse(
          displacement_fitting.converged(stopped.history[:n], tolerance),
          msg='converged at %d, stopped at %d' % (n, steps))

  def test_looser_tolerance_stops_sooner_at_a_higher_loss(self):
    loose = self._fit(tolerance=0.2)
    tight = self._fit(tolerance=0.05)
    self.assertLess(len(loose.history), len(tight.history))
    self.assertGreaterEqual(loose.final_terms['total'],
                            tight.final_terms['total'])
    self.assertGreaterEqual(tight.final_terms['total'],
                            self.fixed.final_terms['total'])

  @parameterized.named_parameters(
      ('negative_tolerance', {'tolerance': -0.1}, 'tolerance'),
      ('nan_tolerance', {'tolerance': float('nan')}, 'tolerance'),
      ('zero_window', {'tolerance': 0.1, 'window': 0}, 'window'),
  )
  def test_rejects_bad_settings(self, kwargs, what):
    test_utils.assert_rejects(self, lambda: self._fit(**kwargs), what)


class PipelineSettingsTest(tf.test.TestCase, parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    test_utils.require_rasterizer()
    cls.model = bfm.load('synthetic')

  def _pipeline(self, **kwargs):
    return pipeline_lib.FacePipeline(self.model, image_size=IMAGE_SIZE,
                                     fit=True, fit_uv_size=UV_SIZE, **kwargs)

  def test_defaults_are_the_fast_fit(self):
    pipe = self._pipeline()
    self.assertEqual(pipe.fit_detail_tolerance,
                     displacement_fitting.DEFAULT_TOLERANCE)
    self.assertEqual(pipe.fit_detail_learning_rate,
                     displacement_fitting.DEFAULT_LEARNING_RATE)
    self.assertGreater(pipe.fit_detail_tolerance, 0.0)
    self.assertIn('stopped at convergence', pipe.describe()[0])

  def test_zero_tolerance_describes_a_fixed_step_count(self):
    pipe = self._pipeline(fit_detail_steps=7, fit_detail_tolerance=0.0,
                          fit_detail_learning_rate=0.05)
    self.assertIn('then 7 on a', pipe.describe()[0])
    self.assertIn('learning rate 0.05', pipe.describe()[0])
    self.assertNotIn('convergence', pipe.describe()[0])

  def test_detail_maps_use_the_settings_and_pad_only_large_poses(self):
    # The direct fit pads no image; detail_maps once padded the small-pose
    # batch too (it passed the path's selection as large_pose).
    images, coeffs = _scene(self.model, self._pipeline().detail['small'])
    large = np.zeros([BATCH], bool)
    maps = {}
    for tolerance in (0.0, 0.2):
      pipe = self._pipeline(fit_detail_steps=STEPS,
                            fit_detail_tolerance=tolerance)
      maps[tolerance] = pipe.detail_maps(images, coeffs, large)
    direct = displacement_fitting.fit_displacement(
        self._pipeline().detail['small'], images, coeffs, steps=STEPS,
        learning_rate=displacement_fitting.DEFAULT_LEARNING_RATE,
        tolerance=0.2, large_pose=large)
    self.assertAllClose(maps[0.2], direct.displacement_uv, atol=1e-5)
    self.assertNotAllClose(maps[0.0], maps[0.2], atol=1e-5)


if __name__ == '__main__':
  tf.test.main()
