"""Tests for eval/alignment.py: Procrustes and ICP recover known transforms."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from eval import alignment
from eval import point_mesh_distance
from tests import test_eval_fixtures as fixtures


def _transform(seed, angle_deg, shift_mm, scale=1.0):
  """Rotation by angle_deg about a random axis, shift of shift_mm."""
  rng = np.random.default_rng(seed)
  axis = rng.normal(size=3)
  axis /= np.linalg.norm(axis)
  shift = rng.normal(size=3)
  shift *= shift_mm / np.linalg.norm(shift)
  return alignment.SimilarityTransform(
      scale, alignment.rotation_from_axis_angle(np.radians(angle_deg) * axis),
      shift)


class ProcrustesTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters((True, 1.7), (True, 0.01), (False, 1.0))
  def test_recovers_known_transform(self, with_scale, scale):
    _, _, landmarks, _ = fixtures.face_like_mesh()
    keypoints = landmarks[:7]
    for seed in range(5):
      truth = _transform(seed, 170.0 * (seed + 1) / 5, 500.0, scale)
      found = alignment.procrustes(keypoints, truth.apply(keypoints),
                                   with_scale=with_scale)
      self.assertAllClose(found.scale, scale, atol=1e-12)
      self.assertAllClose(found.rotation, truth.rotation, atol=1e-10)
      self.assertAllClose(found.translation, truth.translation, atol=1e-8)
      self.assertAllClose(np.linalg.det(found.rotation), 1.0)

  def test_reflection_is_never_returned(self):
    _, _, landmarks, _ = fixtures.face_like_mesh()
    mirrored = landmarks[:7] * np.array([-1.0, 1.0, 1.0])
    found = alignment.procrustes(landmarks[:7], mirrored)
    self.assertAllClose(np.linalg.det(found.rotation), 1.0)

  def test_inverse_and_compose(self):
    t1, t2 = _transform(1, 30, 10, 2.0), _transform(2, 50, 5, 0.5)
    points = np.random.default_rng(0).normal(size=(10, 3))
    self.assertAllClose(t1.inverse().apply(t1.apply(points)), points)
    self.assertAllClose(t2.compose(t1).apply(points),
                        t2.apply(t1.apply(points)))

  def test_bad_input_names_the_file(self):
    ok = np.random.default_rng(0).normal(size=(7, 3))
    with self.assertRaisesRegex(ValueError,
                                'mismatch.*pred.npy.*7.*scan.lnd.*68'):
      alignment.procrustes(ok, np.zeros([68, 3]), source_name='pred.npy',
                           target_name='scan.lnd')
    bad = ok.copy()
    bad[2, 0] = np.nan
    with self.assertRaisesRegex(ValueError, 'scan.lnd.*NaN'):
      alignment.procrustes(ok, bad, target_name='scan.lnd')
    line = np.outer(np.arange(7.0), [1.0, 2.0, 3.0])
    with self.assertRaisesRegex(ValueError, 'degenerate'):
      alignment.procrustes(line, line)


class IcpTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(
      ('point_to_plane', 'point_to_plane', 50, 1e-3),
      # Point-to-point converges linearly; it gets within 0.01 mm.
      ('point_to_point', 'point_to_point', 300, 1e-2))
  def test_converges_from_10_degrees_10_mm_on_face_like_mesh(
      self, mode, max_iterations, tolerance_mm):
    vertices, triangles, _, _ = fixtures.face_like_mesh()
    surface = point_mesh_distance.MeshDistance(vertices, triangles)
    for seed in range(3):
      misalignment = _transform(seed, 10.0, 10.0)
      result = alignment.icp(misalignment.apply(vertices), surface, mode=mode,
                             max_iterations=max_iterations)
      # The recovered transform undoes the misalignment: every vertex back.
      recovered = result.transform.compose(misalignment).apply(vertices)
      error = np.max(np.linalg.norm(recovered - vertices, axis=1))
      self.assertLess(error, tolerance_mm, f'seed {seed}')
      self.assertLess(result.rms_history[-1], tolerance_mm)
      if mode == 'point_to_plane':
        self.assertTrue(result.converged)

  @parameterized.parameters('point_to_plane', 'point_to_point')
  def test_converges_on_ict_face(self, mode):
    try:
      vertices, triangles, _ = fixtures.ict_face_mesh()
    except FileNotFoundError:
      self.skipTest(fixtures.ICT_MISSING_REASON)
    surface = point_mesh_distance.MeshDistance(vertices, triangles)
    points = vertices[::7]
    misalignment = _transform(5, 10.0, 10.0)
    result = alignment.icp(misalignment.apply(points), surface, mode=mode,
                           max_iterations=300)
    recovered = result.transform.compose(misalignment).apply(points)
    self.assertLess(np.max(np.linalg.norm(recovered - points, axis=1)),
                    1e-3 if mode == 'point_to_plane' else 1e-2)

  def test_noisy_points_converge_by_the_rms_criterion(self):
    # Scan-like noise (0.3 mm along z): the update jitters forever at the
    # 1e-3 level, so convergence must come from the stationary RMS.
    vertices, triangles, _, _ = fixtures.face_like_mesh()
    surface = point_mesh_distance.MeshDistance(vertices, triangles)
    rng = np.random.default_rng(4)
    noisy = vertices + np.outer(rng.normal(size=len(vertices)) * 0.3,
                                [0.0, 0.0, 1.0])
    misalignment = _transform(4, 10.0, 10.0)
    result = alignment.icp(misalignment.apply(noisy), surface)
    self.assertTrue(result.converged)
    self.assertLess(result.iterations, 30)
    recovered = result.transform.compose(misalignment).apply(vertices)
    self.assertLess(np.max(np.linalg.norm(recovered - vertices, axis=1)), 0.1)

  def test_boundary_rejection_ignores_overhanging_points(self):
    # Target: the face cropped to 50 mm; source: the whole face. Without
    # boundary rejection the overhanging points pull the solution away.
    vertices, triangles, landmarks, _ = fixtures.face_like_mesh()
    inside = np.linalg.norm(vertices - landmarks[7], axis=1) <= 50.0
    remap = np.cumsum(inside) - 1
    kept = triangles[np.all(inside[triangles], axis=1)]
    surface = point_mesh_distance.MeshDistance(vertices[inside], remap[kept])
    misalignment = _transform(3, 5.0, 5.0)
    errors = {}
    for reject in (True, False):
      result = alignment.icp(misalignment.apply(vertices), surface,
                             reject_boundary=reject)
      recovered = result.transform.compose(misalignment).apply(vertices)
      errors[reject] = np.max(np.linalg.norm(recovered - vertices, axis=1))
    self.assertLess(errors[True], 1e-3)
    self.assertGreater(errors[False], 0.1)

  def test_boundary_edge_mask(self):
    # Two triangles sharing edge (1, 2): the other 4 edges are boundary.
    mask = alignment.boundary_edge_mask(np.array([[0, 1, 2], [2, 1, 3]]))
    self.assertAllEqual(mask, [[True, False, True], [False, True, True]])

  def test_rms_never_increases_point_to_point(self):
    vertices, triangles, _, _ = fixtures.face_like_mesh()
    surface = point_mesh_distance.MeshDistance(vertices, triangles)
    result = alignment.icp(_transform(9, 10.0, 10.0).apply(vertices[::3]),
                           surface, mode='point_to_point', max_iterations=30)
    self.assertTrue(np.all(np.diff(result.rms_history) <= 1e-9))


if __name__ == '__main__':
  tf.test.main()
