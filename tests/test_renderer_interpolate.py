"""Tests for renderer/interpolate.py: NumPy comparison and Jacobians."""

import unittest

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from renderer import camera
from renderer import interpolate
from renderer import mesh_renderer

try:
  from renderer import rasterize_op  # pylint: disable=unused-import
  _OP_MISSING = None
except (ImportError, OSError, RuntimeError) as e:
  _OP_MISSING = 'rasterizer op not available: %s' % e

# Two triangles of a quad plus a third one; screen pixels of a 12 x 12 image.
# Vertex coordinates are chosen off the pixel-centre lattice so that no pixel
# centre lies within 0.05 px of an edge (checked in the test), hence finite
# differences of 0.01 px never change which triangle covers a pixel.
_SIZE = (12, 12)
_TRIANGLES = np.array([[0, 1, 2], [0, 2, 3], [1, 4, 2]], np.int32)
_SCREEN = np.array([[[1.2, 10.83, 1.0], [6.09, 10.62, 2.0], [6.09, 0.82, 3.0],
                     [0.85, 2.04, 0.5], [10.73, 5.38, -1.0]]], np.float32)


def _numpy_ids(ndc, triangles, size):
  """Triangle id per pixel centre by point-in-triangle (no overlaps)."""
  height, width = size
  ids = -np.ones([height, width], np.int32)
  for r in range(height):
    for c in range(width):
      p = np.array([-1 + (2 * c + 1) / width, 1 - (2 * r + 1) / height])
      for t, tri in enumerate(triangles):
        a, b, d = ndc[tri, :2]
        cross = lambda u, v: u[0] * v[1] - u[1] * v[0]
        s = [cross(b - a, p - a), cross(d - b, p - b), cross(a - d, p - d)]
        if all(x > 0 for x in s) or all(x < 0 for x in s):
          ids[r, c] = t
  return ids


def _edge_distances(screen, triangles, size):
  """Smallest distance (px) from any pixel centre to any triangle edge."""
  height, width = size
  centres = np.stack(np.meshgrid(np.arange(width) + 0.5,
                                 np.arange(height) + 0.5), -1).reshape(-1, 2)
  best = np.inf
  for tri in triangles:
    for i in range(3):
      a, b = screen[tri[i], :2], screen[tri[(i + 1) % 3], :2]
      d = b - a
      t = np.clip(((centres - a) @ d) / (d @ d), 0, 1)
      best = min(best, np.min(np.linalg.norm(centres - a - t[:, None] * d,
                                             axis=1)))
  return best


