"""Tests for renderer/uv.py: UV rendering, unwrapping, masks and mirroring."""

import unittest

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from renderer import mesh_renderer
from renderer import uv as uv_lib
from tests import test_utils

try:
  from renderer import rasterize_op  # pylint: disable=unused-import
  _OP_MISSING = None
except (ImportError, OSError, RuntimeError) as e:
  _OP_MISSING = 'rasterizer op not available: %s' % e


def _grid_mesh(n=5, low=0.1, high=0.9):
  """A left/right mirror-symmetric grid in UV.

  Vertex (i, j) (column i, row j, v increasing with j) has index j n + i and
  uv (low + (high-low) i/(n-1), low + (high-low) j/(n-1)). Quads of the left
  half are split along one diagonal, those of the right half along the
  mirrored one, so that the mirror of every triangle is a triangle.

  Returns:
    uv [N, 2] float32, triangles [T, 3] int32 (CCW in uv), symmetry [N] int32.
  """
  coords = low + (high - low) * np.arange(n) / (n - 1)
  uv = np.array([[coords[i], coords[j]] for j in range(n) for i in range(n)],
                np.float32)
  triangles = []
  for j in range(n - 1):
    for i in range(n - 1):
      a, b = j * n + i, j * n + i + 1
      c, d = (j + 1) * n + i + 1, (j + 1) * n + i
      if i < (n - 1) // 2:
        triangles += [[a, b, c], [a, c, d]]
      else:
        triangles += [[a, b, d], [b, c, d]]
  symmetry = np.array([j * n + (n - 1 - i) for j in range(n) for i in range(n)],
                      np.int32)
  return uv, np.array(triangles, np.int32), symmetry


def _texel_centres(size):
  centres = np.arange(size) + 0.5
  x, y = np.meshgrid(centres, centres)
  return x, y


