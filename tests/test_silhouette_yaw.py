"""coarse/silhouette_yaw.py (profile yaw search) and
preprocess/face_silhouette.py (GrabCut silhouette)."""

import math

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

import bfm
from coarse import coefficients as coefficients_lib
from coarse import facemesh_correspondence as fc
from coarse import silhouette_yaw
from preprocess import face_silhouette
from renderer import camera
from tests import test_utils

SIZE = (224, 224)


def _ellipse_image(rng, size=160):
  """A skin-coloured ellipse on a green textured background, its mask and
  points on an ellipse of 0.7x its radii (points short of the outline)."""
  yy, xx = np.mgrid[0:size, 0:size] + 0.5
  cx, cy, rx, ry = 0.52 * size, 0.5 * size, 0.25 * size, 0.33 * size
  inside = ((xx - cx) / rx)**2 + ((yy - cy) / ry)**2 <= 1.0
  image = np.empty([size, size, 3])
  image[:] = (0.15, 0.45, 0.2)
  image += rng.uniform(-0.08, 0.08, image.shape)
  image[inside] = np.array((0.85, 0.62, 0.5)) + rng.uniform(
      -0.04, 0.04, [int(inside.sum()), 3])
  angle = np.linspace(0.0, 2.0 * math.pi, 60, endpoint=False)
  points = np.stack([cx + 0.7 * rx * np.cos(angle),
                     cy + 0.7 * ry * np.sin(angle)], 1)
  return np.clip(image, 0, 1).astype(np.float32), inside, points


class FaceSilhouetteTest(tf.test.TestCase):

  def test_recovers_a_region_beyond_its_seed_points(self):
    image, truth, points = _ellipse_image(np.random.RandomState(0))
    mask = face_silhouette.face_silhouette(image, points)
    iou = np.sum(mask & truth) / np.sum(mask | truth)
    self.assertGreater(iou, 0.9)
    # The seed hull alone covers only ~half of the ellipse.
    self.assertGreater(mask.sum(), 1.6 * 0.49 * truth.sum())

  def test_photo_silhouette_does_not_depend_on_earlier_calls(self):
    from preprocess import face_landmarks  # pylint: disable=g-import-not-at-top
    from preprocess import image_io  # pylint: disable=g-import-not-at-top
    import cv2  # pylint: disable=g-import-not-at-top
    path = test_utils.require_data('faces', 'aflw2000_sample',
                                   'image00181.jpg')
    image = image_io.read_image(path)
    faces = face_landmarks.detect_faces(image, 'facemesh')
    self.assertNotEmpty(faces)
    points = faces[0].dense
    masks = []
    for seed in (1, 2, 3):
      # OpenCV's global generator in the state other work may leave it in.
      cv2.setRNGSeed(seed)
      masks.append(face_silhouette.face_silhouette(image, points))
    self.assertGreater(masks[0].sum(), 1000)
    for mask in masks[1:]:
      self.assertAllEqual(mask, masks[0])

  def test_rejects_bad_input(self):
    image, _, points = _ellipse_image(np.random.RandomState(1))
    test_utils.assert_rejects(
        self, lambda: face_silhouette.face_silhouette(image[..., 0], points),
        'image must be')
    test_utils.assert_rejects(
        self, lambda: face_silhouette.face_silhouette(image[:20, :20], points),
        'smaller than')
    bad = points.copy()
    bad[3] = np.nan
    test_utils.assert_rejects(
        self, lambda: face_silhouette.face_silhouette(image, bad),
        'not finite')
    test_utils.assert_rejects(
        self, lambda: face_silhouette.face_silhouette(image, points[:2]),
        'points must be')


class RowCostTest(parameterized.TestCase, tf.test.TestCase):

  @parameterized.parameters(1, -1)
  def test_row_extremes(self, side):
    mask = np.zeros([4, 10], bool)
    mask[0, 2:5] = True
    mask[1, 7] = True
    mask[3, [0, 9]] = True
    edge = silhouette_yaw.row_extremes(mask, side)
    expected = [5.0, 8.0, np.nan, 10.0] if side > 0 else [2.0, 7.0, np.nan,
                                                          0.0]
    self.assertAllClose(edge, expected)

  def test_profile_cost_ignores_a_shift_and_clips_outliers(self):
    model_edge = np.linspace(50.0, 80.0, 30)
    scale = 2.0
    self.assertAllClose(silhouette_yaw.profile_cost(model_edge + 7.0,
                                                    model_edge, scale)[0], 0.0)
    photo = model_edge.copy()
    photo[4] += 1000.0  # one row of hair: 500 mm
    cost, rows = silhouette_yaw.profile_cost(photo, model_edge, scale)
    self.assertEqual(rows, 30)
    self.assertAllClose(cost, silhouette_yaw.OUTLIER_MM**2 / 30.0)

  def test_profile_cost_needs_rows(self):
    edge = np.full([10], np.nan)
    edge[:silhouette_yaw.MIN_ROWS - 1] = 3.0
    self.assertEqual(silhouette_yaw.profile_cost(edge, edge, 1.0)[0],
                     math.inf)