class InterpolateTest(tf.test.TestCase, parameterized.TestCase):

  def test_perspective_barycentrics_match_numpy(self):
    # Clip-space vertices with varying w: perspective-correct barycentrics.
    w = np.array([1.0, 2.0, 0.5, 1.5, 3.0])
    ndc = camera.screen_to_clip(_SCREEN, _SIZE, 10.0).numpy()[0, :, :3]
    clip = np.concatenate([ndc * w[:, None], w[:, None]], -1)[None]
    ids = _numpy_ids(ndc, _TRIANGLES, _SIZE)
    bary = interpolate.differentiable_barycentrics(
        clip.astype(np.float32), _TRIANGLES, ids[None]).numpy()[0]
    attributes = np.random.RandomState(0).rand(1, 5, 2).astype(np.float32)
    values = interpolate.interpolate(attributes, _TRIANGLES, ids[None],
                                     bary[None]).numpy()[0]
    height, width = _SIZE
    self.assertGreater(np.sum(ids >= 0), 40)
    for r in range(height):
      for c in range(width):
        t = ids[r, c]
        if t < 0:
          self.assertAllEqual(bary[r, c], [0, 0, 0])
          self.assertAllEqual(values[r, c], [0, 0])
          continue
        p = np.array([-1 + (2 * c + 1) / width, 1 - (2 * r + 1) / height])
        a, b, d = ndc[_TRIANGLES[t], :2]
        # Screen-space barycentrics by solving p = a + l1 (b-a) + l2 (d-a),
        # then perspective correction l_i / w_i, renormalised.
        l1, l2 = np.linalg.solve(np.stack([b - a, d - a], 1), p - a)
        screen_bary = np.array([1 - l1 - l2, l1, l2])
        persp = screen_bary / w[_TRIANGLES[t]]
        persp /= persp.sum()
        self.assertAllClose(bary[r, c], persp, atol=1e-5)
        self.assertAllClose(values[r, c], persp @ attributes[0, _TRIANGLES[t]],
                            atol=1e-5)

  def test_ndc_input_equals_w_one(self):
    ndc = camera.screen_to_clip(_SCREEN, _SIZE, 10.0).numpy()
    ids = _numpy_ids(ndc[0, :, :3], _TRIANGLES, _SIZE)[None]
    self.assertAllClose(
        interpolate.differentiable_barycentrics(ndc[..., :3], _TRIANGLES, ids),
        interpolate.differentiable_barycentrics(ndc, _TRIANGLES, ids))

  @unittest.skipIf(_OP_MISSING, _OP_MISSING)
  def test_jacobian_wrt_vertex_positions(self):
    self.assertGreater(_edge_distances(_SCREEN[0], _TRIANGLES, _SIZE), 0.05)
    colors = np.random.RandomState(1).rand(1, 5, 1).astype(np.float32)

    def render_image(xy):
      screen = tf.concat([xy, _SCREEN[..., 2:]], axis=-1)
      return mesh_renderer.render(screen, _TRIANGLES, colors, _SIZE,
                                  cull_backfaces=False).image

    theoretical, numerical = tf.test.compute_gradient(
        render_image, [tf.constant(_SCREEN[..., :2])], delta=1e-2)
    self.assertGreater(np.abs(theoretical[0]).max(), 0.05)
    self.assertAllClose(theoretical[0], numerical[0], atol=2e-3)

  @unittest.skipIf(_OP_MISSING, _OP_MISSING)
  def test_jacobian_wrt_vertex_colors(self):
    colors = np.random.RandomState(2).rand(1, 5, 2).astype(np.float32)

    def render_image(c):
      return mesh_renderer.render(_SCREEN, _TRIANGLES, c, _SIZE,
                                  cull_backfaces=False).image

    theoretical, numerical = tf.test.compute_gradient(
        render_image, [tf.constant(colors)], delta=1e-2)
    self.assertGreater(np.abs(theoretical[0]).max(), 0.5)
    self.assertAllClose(theoretical[0], numerical[0], atol=1e-3)

  @unittest.skipIf(_OP_MISSING, _OP_MISSING)
  def test_matches_op_barycentrics(self):
    # Perspective clip vertices: our recomputed barycentrics equal the op's.
    w = np.array([1.0, 2.0, 0.5, 1.5, 3.0], np.float32)
    ndc = camera.screen_to_clip(_SCREEN, _SIZE, 10.0).numpy()[..., :3]
    clip = np.concatenate([ndc * w[:, None], w[None, :, None]], -1)
    fragments = rasterize_op.rasterize(clip, _TRIANGLES, _SIZE)
    bary = interpolate.differentiable_barycentrics(clip, _TRIANGLES,
                                                   fragments.triangle_ids)
    self.assertAllClose(bary, fragments.barycentrics, atol=1e-5)
    attributes = np.random.RandomState(3).rand(1, 5, 2).astype(np.float32)
    self.assertAllClose(
        interpolate.interpolate(attributes, _TRIANGLES, fragments),
        interpolate.interpolate(attributes, _TRIANGLES,
                                fragments.triangle_ids, bary), atol=1e-5)

  def test_bad_input(self):
    with self.assertRaisesRegex(ValueError, 'clip_vertices'):
      interpolate.differentiable_barycentrics(np.zeros([1, 3, 2]), _TRIANGLES,
                                              np.zeros([1, 4, 4], np.int32))
    with self.assertRaisesRegex(TypeError, 'triangles'):
      interpolate.differentiable_barycentrics(
          np.zeros([1, 3, 4]), _TRIANGLES.astype(np.float32),
          np.zeros([1, 4, 4], np.int32))
    with self.assertRaisesRegex(ValueError, 'attributes'):
      interpolate.interpolate(np.zeros([3, 2]), _TRIANGLES,
                              np.zeros([1, 4, 4], np.int32),
                              np.zeros([1, 4, 4, 3]))


if __name__ == '__main__':
  tf.test.main()