@unittest.skipIf(_OP_MISSING, _OP_MISSING)
class UVTest(tf.test.TestCase, parameterized.TestCase):

  def test_render_to_uv_affine_attribute(self):
    # Attribute = uv itself: each covered texel holds its own centre's uv.
    uv, triangles, _ = _grid_mesh()
    size = 20
    uv_map, coverage = uv_lib.render_to_uv(uv[None], uv, triangles, size)
    x, y = _texel_centres(size)
    covered = (x > 0.1 * size) & (x < 0.9 * size) & (y > 0.1 * size) & (
        y < 0.9 * size)
    self.assertAllEqual(coverage[..., 0], covered.astype(np.float32))
    self.assertAllClose(uv_map.numpy()[0][covered],
                        np.stack([x / size, 1 - y / size], -1)[covered],
                        atol=1e-5)
    self.assertAllEqual(uv_map.numpy()[0][~covered],
                        np.zeros([np.sum(~covered), 2]))

  def test_unwrap_round_trip(self):
    # Screen placement identical to the UV layout (pixel centres = texel
    # centres): unwrapping the rendered image gives back the UV rendering of
    # the same per-vertex colours, for arbitrary (non-affine) colours.
    uv, triangles, _ = _grid_mesh()
    size = 16
    screen = np.concatenate([uv[:, :1] * size, (1 - uv[:, 1:]) * size,
                             np.zeros_like(uv[:, :1])], -1)[None]
    colors = np.random.RandomState(0).rand(2, len(uv), 3).astype(np.float32)
    screen = np.concatenate([screen, screen])
    image = mesh_renderer.render(screen, triangles, colors, (size, size)).image
    texture, visibility = uv_lib.unwrap_image(image, screen, triangles, uv,
                                              size)
    expected, coverage = uv_lib.render_to_uv(colors, uv, triangles, size)
    self.assertAllEqual(visibility, tf.tile(coverage[None], [2, 1, 1, 1]))
    self.assertAllClose(texture, expected, atol=1e-4)

  def test_texture_round_trip(self):
    # Render an attribute into UV, then re-render the mesh sampling that
    # texture at the interpolated uv: equals rendering the attribute
    # directly. Affine attribute, so bilinear sampling is exact where all
    # four taps are covered.
    uv, triangles, _ = _grid_mesh()
    uv_size, image_size = 32, (24, 24)
    attribute = (0.2 + 0.5 * uv[:, :1] - 0.3 * uv[:, 1:])[None]
    texture, _ = uv_lib.render_to_uv(attribute, uv, triangles, uv_size)
    angle = 0.3
    rot = np.array([[np.cos(angle), -np.sin(angle)],
                    [np.sin(angle), np.cos(angle)]])
    xy = (uv - 0.5) @ rot.T * np.array([20.0, -20.0]) + 12.0
    screen = np.concatenate([xy, np.zeros_like(xy[:, :1])],
                            -1)[None].astype(np.float32)
    direct = mesh_renderer.render(screen, triangles, attribute, image_size)
    uv_image = mesh_renderer.render(screen, triangles, uv[None],
                                    image_size).image.numpy()
    texel_xy = np.stack([uv_image[..., 0] * uv_size,
                         (1 - uv_image[..., 1]) * uv_size], -1)
    resampled = uv_lib.bilinear_sample(texture, texel_xy).numpy()
    inner = ((uv_image[..., 0] > 0.1 + 1.5 / uv_size) &
             (uv_image[..., 0] < 0.9 - 1.5 / uv_size) &
             (uv_image[..., 1] > 0.1 + 1.5 / uv_size) &
             (uv_image[..., 1] < 0.9 - 1.5 / uv_size) &
             (direct.mask.numpy()[..., 0] > 0))
    self.assertGreater(np.sum(inner), 50)
    self.assertAllClose(resampled[inner], direct.image.numpy()[inner],
                        atol=1e-4)

  def test_unwrap_visibility_occlusion_and_backfaces(self):
    # Back quad (z = -5) over screen x in [2, 14]; front quad (z = +5) over
    # x in [2, 8]. UV: front quad in u [0.05, 0.45], back in u [0.5, 0.95].
    size = 16
    screen = np.array([[2, 14, 5], [8, 14, 5], [8, 2, 5], [2, 2, 5],
                       [2, 14, -5], [14, 14, -5], [14, 2, -5], [2, 2, -5]],
                      np.float32)[None]
    uv = np.array([[0.05, 0.05], [0.45, 0.05], [0.45, 0.95], [0.05, 0.95],
                   [0.5, 0.05], [0.95, 0.05], [0.95, 0.95], [0.5, 0.95]],
                  np.float32)
    triangles = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]],
                         np.int32)
    image = np.ones([1, size, size, 1], np.float32)
    _, visibility = uv_lib.unwrap_image(image, screen, triangles, uv, size)
    visibility = visibility.numpy()[0, ..., 0]
    x, y = _texel_centres(size)
    u, v = x / size, 1 - y / size
    inside_v = (v > 0.05) & (v < 0.95)
    front = inside_v & (u > 0.05) & (u < 0.45)
    back_screen_x = 2 + 12 * (u - 0.5) / 0.45
    back = inside_v & (u > 0.5) & (u < 0.95)
    self.assertTrue(np.all(visibility[front] == 1))
    self.assertTrue(np.all(visibility[back & (back_screen_x < 7)] == 0))
    self.assertTrue(np.all(visibility[back & (back_screen_x > 9)] == 1))
    self.assertGreater(np.sum(back & (back_screen_x < 7)), 5)
    self.assertTrue(np.all(visibility[~(front | back)] == 0))
    # Reversed winding: every triangle faces away, nothing is visible.
    _, hidden = uv_lib.unwrap_image(image, screen, triangles[:, ::-1].copy(),
                                    uv, size)
    self.assertEqual(float(tf.reduce_sum(hidden)), 0.0)

  @parameterized.parameters(0.0, 30.0, 60.0, 85.0, 120.0)
  def test_triangle_view_cosine_is_the_tilt(self, degrees):
    # A counter-clockwise (front-facing) triangle in the image plane, tilted
    # about the vertical axis: its normal makes `degrees` with the view.
    tilt = np.deg2rad(degrees)
    rotation = np.array([[np.cos(tilt), 0, np.sin(tilt)], [0, 1, 0],
                         [-np.sin(tilt), 0, np.cos(tilt)]])
    flat = np.array([[0, 0, 0], [10, 0, 0], [0, -10, 0]], np.float64)
    screen = (flat @ rotation.T + [20, 20, 0]).astype(np.float32)[None]
    triangles = np.array([[0, 1, 2], [0, 2, 1]], np.int32)
    cosine = uv_lib.triangle_view_cosine(screen, triangles).numpy()[0]
    self.assertAllClose(cosine, [np.cos(tilt), -np.cos(tilt)], atol=1e-5)
    facing = uv_lib.triangle_front_facing(screen, triangles).numpy()[0]
    self.assertAllEqual(facing, cosine > 0)

  def test_unwrap_gradients_flow(self):
    uv, triangles, _ = _grid_mesh()
    size = 16
    screen = tf.constant(np.concatenate(
        [uv[:, :1] * size, (1 - uv[:, 1:]) * size,
         np.zeros_like(uv[:, :1])], -1)[None] + 0.2, tf.float32)
    image = tf.constant(np.random.RandomState(1).rand(1, size, size, 1),
                        tf.float32)
    with tf.GradientTape(persistent=True) as tape:
      tape.watch([screen, image])
      texture, _ = uv_lib.unwrap_image(image, screen, triangles, uv, size)
      loss = tf.reduce_sum(texture)
    self.assertGreater(float(tf.reduce_sum(tf.abs(tape.gradient(
        loss, screen)))), 0.0)
    self.assertGreater(float(tf.reduce_sum(tape.gradient(loss, image))), 0.0)

  def test_uv_mask(self):
    uv, triangles, _ = _grid_mesh()
    size = 20
    vertex_mask = uv[:, 0] < 0.55   # columns u = 0.1, 0.3, 0.5
    mask = uv_lib.uv_mask(uv, triangles, vertex_mask, size).numpy()[..., 0]
    x, y = _texel_centres(size)
    expected = (x > 0.1 * size) & (x < 0.5 * size) & (y > 0.1 * size) & (
        y < 0.9 * size)
    self.assertAllEqual(mask, expected.astype(np.float32))

  def test_mirror_coordinates_on_symmetric_mesh(self):
    uv, triangles, symmetry = _grid_mesh()
    size = 20
    coords = uv_lib.uv_mirror_coordinates(uv, triangles, symmetry,
                                          size).numpy()
    x, y = _texel_centres(size)
    covered = (x > 0.1 * size) & (x < 0.9 * size) & (y > 0.1 * size) & (
        y < 0.9 * size)
    # Mirror across u = 0.5: x -> S - x, same row.
    self.assertAllClose(coords[covered],
                        np.stack([size - x, y], -1)[covered], atol=1e-4)
    self.assertAllClose(coords[~covered], np.stack([x, y], -1)[~covered])
    # mirror_sample of a map holding each texel's column gives the mirror
    # column: S - 1 - c.
    columns = np.tile(np.arange(size, dtype=np.float32)[None, :, None],
                      [size, 1, 1])
    maps = np.stack([columns, 2 * columns])
    mirrored = uv_lib.mirror_sample(maps, coords).numpy()
    cols = np.tile(np.arange(size), [size, 1])
    self.assertAllClose(mirrored[0, ..., 0][covered],
                        (size - 1 - cols)[covered], atol=1e-3)
    self.assertAllClose(mirrored[1, ..., 0][covered],
                        2 * (size - 1 - cols)[covered], atol=2e-3)

  @parameterized.parameters(
      (lambda: uv_lib.render_to_uv(np.zeros([1, 3, 1]), np.zeros([3, 3]),
                                   [[0, 1, 2]], 8), 'uv'),
      (lambda: uv_lib.render_to_uv(np.zeros([1, 3, 1]), np.zeros([3, 2]),
                                   [[0, 1, 2]], 0), 'uv_size'),
      (lambda: uv_lib.uv_mask(np.zeros([3, 2]), [[0, 1, 2]], [True] * 2, 8),
       'vertex_mask'),
      (lambda: uv_lib.mirror_sample(np.zeros([1, 8, 8, 1]),
                                    np.zeros([8, 8])), 'mirror_coords'),
  )
  def test_bad_input(self, fn, what):
    test_utils.assert_rejects(self, fn, what)


if __name__ == '__main__':
  tf.test.main()
