"""Tests for detail/displacement.py (dense mesh displacement and render)."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

import unittest
from tests import test_utils

try:
  import bfm
  from bfm import mesh_geometry
  from detail import displacement
except ImportError as e:  # bfm/ or renderer/ not written yet
  raise unittest.SkipTest('dependency missing: %s' % e)

UV_SIZE = 64
IMAGE_SIZE = (64, 64)


class DisplacementApplierTest(tf.test.TestCase, parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    test_utils.require_rasterizer()
    cls.model = bfm.load('synthetic')
    cls.applier = displacement.DisplacementApplier(cls.model, UV_SIZE)

  def _coarse(self, batch=1):
    model = self.model
    rng = np.random.RandomState(0)
    id_c = tf.constant(rng.normal(size=[batch, model.num_id]) * 0.5, tf.float32)
    exp_c = tf.constant(
        rng.normal(size=[batch, model.num_exp]) * 0.5, tf.float32)
    verts = model.vertices(id_c, exp_c)
    albedo = tf.constant(np.tile(model.mean_albedo[None], [batch, 1, 1]))
    return verts, albedo

  def test_zero_displacement_keeps_geometry(self):
    verts, _ = self._coarse(2)
    zero = tf.zeros([2, UV_SIZE, UV_SIZE, 1])
    dense, displaced, disp = self.applier.apply(verts, zero)
    self.assertAllEqual(dense, displaced)
    self.assertAllEqual(disp, tf.zeros_like(disp))

  def test_known_displacement_moves_detail_vertices_along_z(self):
    verts, _ = self._coarse(1)
    amount = 0.5
    disp_uv = tf.fill([1, UV_SIZE, UV_SIZE, 1], amount)
    dense, displaced, disp = self.applier.apply(verts,
                                                disp_uv,
                                                displacement_scale_mm=2.0)
    move = (displaced - dense).numpy()[0]
    # x and y never move; z moves by amount * scale * (soft) detail mask.
    self.assertAllClose(move[:, :2], np.zeros_like(move[:, :2]))
    weight = self.applier.detail_mask.numpy()[:, 0]
    self.assertAllClose(move[:, 2], amount * 2.0 * weight, atol=1e-5)
    inside = weight > 0.999
    outside = weight < 1e-6
    self.assertGreater(inside.sum(), 10)
    self.assertGreater(outside.sum(), 10)  # eyes, nose, eyebrows, face border
    self.assertAllClose(move[inside, 2], np.full(inside.sum(), 1.0), atol=1e-3)
    self.assertAllClose(move[outside, 2], np.zeros(outside.sum()), atol=1e-5)

  def test_zero_displacement_render_matches_coarse_render(self):
    from coarse import face_reconstruction  # pylint: disable=g-import-not-at-top
    verts, albedo = self._coarse(1)
    # Yaw 0.2 rad; scale so that the face height is ~80% of the 64 px image
    # (camera.orthographic_project: exp(log_scale) * W / 224 px per mm).
    extent = float(np.ptp(self.model.mean_shape[:, 1]))
    pose = tf.constant([[0.0, 0.2, 0.0, 0.0, 0.0,
                         np.log(0.8 * 224.0 / extent)]], tf.float32)
    lighting = tf.constant(
        np.r_[[0.8], np.zeros(8), [0.8],
              np.zeros(8), [0.8],
              np.zeros(8)][None], tf.float32)
    face = self.applier.render(verts, albedo, pose, lighting,
                               tf.zeros([1, UV_SIZE, UV_SIZE, 1]), IMAGE_SIZE)
    # The project's one coefficients->render path.
    coarse = face_reconstruction.render_faces(self.model, verts, albedo, pose,
                                              lighting, IMAGE_SIZE)
    both = (face.mask * coarse.mask).numpy()[0, ..., 0] > 0.5
    face_pixels = (coarse.mask.numpy()[0, ..., 0] > 0.5).sum()
    self.assertGreater(both.sum(), 0.5 * face_pixels)
    diff = np.abs(face.image.numpy()[0] - coarse.image.numpy()[0])[both]
    # The dense mesh resamples the coarse one at 64^2 texels: small differences
    # of interpolated albedo/normals only.
    self.assertLess(float(np.mean(diff)), 0.02)
    self.assertLess(float(np.percentile(diff, 90)), 0.05)
    # A real displacement changes the render where it is applied.
    bumps = tf.sin(tf.linspace(0.0, 40.0, UV_SIZE))[None, None, :, None]
    bumped = self.applier.render(verts, albedo, pose, lighting,
                                 tf.tile(bumps, [1, UV_SIZE, 1, 1]),
                                 IMAGE_SIZE, displacement_scale_mm=3.0)
    change = np.abs(bumped.image.numpy()[0] - face.image.numpy()[0])[both]
    self.assertGreater(float(np.mean(change)), 2 * float(np.mean(diff)))

  def test_render_dense_matches_render(self):
    verts, albedo = self._coarse(2)
    extent = float(np.ptp(self.model.mean_shape[:, 1]))
    pose = tf.constant([[0.1, 0.3, 0.0, 2.0, -1.0,
                         np.log(0.8 * 224.0 / extent)]] * 2, tf.float32)
    lighting = tf.constant(
        np.tile(np.r_[[0.8], np.full(8, 0.1)], 3)[None].repeat(2, 0),
        tf.float32)
    bumps = tf.sin(tf.linspace(0.0, 40.0, UV_SIZE))[None, None, :, None]
    disp_uv = tf.tile(bumps, [2, UV_SIZE, 1, 1])
    whole = self.applier.render(verts, albedo, pose, lighting, disp_uv,
                                IMAGE_SIZE, displacement_scale_mm=2.0)
    dense_face = self.applier.dense_face(verts, albedo)
    parts = self.applier.render_dense(dense_face, pose, lighting, disp_uv,
                                      IMAGE_SIZE, displacement_scale_mm=2.0)
    for name in displacement.DetailedFace._fields:
      self.assertAllEqual(getattr(whole, name), getattr(parts, name),
                          msg=name)

  def test_dense_face_is_the_undisplaced_mesh(self):
    verts, albedo = self._coarse(1)
    dense_face = self.applier.dense_face(verts, albedo)
    dense, _, _ = self.applier.apply(verts,
                                     tf.zeros([1, UV_SIZE, UV_SIZE, 1]))
    self.assertAllEqual(dense_face.vertices, dense)
    self.assertAllEqual(
        dense_face.normals,
        mesh_geometry.vertex_normals(dense, self.applier.triangles))
    self.assertEqual(dense_face.albedo.shape, dense_face.vertices.shape)


if __name__ == '__main__':
  tf.test.main()
