"""Ground-truth tests of eval/protocols.py (FG 2018 NME and MICC p2p)."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from eval import alignment
from eval import protocols
from tests import test_eval_fixtures as fixtures


def _similarity(seed, scale):
  rng = np.random.default_rng(seed)
  rotation = alignment.rotation_from_axis_angle(rng.normal(size=3))
  return alignment.SimilarityTransform(scale, rotation,
                                       rng.normal(size=3) * 100)


class NmeTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters('fg2018', 'fg2018_icp', 'now')
  def test_known_similarity_is_recovered_and_error_vanishes(self, variant):
    vertices, triangles, landmarks, _ = fixtures.face_like_mesh()
    for seed, scale in ((0, 1.0), (1, 0.01), (2, 37.0)):
      truth = _similarity(seed, scale)  # prediction in another frame/units
      result = protocols.nme(vertices, landmarks, truth.apply(vertices),
                             triangles, truth.apply(landmarks), variant)
      aligned = result.transform.apply(truth.apply(vertices))
      self.assertLess(np.max(np.linalg.norm(aligned - vertices, axis=1)), 1e-3)
      self.assertLess(result.mean, 1e-4)
      self.assertEqual(result.protocol, 'nme_' + variant)

  def test_constant_normal_displacement_gives_that_error(self):
    # Scan: icosphere of radius R (vertices exactly on the sphere). Prediction:
    # the same mesh moved by h along its normals (radially: radius R + h), in
    # another frame. Its keypoints are the scan's keypoints in that frame
    # (the true correspondences), so Procrustes is exact and only the
    # tessellation separates the error from h. Bound: every prediction face
    # lies in a plane at distance >= D = sqrt((R+h)^2 - rc^2) from the centre
    # (rc = largest circumradius), and every vertex of it is at distance h,
    # so each scan vertex's error is in [D - R, h].
    radius, h = 80.0, 2.0
    vertices, triangles, landmarks = fixtures.sphere_face(radius, 4)
    displaced = vertices * (radius + h) / radius
    corners = displaced[triangles]
    a = np.linalg.norm(corners[:, 1] - corners[:, 2], axis=1)
    b = np.linalg.norm(corners[:, 2] - corners[:, 0], axis=1)
    c = np.linalg.norm(corners[:, 0] - corners[:, 1], axis=1)
    area = 0.5 * np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0],
                                         corners[:, 2] - corners[:, 0]), axis=1)
    circumradius = np.max(a * b * c / (4 * area))
    lower = np.sqrt((radius + h)**2 - circumradius**2) - radius
    self.assertGreater(lower, 0.95 * h)  # the bound is tight enough to fail
    frame = _similarity(3, 2.5)
    result = protocols.nme(vertices, landmarks, frame.apply(displaced),
                           triangles, frame.apply(landmarks))
    self.assertGreater(result.distances.min(), lower - 1e-9)
    self.assertLess(result.distances.max(), h + 1e-9)
    self.assertBetween(result.mean, lower, h)

  def test_fg2018_crop_sphere_formula(self):
    # outer eyes 90 mm apart, inner eyes at y = 40, nose bottom at y = 0:
    # bridge (0, 40, 0), nose distance 40, centre (0, 12, 0),
    # radius 1.2 * (90 + 40) / 2 = 78; NoW factor 1.4 -> 91.
    k = np.array([[-45.0, 40, 0], [-15, 40, 0], [15, 40, 0], [45, 40, 0],
                  [0, 0, 0], [-25, -30, 0], [25, -30, 0]])
    centre, radius = protocols.fg2018_crop_sphere(k)
    self.assertAllClose(centre, [0.0, 12.0, 0.0])
    self.assertAllClose(radius, 78.0)
    self.assertAllClose(protocols.fg2018_crop_sphere(k, 1.4)[1], 91.0)

  def test_nme_measures_exactly_the_scan_points_in_the_sphere(self):
    vertices, triangles, landmarks, _ = fixtures.face_like_mesh()
    centre, radius = protocols.fg2018_crop_sphere(landmarks[:7])
    rng = np.random.default_rng(0)
    directions = rng.normal(size=(400, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    factors = np.tile([0.5, 0.999999, 1.000001, 1.5], 100)
    scan = centre + directions * (radius * factors)[:, None]
    scan = np.concatenate([scan, landmarks])  # landmarks lie inside
    result = protocols.nme(scan, landmarks, vertices, triangles, landmarks)
    expected = np.concatenate([np.flatnonzero(factors < 1),
                               400 + np.arange(len(landmarks))])
    self.assertAllEqual(np.sort(result.scan_indices), expected)


class MiccP2pTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters('scan_to_prediction', 'prediction_to_scan',
                            'symmetric')
  def test_same_mesh_misaligned_gives_zero(self, direction):
    vertices, triangles, landmarks, _ = fixtures.face_like_mesh()
    rng = np.random.default_rng(1)
    # Misaligned prediction with slightly perturbed keypoints: the 7-point
    # alignment is only rough; ICP must finish the job.
    truth = _similarity(4, 1.0)
    noisy = landmarks.copy()  # the nose tip (row 8) stays exact
    noisy[:7] += rng.normal(size=(7, 3)) * 1.5
    result = protocols.micc_p2p(vertices, landmarks, truth.apply(vertices),
                                triangles, truth.apply(noisy),
                                direction=direction)
    aligned = result.transform.apply(truth.apply(vertices))
    self.assertLess(np.max(np.linalg.norm(aligned - vertices, axis=1)), 1e-3)
    self.assertLess(result.mean, 1e-3)
    if direction == 'symmetric':
      self.assertLen(result.distances, result.info['num_scan_points'] +
                     result.info['num_prediction_points'])

  def test_crops_exactly_95_mm_around_the_nose_tip(self):
    vertices, triangles, landmarks, _ = fixtures.face_like_mesh()
    tip = landmarks[7]
    rng = np.random.default_rng(2)
    directions = rng.normal(size=(400, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    distance = np.tile([10.0, 94.9999, 95.0001, 120.0], 100)
    scan = np.concatenate([tip + directions * distance[:, None], landmarks])
    result = protocols.micc_p2p(scan, landmarks, vertices, triangles,
                                landmarks)
    expected = np.concatenate([np.flatnonzero(distance < 95.0),
                               400 + np.arange(len(landmarks))])
    self.assertAllEqual(np.sort(result.scan_indices), expected)
    # The prediction is cropped the same way around its own nose tip.
    kept, _, kept_triangles = protocols.crop_mesh(vertices, triangles, tip,
                                                  95.0)
    inside = np.linalg.norm(vertices - tip, axis=1) <= 95.0
    self.assertAllEqual(kept, np.flatnonzero(inside))
    self.assertTrue(np.all(inside[kept[kept_triangles]]))
    self.assertEqual(len(kept_triangles),
                     int(np.sum(np.all(inside[triangles], axis=1))))

  def test_scan_nose_tip_from_prediction_when_not_given(self):
    vertices, triangles, landmarks, _ = fixtures.face_like_mesh()
    result = protocols.micc_p2p(vertices, landmarks[:7], vertices, triangles,
                                landmarks)
    self.assertAllClose(result.info['scan_nose_tip'], landmarks[7])


class BadInputTest(tf.test.TestCase):

  def test_errors_name_the_file(self):
    vertices, triangles, landmarks, _ = fixtures.face_like_mesh()
    kwargs = dict(scan_name='scans/s01.obj', pred_name='pred/s01.obj')
    with self.assertRaisesRegex(ValueError, 'scans/s01.obj.*empty'):
      protocols.nme(np.zeros([0, 3]), landmarks, vertices, triangles,
                    landmarks, **kwargs)
    with self.assertRaisesRegex(ValueError, 'pred/s01.obj.*no triangles'):
      protocols.nme(vertices, landmarks, vertices, np.zeros([0, 3], int),
                    landmarks, **kwargs)
    with self.assertRaisesRegex(ValueError, 'pred/s01.obj landmarks.*got 5'):
      protocols.nme(vertices, landmarks, vertices, triangles, landmarks[:5],
                    **kwargs)
    bad = vertices.copy()
    bad[10, 2] = np.nan
    with self.assertRaisesRegex(ValueError, 'pred/s01.obj.*NaN'):
      protocols.nme(vertices, landmarks, bad, triangles, landmarks, **kwargs)
    bad_landmarks = landmarks.copy()
    bad_landmarks[0, 0] = np.inf
    with self.assertRaisesRegex(ValueError, 'scans/s01.obj landmarks.*NaN'):
      protocols.nme(vertices, bad_landmarks, vertices, triangles, landmarks,
                    **kwargs)
    with self.assertRaisesRegex(ValueError, 'pred/s01.obj.*nose tip'):
      protocols.micc_p2p(vertices, landmarks, vertices, triangles,
                         landmarks[:7], **kwargs)
    with self.assertRaisesRegex(ValueError, 'variant'):
      protocols.nme(vertices, landmarks, vertices, triangles, landmarks,
                    variant='fg2019')


class StatisticsTest(tf.test.TestCase):

  def test_summarize_and_aggregate(self):
    stats = protocols.aggregate([np.array([1.0, 2.0, 3.0]), np.array([5.0])])
    self.assertAllClose(stats['pooled']['mean'], 11.0 / 4)
    self.assertAllClose(stats['pooled']['median'], 2.5)
    self.assertAllClose(stats['pooled']['std'],
                        np.sqrt(np.mean((np.array([1, 2, 3, 5]) - 2.75)**2)))
    self.assertAllClose(stats['subject']['mean'], 3.5)
    self.assertAllClose(stats['subject']['std'], 1.5)
    self.assertEqual(stats['num_subjects'], 2)
    with self.assertRaisesRegex(ValueError, 'no subjects'):
      protocols.aggregate([])


if __name__ == '__main__':
  tf.test.main()
