"""coarse/facemesh_correspondence.py tables and landmark_fit.fit_dense."""

import math
import os
from unittest import mock

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

import bfm
from coarse import facemesh_correspondence as fc
from coarse import landmark_fit
from renderer import camera
from tests import test_utils

SIZE = (320, 320)


def _random_correspondence(model, rng, scatter_mm=2.0):
  """A table of random surface points of `model` (no detector needed): the
  fit only needs SOME fixed surface points with known positions."""
  faces = np.asarray(model.triangles)
  pick = rng.choice(len(faces), fc.NUM_POINTS, replace=False)
  bary = rng.dirichlet([2.0, 2.0, 2.0], fc.NUM_POINTS)
  return fc.Correspondence(
      triangles=faces[pick].astype(np.int32),
      barycentrics=bary.astype(np.float32),
      scatter_mm=np.full([fc.NUM_POINTS], scatter_mm, np.float32),
      model=model.name, mesh_digest=fc.mesh_digest(model))


def _project(model, corr, identity, expression, pose):
  """[1,474,2] pixels of the table's points on a posed face, its vertices."""
  vertices = model.vertices(identity[None], expression[None])
  points = fc.points(corr, vertices.numpy())
  screen = camera.orthographic_project(tf.constant(points, tf.float32),
                                       pose[None], SIZE)
  return screen.numpy()[..., :2], vertices.numpy()[0]


def _rms(a, b):
  """RMS distance (mm) of mesh a to b after centring and the best scale of a
  (an orthographic camera cannot tell a face's size from its distance)."""
  a, b = a - a.mean(0), b - b.mean(0)
  a = a * np.sum(a * b) / np.sum(a * a)
  return float(np.sqrt(np.mean(np.sum((a - b)**2, -1))))


class TableTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.model = bfm.load('synthetic')
    self.corr = _random_correspondence(self.model, np.random.RandomState(0))

  def test_save_load_round_trip(self):
    path = os.path.join(self.get_temp_dir(), 'table.npz')
    fc.save(path, self.corr, ['/a/b/photo.jpg'])
    back = fc.load(path, self.model)
    self.assertAllEqual(back.triangles, self.corr.triangles)
    self.assertAllClose(back.barycentrics, self.corr.barycentrics)
    self.assertEqual(back.mesh_digest, fc.mesh_digest(self.model))

  def test_points_are_barycentric_combinations(self):
    mean = self.model.mean_shape
    expected = np.stack([
        sum(b[j] * mean[t[j]] for j in range(3))
        for t, b in zip(self.corr.triangles, self.corr.barycentrics)])
    self.assertAllClose(fc.points(self.corr, mean), expected, atol=1e-4)

  def test_other_mesh_is_refused_naming_the_file(self):
    path = os.path.join(self.get_temp_dir(), 'other.npz')
    fc.save(path, self.corr._replace(mesh_digest='0123456789abcdef'))
    with self.assertRaisesRegex(ValueError, 'other.npz.*different mesh'):
      fc.load(path, self.model)

  def test_malformed_file_is_refused_naming_it(self):
    path = os.path.join(self.get_temp_dir(), 'bad.npz')
    np.savez(path, triangles=np.zeros([3, 3]))
    with self.assertRaisesRegex(ValueError, 'bad.npz'):
      fc.load(path)

  def test_no_table_for_the_synthetic_model(self):
    self.assertIsNone(fc.for_model(self.model))


class CommittedTablesTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters('sfm', 'ict')
  def test_table_matches_the_shared_model(self, name):
    test_utils.require_data(name)
    model = bfm.load(name)
    corr = fc.for_model(model)
    self.assertIsNotNone(corr)
    self.assertAllClose(corr.barycentrics.sum(1), np.ones(fc.NUM_POINTS),
                        atol=1e-4)
    self.assertTrue(np.all(corr.barycentrics > -1e-4))
    points = fc.points(corr, model.mean_shape)
    # FaceMesh's nose tip (point 1) is the most forward of the eye corners
    # (33, 263) and mouth corners (61, 291) in the model's z; the subject's
    # right eye corner (33) is on the model's -x side.
    self.assertGreater(points[1, 2], points[[33, 263, 61, 291], 2].max())
    self.assertLess(points[33, 0], points[263, 0])
    # The 68 iBUG points the earlier fit used sit within a few mm of where
    # the detector measured them (they are the same anatomical points).
    from preprocess import facemesh_to_ibug68  # pylint: disable=g-import-not-at-top
    inner = np.asarray(facemesh_to_ibug68.FACEMESH_TO_IBUG68)[36:48]
    gap = np.linalg.norm(points[inner] -
                         model.mean_shape[model.landmarks68[36:48]], axis=1)
    self.assertLess(float(np.median(gap)), 6.0)


