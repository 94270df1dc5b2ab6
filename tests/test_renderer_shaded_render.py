"""Tests for renderer/shaded_render.py (posed, SH-lit mesh render)."""

import math

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from renderer import shaded_render


def _quad(z=0.0):
  """A 40 mm square facing +z, two CCW triangles; [1,4,3], [2,3]."""
  v = np.array([[[-20, -20, z], [20, -20, z], [20, 20, z], [-20, 20, z]]],
               np.float32)
  t = np.array([[0, 1, 2], [0, 2, 3]], np.int32)
  return v, t


class ShadedRenderTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(0.0, 0.4, -0.4)
  def test_flat_quad_colour_and_rotated_normals(self, yaw):
    vertices, triangles = _quad()
    normals = np.tile(np.array([[[0, 0, 1]]], np.float32), [1, 4, 1])
    albedo = np.full([1, 4, 3], 0.5, np.float32)
    pose = np.array([[0, yaw, 0, 0, 0, 0]], np.float32)
    lighting = np.zeros([1, 27], np.float32)
    lighting[0, 0::9] = 0.5  # l0 of each channel, on top of Chen20's +0.3.
    out = shaded_render.render_shaded(vertices, normals, albedo, pose,
                                      lighting, triangles, (32, 32),
                                      extra=np.ones([1, 4, 1], np.float32))
    # Camera-frame normal of a +z normal after a yaw: (sin, 0, cos).
    self.assertAllClose(out.normals[0, 0], [math.sin(yaw), 0, math.cos(yaw)],
                        atol=1e-6)
    # Chen20 shading (renderer/shading.py): albedo * sum_k l_k * Y_k(n), with
    # l0 = 0.5 + 0.3 and l1z = 0.3.
    expected = 0.5 * (0.8 * math.sqrt(1 / (4 * math.pi)) +
                      0.3 * math.sqrt(3 / (4 * math.pi)) * math.cos(yaw))
    self.assertAllClose(out.colors[0, 0], [expected] * 3, atol=1e-6)
    mask = out.mask.numpy()[0, ..., 0]
    self.assertGreater(mask.sum(), 20)  # ~5.7 px square at 32/224 px per mm
    covered = mask > 0
    self.assertAllClose(out.image.numpy()[0][covered],
                        np.full([covered.sum(), 3], expected), atol=1e-5)
    self.assertAllClose(out.extra.numpy()[0, ..., 0], mask)

  def test_back_faces_culled(self):
    vertices, triangles = _quad()
    normals = np.tile(np.array([[[0, 0, 1]]], np.float32), [1, 4, 1])
    out = shaded_render.render_shaded(
        vertices, normals, np.ones([1, 4, 3], np.float32),
        np.array([[0, math.pi, 0, 0, 0, 0]], np.float32),
        np.zeros([1, 27], np.float32), triangles, (32, 32))
    self.assertEqual(float(tf.reduce_sum(out.mask)), 0.0)
    self.assertEqual(out.extra.shape[-1], 0)


if __name__ == '__main__':
  tf.test.main()
