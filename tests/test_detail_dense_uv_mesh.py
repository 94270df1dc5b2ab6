"""Tests for detail/dense_uv_mesh.py."""

import numpy as np
import tensorflow as tf

from detail import dense_uv_mesh


def _signed_areas(mesh):
  # (u, v) of texel (row, col): u = col, v = -row (v up), up to scale/offset.
  uv = np.stack([mesh.texels[:, 1], -mesh.texels[:, 0]], -1).astype(np.float64)
  a, b, c = (uv[mesh.triangles[:, k]] for k in range(3))
  return 0.5 * ((b - a)[:, 0] * (c - a)[:, 1] - (b - a)[:, 1] * (c - a)[:, 0])


class DenseUVMeshTest(tf.test.TestCase):

  def test_full_grid_topology_and_winding(self):
    mesh = dense_uv_mesh.DenseUVMesh(np.ones([5, 5], bool))
    self.assertEqual(mesh.num_vertices, 25)
    self.assertLen(mesh.triangles, 2 * 4 * 4)
    self.assertAllClose(_signed_areas(mesh), np.full(32, 0.5))

  def test_partial_mask_gets_single_triangles_ccw(self):
    mask = np.ones([4, 4], bool)
    mask[0, 0] = False
    mesh = dense_uv_mesh.DenseUVMesh(mask)
    self.assertLen(mesh.triangles, 2 * 9 - 1)
    self.assertTrue(np.all(_signed_areas(mesh) > 0))
    self.assertTrue(np.all(mesh.triangles < mesh.num_vertices))

  def test_sample_and_to_uv_round_trip(self):
    mask = np.zeros([6, 6], bool)
    mask[1:5, 2:6] = True
    mesh = dense_uv_mesh.DenseUVMesh(mask)
    uv_map = tf.random.normal([2, 6, 6, 3], seed=1)
    back = mesh.to_uv(mesh.sample(uv_map))
    self.assertAllClose(back,
                        uv_map * mask[None, :, :, None].astype(np.float32))

  def test_uv_matches_renderer_texel_layout(self):
    from renderer import uv as uv_lib  # pylint: disable=g-import-not-at-top
    # Two triangles covering the UV square; the attribute is the UV itself, so
    # the rasterised map holds each texel's own (u, v).
    uv = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float32)
    tris = np.array([[0, 1, 2], [0, 2, 3]], np.int32)
    uv_map, coverage = uv_lib.render_to_uv(tf.constant(uv[None]), uv, tris, 8)
    mesh = dense_uv_mesh.DenseUVMesh(coverage.numpy()[..., 0] > 0.5)
    self.assertEqual(mesh.num_vertices, 64)
    self.assertAllClose(mesh.sample(uv_map)[0], mesh.uv, atol=1e-5)
    self.assertAllClose(mesh.uv[0], [0.5 / 8, 1.0 - 0.5 / 8])  # top-left

  def test_empty_mask_raises(self):
    with self.assertRaisesRegex(ValueError, 'empty'):
      dense_uv_mesh.DenseUVMesh(np.zeros([4, 4], bool))


if __name__ == '__main__':
  tf.test.main()
