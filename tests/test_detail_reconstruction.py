"""Tests for detail/detail_reconstruction.py (the detail stage, load, OBJ)."""

import json
import os
import re
import tempfile
import types
import unittest

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
from tests import test_utils

try:
  from detail import detail_reconstruction
  from bfm import mesh_geometry
  from detail import ri2itn
  from detail import symmetric_padding
  from renderer import camera
  from renderer import mesh_renderer
  from renderer import shading
except ImportError as e:  # bfm/, coarse/ or renderer/ not written yet
  raise unittest.SkipTest('dependency missing: %s' % e)

UV = 32
IMAGE = (48, 48)


def _face_model(n=21):
  """A symmetric cap-shaped face on a grid, with face/detail/eye masks."""
  xs = np.linspace(-60.0, 60.0, n)
  x, y = np.meshgrid(xs, xs[::-1])
  z = np.sqrt(np.maximum(90.0**2 - x**2 - y**2, 0.0)) - 50.0
  verts = np.stack([x, y, z], -1).reshape(-1, 3).astype(np.float32)
  idx = np.arange(n * n).reshape(n, n)
  a, b, c, d = idx[:-1, :-1], idx[1:, :-1], idx[:-1, 1:], idx[1:, 1:]
  left = np.zeros_like(a, bool)
  left[:, :(n - 1) // 2] = True
  tris = np.concatenate([
      np.stack([a[left], b[left], d[left]], -1),
      np.stack([a[left], d[left], c[left]], -1),
      np.stack([a[~left], b[~left], c[~left]], -1),
      np.stack([b[~left], d[~left], c[~left]], -1)
  ]).astype(np.int32)
  uv = np.stack([x.ravel() / 120.0 + 0.5, y.ravel() / 120.0 + 0.5], -1)
  r = np.hypot(verts[:, 0], verts[:, 1])
  masks = {
      'face': r < 58.0,
      'detail': (r < 50.0) & (np.abs(verts[:, 0]) > 10.0),
      'wo_eyes': np.ones(n * n, bool)
  }
  return types.SimpleNamespace(name='cap',
                               mean_shape=verts,
                               triangles=tris,
                               uv=uv.astype(np.float32),
                               masks=masks,
                               symmetry=idx[:, ::-1].reshape(-1).astype(
                                   np.int32))


class NetworkInputTest(tf.test.TestCase):

  def test_modes(self):
    a = tf.random.uniform([2, 4, 4, 3], seed=1)
    b = tf.random.uniform([2, 4, 4, 3], seed=2)
    # Chen20: (a - 0.5) / 0.5 - (b - 0.5) / 0.5.
    self.assertAllClose(detail_reconstruction.network_input(a, b, 'difference'),
                        2.0 * (a - b))
    both = detail_reconstruction.network_input(a, b, 'concat')
    self.assertEqual(both.shape, (2, 4, 4, 6))
    self.assertAllClose(both[..., :3], 2.0 * a - 1.0)
    with self.assertRaisesRegex(ValueError, 'mode'):
      detail_reconstruction.network_input(a, b, 'sum')


class ShadingChannelsTest(tf.test.TestCase, parameterized.TestCase):
  """The lighting-aware input channels (shading_input=True), checked against
  the renderer's own shading, not against their formula."""

  def _grey(self, model_normals, albedo, pose, lighting):
    rotation = camera.rotation_matrix(pose[:, :3])
    normals = tf.einsum('bij,bnj->bni', rotation, model_normals)
    return tf.reduce_mean(shading.sh_shade(albedo, normals, lighting), -1)

  @parameterized.parameters(0.0, 0.5, -1.2)
  def test_slope_channels_are_the_finite_difference_of_the_shading(self, yaw):
    model = _face_model()
    verts = tf.constant(model.mean_shape[None])
    rng = np.random.RandomState(4)
    albedo = tf.constant(rng.uniform(0.3, 0.8, [1, verts.shape[1], 3]),
                         tf.float32)
    lighting = tf.constant(rng.normal(0.0, 0.4, [1, 27]), tf.float32)
    pose = tf.constant([[0.1, yaw, -0.2, 0.0, 0.0, 0.0]], tf.float32)
    out = detail_reconstruction.shading_channels(verts, albedo,
                                                 model.triangles, pose,
                                                 lighting)
    self.assertEqual(out.shape, (1, verts.shape[1], 3))
    normals = mesh_geometry.vertex_normals(verts, model.triangles)
    grey = self._grey(normals, albedo, pose, lighting)
    self.assertAllClose(out[..., 0], 2.0 * grey - 1.0, atol=1e-5)
    eps = 1e-3
    for k, tilt in enumerate(([1.0, 0.0, 0.0], [0.0, 1.0, 0.0])):
      t = tf.constant(tilt, tf.float32)
      plus = tf.math.l2_normalize(normals + eps * t, -1)
      minus = tf.math.l2_normalize(normals - eps * t, -1)
      diff = (self._grey(plus, albedo, pose, lighting) -
              self._grey(minus, albedo, pose, lighting)) / (2 * eps)
      self.assertAllClose(out[..., 1 + k], 2.0 * diff, atol=2e-3)
      self.assertGreater(float(tf.reduce_max(tf.abs(diff))), 0.05)

  def test_a_light_from_one_side_gives_the_slope_channel_its_sign(self):
    # Frontal normal, ambient plus a lateral light +-L along camera x: a
    # slope tilting the normal to +x brightens (+L) or darkens (-L) it by
    # albedo x sqrt(3 / (4 pi)) x L; the difference input is 2 x colour.
    model = _face_model()
    verts = tf.constant(model.mean_shape[None])
    albedo = tf.fill([1, verts.shape[1], 3], 0.5)
    pose = tf.zeros([1, 6])
    centre = int(np.argmin(np.hypot(model.mean_shape[:, 0],
                                    model.mean_shape[:, 1])))
    for light in (0.4, -0.4):
      lighting = np.zeros([3, 9], np.float32)
      lighting[:, 2] = light
      out = detail_reconstruction.shading_channels(
          verts, albedo, model.triangles, pose,
          tf.constant(lighting.reshape(1, 27)))
      self.assertAllClose(out[0, centre, 1],
                          2.0 * 0.5 * np.sqrt(3.0 / (4 * np.pi)) * light,
                          atol=5e-3)
      # (the grid's centre normal is frontal up to its triangulation)
      self.assertAllClose(out[0, centre, 2], 0.0, atol=5e-3)

  def test_network_input_channels_visibility_and_round_trip(self):
    model = _face_model()
    net = ri2itn.RI2ITN(UV, channels=[4] * 5, stem_channels=4)
    rec = detail_reconstruction.DetailReconstructor(model, UV, network=net,
                                                    shading_input=True)
    self.assertEqual(rec.input_channels, 6)
    self.assertTrue(rec.config()['shading_input'])
    verts = tf.constant(model.mean_shape[None])
    pose = tf.constant([[0.0, 0.9, 0.0, 0.0, 0.0,
                         np.log(0.8 * 224.0 / 120.0)]], tf.float32)
    screen = camera.orthographic_project(verts, pose, IMAGE)
    albedo = tf.fill([1, verts.shape[1], 3], 0.6)
    face = types.SimpleNamespace(
        vertices=verts, screen_vertices=screen, albedo=albedo,
        image=mesh_renderer.render(screen, model.triangles, albedo,
                                   IMAGE).image)
    lighting = tf.reshape(
        tf.constant(np.r_[[0.8, 0.0, 0.3], np.zeros(6)] * np.ones([3, 1]),
                    tf.float32), [1, 27])
    images = tf.random.uniform([1, IMAGE[0], IMAGE[1], 3], seed=3)
    out = rec.from_coarse_face(images, face, pose, lighting, pad='never')
    self.assertEqual(out.network_input.shape, (1, UV, UV, 6))
    _, _, visibility = rec._unwrap(images, face)  # pylint: disable=protected-access
    extra = out.network_input[..., 3:]
    self.assertAllEqual(extra * (1.0 - visibility), tf.zeros_like(extra))
    self.assertGreater(float(tf.reduce_sum(tf.abs(extra[..., 1]))), 0.0)
    # Padded: the occluded half holds the mirrored half's channels, the x
    # slope with its sign reversed.
    padded = rec.from_coarse_face(images, face, pose, lighting, pad='always')
    mirrored = rec.padding.pad(extra, pose[:, 1])
    side = symmetric_padding.occluded_side(pose[:, 1])
    replaced = tf.cast(tf.equal(rec.padding.sides[None], side[0]), tf.float32)
    self.assertGreater(float(tf.reduce_sum(replaced)), 0.0)
    self.assertAllClose(padded.network_input[..., 3:],
                        mirrored * (1.0 - 2.0 * replaced *
                                    tf.constant([0.0, 1.0, 0.0])))
    # The option travels with the checkpoint's config.
    folder = tempfile.mkdtemp(dir=self.get_temp_dir())
    tf.train.Checkpoint(network=rec.network).save(os.path.join(folder, 'ckpt'))
    detail_reconstruction.save_config(rec, folder)
    loaded, _ = detail_reconstruction.load(folder, model)
    self.assertTrue(loaded.shading_input)
    again = loaded.from_coarse_face(images, face, pose, lighting, pad='never')
    self.assertAllClose(again.displacement_uv, out.displacement_uv)


class DetailReconstructorTest(tf.test.TestCase, parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    test_utils.require_rasterizer()
    cls.model = _face_model()
    net = ri2itn.RI2ITN(UV, channels=[4] * 5, stem_channels=4)
    cls.rec = detail_reconstruction.DetailReconstructor(cls.model,
                                                        UV,
                                                        network=net,
                                                        yaw_threshold_deg=30.0)

  def _coarse(self, yaw):
    m = self.model
    verts = tf.constant(m.mean_shape[None])
    pose = tf.constant([[0.0, yaw, 0.0, 0.0, 0.0,
                         np.log(0.8 * 224.0 / 120.0)]], tf.float32)
    screen = camera.orthographic_project(verts, pose, IMAGE)
    albedo = tf.fill([1, verts.shape[1], 3], 0.6)
    render = mesh_renderer.render(screen, m.triangles, albedo, IMAGE).image
    face = types.SimpleNamespace(vertices=verts,
                                 screen_vertices=screen,
                                 albedo=albedo,
                                 image=render)
    lighting = tf.constant(np.r_[[0.8], np.zeros(8)] * np.ones([3, 1]),
                           tf.float32)
    return face, pose, tf.reshape(lighting, [1, 27])

  @parameterized.parameters((0.2, 'auto', False), (0.9, 'auto', True),
                            (-0.9, 'never', False), (0.2, 'always', True))
  def test_padding_rule_and_outputs(self, yaw, pad, expect_padded):
    face, pose, lighting = self._coarse(yaw)
    images = tf.random.uniform([1, IMAGE[0], IMAGE[1], 3], seed=3)
    out = self.rec.from_coarse_face(images, face, pose, lighting, pad=pad)
    self.assertAllEqual(out.padded, [expect_padded])
    uv_image, uv_render = self.rec.unwrap(images, face)
    if expect_padded:
      self.assertNotAllClose(out.uv_image, uv_image)
    else:
      self.assertAllEqual(out.uv_image, uv_image)
      self.assertAllEqual(out.uv_render, uv_render)
    self.assertEqual(out.displacement_uv.shape, (1, UV, UV, 1))
    self.assertEqual(out.detailed.image.shape, (1,) + IMAGE + (3,))
    self.assertAllClose(out.network_input, 2.0 * (out.uv_image - out.uv_render))
    total, terms = self.rec.loss(
        images, out, {
            'photo': 1.0,
            'smooth': 1.0,
            'disp_reg': 1.0,
            'smooth_normal': 1.0,
            'smooth_depth': 0.01,
            'disp_normal': 1e-3,
            'disp_depth': 1e-3
        })
    self.assertTrue(np.isfinite(float(total)))
    self.assertGreater(float(terms['photo']), 0.0)


class SyntheticModelTest(tf.test.TestCase):
  """__call__ from coarse coefficients (the reconstruct command's entry) and
  load() from a saved checkpoint with its config."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    import bfm  # pylint: disable=g-import-not-at-top
    from coarse import coefficients  # pylint: disable=g-import-not-at-top
    cls.model = bfm.load('synthetic')
    coeffs = coefficients.Coefficients.zeros(cls.model, 2).numpy()
    coeffs.pose[:, 1] = [0.2, -1.0]  # small pose; large pose (~57 deg)
    coeffs.pose[:, 5] = np.log(0.85)
    coeffs.lighting[:, 0::9] = 1.5
    cls.coeffs = coeffs
    cls.images = tf.random.uniform([2, 48, 48, 3], seed=7)

  def _reconstructor(self, **kwargs):
    net = ri2itn.RI2ITN(UV, channels=[4] * 5, stem_channels=4)
    return detail_reconstruction.DetailReconstructor(self.model,
                                                     UV,
                                                     network=net,
                                                     **kwargs)

  def test_call_from_coefficients_and_load(self):
    rec = self._reconstructor(yaw_threshold_deg=30.0)
    out = rec(self.images, self.coeffs, pad='auto')
    self.assertAllEqual(out.padded, [False, True])
    n = rec.applier.mesh.num_vertices
    self.assertEqual(out.detailed.vertices.shape, (2, n, 3))
    self.assertEqual(out.detailed.image.shape, (2, 48, 48, 3))
    self.assertGreater(float(tf.reduce_sum(out.detailed.mask)), 100.0)
    # The coarse face is coarse/face_reconstruction's for these coefficients.
    self.assertAllClose(out.coarse.image,
                        detail_reconstruction.face_reconstruction.reconstruct(
                            self.model, self.coeffs, (48, 48)).image)
    folder = tempfile.mkdtemp(dir=self.get_temp_dir())
    path = tf.train.Checkpoint(network=rec.network).save(
        os.path.join(folder, 'ckpt'))
    detail_reconstruction.save_config(rec, folder)
    loaded, used = detail_reconstruction.load(folder,
                                              self.model,
                                              yaw_threshold_deg=30.0)
    self.assertEqual(used, path)
    again = loaded(self.images, self.coeffs, pad='auto')
    self.assertAllClose(again.displacement_uv, out.displacement_uv)
    self.assertAllClose(again.detailed.image, out.detailed.image)

  def test_feedback_chains_round_trip_through_the_config(self):
    net = ri2itn.RI2ITN(UV, channels=[4] * 5, stem_channels=4,
                        feedback_chains='per_source')
    rec = detail_reconstruction.DetailReconstructor(self.model, UV,
                                                    network=net)
    rec.build()
    x = tf.random.normal([1, UV, UV, 3], seed=9)
    folder = tempfile.mkdtemp(dir=self.get_temp_dir())
    tf.train.Checkpoint(network=rec.network).save(os.path.join(folder, 'ckpt'))
    detail_reconstruction.save_config(rec, folder)
    loaded, _ = detail_reconstruction.load(folder, self.model)
    self.assertEqual(loaded.network.feedback_chains, 'per_source')
    self.assertAllClose(loaded.network(x), rec.network(x))
    # A config written before the option holds a per-pair network: loading
    # it as such refuses this per-source checkpoint, naming it.
    config = os.path.join(folder, detail_reconstruction.CONFIG_FILE)
    with open(config) as f:
      cfg = json.load(f)
    del cfg['feedback_chains']
    with open(config, 'w') as f:
      json.dump(cfg, f)
    with self.assertRaisesRegex(ValueError, 'does not hold this RI2ITN'):
      detail_reconstruction.load(folder, self.model)

  def test_restore_errors_name_the_checkpoint(self):
    rec = self._reconstructor()
    empty = tempfile.mkdtemp(dir=self.get_temp_dir())
    with self.assertRaisesRegex(FileNotFoundError, re.escape(empty)):
      rec.restore(empty)
    with self.assertRaisesRegex(FileNotFoundError, 'detail_config.json'):
      folder = tempfile.mkdtemp(dir=self.get_temp_dir())
      tf.train.Checkpoint(network=rec.network).save(
          os.path.join(folder, 'ckpt'))
      detail_reconstruction.load(folder, self.model)
    # A checkpoint of another architecture is refused, naming the file.
    other = ri2itn.RI2ITN(UV, channels=[4] * 3, stem_channels=4)
    other(tf.zeros([1, UV, UV, 3]))
    folder = tempfile.mkdtemp(dir=self.get_temp_dir())
    path = tf.train.Checkpoint(network=other).save(os.path.join(folder, 'c'))
    with self.assertRaisesRegex(ValueError, re.escape(path)):
      rec.restore(path)


if __name__ == '__main__':
  tf.test.main()
