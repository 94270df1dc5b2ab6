"""Tests for renderer/mesh_renderer.py on tiny meshes."""

import math
import unittest

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from renderer import camera
from renderer import mesh_renderer

try:
  from renderer import rasterize_op  # pylint: disable=unused-import
  _OP_MISSING = None
except (ImportError, OSError, RuntimeError) as e:
  _OP_MISSING = 'rasterizer op not available: %s' % e

_SIZE = (8, 8)
# An axis-aligned square covering pixel columns 2..5 and rows 1..4 (screen
# edges at 2.0/6.0 and 1.0/5.0 fall between pixel centres), counter-clockwise
# as seen in the image (y up), i.e. clockwise in y-down pixel coordinates.
_SQUARE = np.array([[[2.0, 5.0, 0.0], [6.0, 5.0, 0.0], [6.0, 1.0, 0.0],
                     [2.0, 1.0, 0.0]]], np.float32)
_SQUARE_TRIANGLES = np.array([[0, 1, 2], [0, 2, 3]], np.int32)


@unittest.skipIf(_OP_MISSING, _OP_MISSING)
class MeshRendererTest(tf.test.TestCase, parameterized.TestCase):

  def test_affine_attribute_and_mask(self):
    # Attribute = screen position, so every covered pixel shows its centre.
    out = mesh_renderer.render(_SQUARE, _SQUARE_TRIANGLES, _SQUARE[..., :2],
                               _SIZE, background=-1.0)
    expected_mask = np.zeros(_SIZE)
    expected_mask[1:5, 2:6] = 1
    self.assertAllEqual(out.mask[0, ..., 0], expected_mask)
    rows, cols = np.nonzero(expected_mask)
    self.assertAllClose(out.image.numpy()[0, rows, cols],
                        np.stack([cols + 0.5, rows + 0.5], -1), atol=1e-5)
    self.assertAllEqual(out.image.numpy()[0][expected_mask == 0],
                        -np.ones([64 - 16, 2]))
    self.assertAllEqual(out.triangle_ids.numpy()[0][expected_mask == 0],
                        np.full([64 - 16], -1))
    self.assertAllClose(tf.reduce_sum(out.barycentrics, -1)[0], expected_mask)

  def test_backface_culling(self):
    flipped = _SQUARE_TRIANGLES[:, ::-1].copy()
    colors = np.ones([1, 4, 1], np.float32)
    culled = mesh_renderer.render(_SQUARE, flipped, colors, _SIZE)
    kept = mesh_renderer.render(_SQUARE, flipped, colors, _SIZE,
                                cull_backfaces=False)
    self.assertEqual(float(tf.reduce_sum(culled.mask)), 0.0)
    self.assertEqual(float(tf.reduce_sum(kept.mask)), 16.0)

  def test_larger_z_is_in_front(self):
    # Two overlapping squares; the one with larger screen z must win.
    near = _SQUARE + np.array([0.0, 0.0, 5.0], np.float32)
    far = _SQUARE + np.array([1.0, 1.0, -5.0], np.float32)
    vertices = np.concatenate([far, near], axis=1)
    triangles = np.concatenate([_SQUARE_TRIANGLES, _SQUARE_TRIANGLES + 4])
    colors = np.array([[[0.0]] * 4 + [[1.0]] * 4], np.float32)
    image = mesh_renderer.render(vertices, triangles, colors, _SIZE).image
    self.assertAllEqual(image[0, 1:5, 2:6, 0], np.ones([4, 4]))
    self.assertAllEqual(image[0, 5, 3:7, 0], np.zeros([4]))  # far only

  def test_orthographic_face_front_faces_visible(self):
    # A CCW (seen from +z) model-space triangle stays front-facing after the
    # camera, for any yaw below 90 degrees.
    model = np.array([[[-40.0, -40.0, 0.0], [40.0, -40.0, 0.0],
                       [0.0, 40.0, 0.0]]], np.float32)
    for yaw in (-1.2, 0.0, 1.2):
      pose = np.array([[0.0, yaw, 0.0, 0.0, 0.0, math.log(1.75)]], np.float32)
      screen = camera.orthographic_project(model, pose, (32, 32))
      out = mesh_renderer.render(screen, [[0, 1, 2]], np.ones([1, 3, 1]),
                                 (32, 32))
      self.assertGreater(float(tf.reduce_sum(out.mask)), 10.0)

  def test_batch_matches_single(self):
    colors = np.random.RandomState(0).rand(2, 4, 3).astype(np.float32)
    shifted = _SQUARE + np.array([1.0, 2.0, 0.0], np.float32)
    vertices = np.concatenate([_SQUARE, shifted])
    batched = mesh_renderer.render(vertices, _SQUARE_TRIANGLES, colors, _SIZE)
    for b in range(2):
      single = mesh_renderer.render(vertices[b:b + 1], _SQUARE_TRIANGLES,
                                    colors[b:b + 1], _SIZE)
      self.assertAllClose(batched.image[b], single.image[0])

  def test_perspective_render_clip(self):
    # A square in a plane tilted in depth; the centre pixel's interpolated
    # camera-space position must be on the ray through that pixel.
    model = np.array([[[-50.0, -50.0, -30.0], [50.0, -50.0, 30.0],
                       [50.0, 50.0, 30.0], [-50.0, 50.0, -30.0]]], np.float32)
    angles = np.zeros([1, 3], np.float32)
    translation = np.array([[0.0, 0.0, -300.0]], np.float32)
    size = (16, 16)
    clip = camera.perspective_clip(model, angles, translation, 60.0, size)
    camera_space = model + translation[:, None, :]
    out = mesh_renderer.render_clip(clip, _SQUARE_TRIANGLES, camera_space,
                                    size)
    points = out.image.numpy()[0]
    for r, c in ((2, 3), (8, 8), (12, 10)):
      self.assertEqual(out.mask[0, r, c, 0], 1.0)
      x, y, z = points[r, c]
      # Pixel centre of the pinhole projection of (x, y, z).
      self.assertAllClose([8.0 + 60.0 * x / -z, 8.0 - 60.0 * y / -z],
                          [c + 0.5, r + 0.5], atol=1e-3)
      # On the plane z = -300 + 0.6 x.
      self.assertAllClose(z, -300.0 + 0.6 * x, atol=1e-2)

  def test_bad_attributes(self):
    with self.assertRaisesRegex(ValueError, 'attributes'):
      mesh_renderer.render(_SQUARE, _SQUARE_TRIANGLES, np.ones([1, 3, 1]),
                           _SIZE)
    with self.assertRaisesRegex(ValueError, 'attributes'):
      mesh_renderer.render(_SQUARE, _SQUARE_TRIANGLES, np.ones([4, 1]), _SIZE)


if __name__ == '__main__':
  tf.test.main()