class FitDenseTest(tf.test.TestCase, parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.model = bfm.load('synthetic')
    cls.corr = _random_correspondence(cls.model, np.random.RandomState(1))

  def _face(self, seed, yaw_deg):
    rng = np.random.RandomState(seed)
    identity = rng.normal(size=self.model.num_id).astype(np.float32)
    expression = np.zeros([self.model.num_exp], np.float32)
    pose = np.array([math.radians(5.0), math.radians(yaw_deg),
                     math.radians(-3.0), 4.0, -6.0, 0.1], np.float32)
    return identity, expression, pose

  @parameterized.parameters(0.0, 25.0, -40.0)
  def test_exact_points_beat_the_mean(self, yaw):
    # With the noise model sized for FaceMesh (sigma ~9 mm per point) the
    # prior holds the shape back: better than the mean, not exact.
    identity, expression, pose = self._face(3, yaw)
    points, truth = _project(self.model, self.corr, identity, expression,
                             pose)
    fit = landmark_fit.fit_dense(self.model, self.corr, points, SIZE)
    self.assertNear(math.degrees(fit.pose[0, 1]), yaw, 5.0)
    fitted = self.model.vertices(fit.identity, fit.expression).numpy()[0]
    self.assertLess(_rms(fitted, truth),
                    0.9 * _rms(self.model.mean_shape, truth))

  @parameterized.parameters(25.0, -40.0)
  def test_precise_points_recover_the_face(self, yaw):
    # The solver itself: with a tiny noise model the MAP estimate is the truth
    # (on a turned face: a frontal orthographic view cannot see depth).
    identity, expression, pose = self._face(3, yaw)
    points, truth = _project(self.model, self.corr, identity, expression,
                             pose)
    corr = self.corr._replace(scatter_mm=np.full_like(self.corr.scatter_mm,
                                                      0.01))
    with mock.patch.object(landmark_fit, 'DENSE_MISFIT_MM', 0.01):
      fit = landmark_fit.fit_dense(self.model, corr, points, SIZE)
    self.assertNear(math.degrees(fit.pose[0, 1]), yaw, 0.2)
    fitted = self.model.vertices(fit.identity, fit.expression).numpy()[0]
    self.assertLess(_rms(fitted, truth),
                    0.1 * _rms(self.model.mean_shape, truth))

  def test_beyond_the_gate_pose_only_from_keypoints(self):
    identity, expression, pose = self._face(4, 60.0)
    points, _ = _project(self.model, self.corr, identity, expression, pose)
    fit = landmark_fit.fit_dense(self.model, self.corr, points, SIZE)
    self.assertAllEqual(fit.identity, np.zeros_like(fit.identity))
    # Six keypoints of a face that is not the mean one: a rougher pose.
    self.assertNear(math.degrees(fit.pose[0, 1]), 60.0, 8.0)

  def test_gate_follows_the_keypoint_yaw(self):
    identity, expression, pose = self._face(5, 30.0)
    points, _ = _project(self.model, self.corr, identity, expression, pose)
    shaped = landmark_fit.fit_dense(self.model, self.corr, points, SIZE)
    gated = landmark_fit.fit_dense(self.model, self.corr, points, SIZE,
                                   max_shape_yaw_deg=20.0)
    self.assertGreater(np.abs(shaped.identity).sum(), 0.1)
    self.assertAllEqual(gated.identity, np.zeros_like(gated.identity))

  def test_bad_points_are_refused(self):
    test_utils.assert_rejects(
        self, lambda: landmark_fit.fit_dense(
            self.model, self.corr, np.zeros([1, 68, 2]), SIZE), r'\[B,474,2\]')
    bad = np.zeros([1, fc.NUM_POINTS, 2])
    bad[0, 3, 1] = np.nan
    test_utils.assert_rejects(
        self, lambda: landmark_fit.fit_dense(self.model, self.corr, bad,
                                             SIZE), 'NaN')


if __name__ == '__main__':
  tf.test.main()