def _random_correspondence(model, rng):
  faces = np.asarray(model.triangles)
  pick = rng.choice(len(faces), fc.NUM_POINTS, replace=False)
  return fc.Correspondence(
      triangles=faces[pick].astype(np.int32),
      barycentrics=rng.dirichlet([2.0, 2.0, 2.0], fc.NUM_POINTS).astype(
          np.float32),
      scatter_mm=np.full([fc.NUM_POINTS], 2.0, np.float32),
      model=model.name, mesh_digest=fc.mesh_digest(model))


class SearchYawTest(parameterized.TestCase, tf.test.TestCase):
  """A face rendered at a known yaw as a flat silhouette, its points
  projected exactly, the search started from an under-rotated yaw with the
  face's own shape (the geometry of the search; its accuracy with another
  face's shape is the fit benchmark's to measure)."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    test_utils.require_rasterizer()
    cls.model = bfm.load('synthetic')
    cls.corr = _random_correspondence(cls.model, np.random.RandomState(0))

  def _photo(self, identity, yaw_deg, pitch_deg=5.0):
    from renderer import rasterize_op  # pylint: disable=g-import-not-at-top
    pose = np.array([[math.radians(pitch_deg), math.radians(yaw_deg), 0.05,
                      4.0, -3.0, math.log(0.9)]], np.float32)
    vertices = self.model.vertices(identity[None],
                                   np.zeros([1, self.model.num_exp],
                                            np.float32))
    screen = camera.orthographic_project(vertices, pose, SIZE)
    ids = rasterize_op.rasterize(camera.screen_to_clip(screen, SIZE),
                                 self.model.triangles, SIZE).triangle_ids
    mask = ids.numpy()[0] >= 0
    points = camera.orthographic_project(
        tf.constant(fc.points(self.corr, vertices.numpy()), tf.float32),
        pose, SIZE).numpy()[0, :, :2]
    return mask, points, pose[0]

  @parameterized.parameters(70.0, 85.0, -80.0)
  def test_finds_the_rendered_yaw(self, true_yaw):
    rng = np.random.RandomState(int(abs(true_yaw)))
    identity = (0.7 * rng.normal(size=self.model.num_id)).astype(np.float32)
    mask, points, pose = self._photo(identity, true_yaw)
    start = pose.copy()
    start[1] = math.copysign(math.radians(50.0), true_yaw)
    found, costs = silhouette_yaw.search_yaw(
        self.model, self.corr, identity,
        np.zeros([self.model.num_exp], np.float32), start, points, mask,
        SIZE)
    self.assertLen(costs, int((90.0 - 50.0) / silhouette_yaw.STEP_DEG) + 1)
    self.assertLessEqual(abs(math.degrees(found[1]) - true_yaw),
                         silhouette_yaw.STEP_DEG)
    self.assertAllClose(found[[0, 2]], start[[0, 2]], atol=1e-5)

  def test_refine_yaw_leaves_faces_below_the_gate(self):
    identity = np.zeros([self.model.num_id], np.float32)
    mask, points, pose = self._photo(identity, 80.0)
    image = np.repeat(mask[..., None], 3, -1).astype(np.float32)
    coeffs = coefficients_lib.Coefficients.zeros(self.model, 1)
    start = pose.copy()
    start[1] = math.radians(40.0)
    coeffs = coeffs._replace(pose=start[None])
    out = silhouette_yaw.refine_yaw(self.model, self.corr, coeffs,
                                    points[None], image[None], SIZE)
    self.assertAllEqual(out.pose, coeffs.pose)
    turned = silhouette_yaw.refine_yaw(self.model, self.corr, coeffs,
                                       points[None], image[None], SIZE,
                                       min_yaw_deg=30.0)
    self.assertGreater(math.degrees(turned.pose[0, 1]), 70.0)

  def test_refine_yaw_searches_a_face_facemesh_barely_sees(self):
    identity = np.zeros([self.model.num_id], np.float32)
    mask, points, pose = self._photo(identity, 80.0)
    image = np.repeat(mask[..., None], 3, -1).astype(np.float32)
    start = pose.copy()
    start[1] = math.radians(20.0)
    fitted = coefficients_lib.Coefficients.zeros(self.model, 1)._replace(
        identity=np.full([1, self.model.num_id], 0.5, np.float32),
        pose=start[None])
    seen = silhouette_yaw.refine_yaw(self.model, self.corr, fitted,
                                     points[None], image[None], SIZE,
                                     presence=np.array([0.9]))
    self.assertAllEqual(seen.pose, fitted.pose)
    self.assertAllEqual(seen.identity, fitted.identity)
    unseen = silhouette_yaw.refine_yaw(self.model, self.corr, fitted,
                                       points[None], image[None], SIZE,
                                       presence=np.array([0.1]))
    self.assertGreater(math.degrees(unseen.pose[0, 1]), 70.0)
    self.assertAllEqual(unseen.identity, np.zeros_like(fitted.identity))
    self.assertAllClose(unseen.pose[0, [0, 2]], start[[0, 2]], atol=1e-5)



if __name__ == '__main__':
  tf.test.main()
