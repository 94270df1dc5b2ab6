"""Tests for reconstruct/outputs.py photo_texture: what each texel comes from."""

import unittest

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

import bfm
from reconstruct import outputs
from renderer import camera
from renderer import uv as uv_lib

try:
  from renderer import rasterize_op
  _OP_MISSING = None
except (ImportError, OSError, RuntimeError) as e:
  _OP_MISSING = 'rasterizer op not available: %s' % e

SIZE = 256
TEXTURE = 128
SKIN = np.array([0.8, 0.6, 0.5], np.float32)
HAIR = np.array([0.1, 0.05, 0.02], np.float32)


@unittest.skipIf(_OP_MISSING, _OP_MISSING)
class PhotoTextureTest(tf.test.TestCase, parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.model = bfm.load('synthetic')

  def _photo(self, yaw_deg):
    """Screen vertices of the mean face and a photo that is SKIN where the
    face is seen more than grazing and HAIR elsewhere (its grazing rim, as
    where a real face's outline meets hair or background)."""
    model = self.model
    pose = tf.constant([[0.0, np.deg2rad(yaw_deg), 0.0, 0.0, 0.0, 0.0]],
                       tf.float32)
    screen = camera.orthographic_project(model.mean_shape[None], pose,
                                         (SIZE, SIZE))
    fragments = rasterize_op.rasterize(
        camera.screen_to_clip(screen, (SIZE, SIZE)), model.triangles,
        (SIZE, SIZE))
    ids = fragments.triangle_ids.numpy()[0]
    cosine = uv_lib.triangle_view_cosine(screen, model.triangles).numpy()[0]
    seen = (ids >= 0) & (cosine[np.maximum(ids, 0)] >=
                         outputs.TEXTURE_GRAZING_COS)
    photo = np.where(seen[..., None], SKIN, HAIR).astype(np.float32)
    return screen[0].numpy(), photo, cosine

  @parameterized.parameters(0.0, 40.0)
  def test_grazing_texels_are_not_taken_from_the_photo(self, yaw_deg):
    screen, photo, cosine = self._photo(yaw_deg)
    albedo = np.full([self.model.num_vertices, 3], 0.5, np.float32)
    texture = outputs.photo_texture(self.model, photo, screen, albedo,
                                    TEXTURE)
    ids, _ = uv_lib.rasterize_uv(self.model.uv, self.model.triangles, TEXTURE)
    ids = ids.numpy()
    chart = ids >= 0
    texel_cos = np.where(chart, cosine[np.maximum(ids, 0)], -1.0)
    grazing = chart & (texel_cos > 0.0) & (
        texel_cos < outputs.TEXTURE_GRAZING_COS)
    self.assertGreater(grazing.sum(), 50)
    # Taken as the photo shows them, the grazing texels would be hair.
    raw, visible = uv_lib.unwrap_image(photo[None], screen[None],
                                       self.model.triangles, self.model.uv,
                                       TEXTURE)
    seen_grazing = grazing & (visible.numpy()[0, ..., 0] > 0)
    self.assertGreater(seen_grazing.sum(), 20)
    self.assertAllClose(np.median(raw.numpy()[0][seen_grazing], 0), HAIR,
                        atol=0.05)
    # They are skin here: from the mirror texel or inpainted.
    near_skin = np.all(np.abs(texture - SKIN) < 0.1, -1)
    self.assertGreater(near_skin[grazing].mean(), 0.95)
    self.assertGreater(near_skin[chart].mean(), 0.95)
    # Face-on texels are the photo's.
    face_on = chart & (texel_cos > 0.8)
    self.assertAllClose(texture[face_on].mean(0), SKIN, atol=0.01)
    self.assertAllEqual(texture[~chart], np.zeros_like(texture[~chart]))

  def test_albedo_when_the_photo_covers_no_texel(self):
    screen, photo, _ = self._photo(0.0)
    screen = screen + np.array([10 * SIZE, 0, 0], np.float32)  # off the photo
    albedo = np.random.RandomState(0).uniform(
        0.2, 0.9, [self.model.num_vertices, 3]).astype(np.float32)
    texture = outputs.photo_texture(self.model, photo, screen, albedo,
                                    TEXTURE)
    ids, bary = uv_lib.rasterize_uv(self.model.uv, self.model.triangles,
                                    TEXTURE)
    ids, bary = ids.numpy(), bary.numpy()
    chart = ids >= 0
    corners = self.model.triangles[ids[chart]]
    expected = np.einsum('tk,tkc->tc', bary[chart], albedo[corners])
    self.assertAllClose(texture[chart], expected, atol=1e-5)


if __name__ == '__main__':
  tf.test.main()
