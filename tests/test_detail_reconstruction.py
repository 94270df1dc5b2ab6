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
  from detail import ri2itn
  from renderer import camera
  from renderer import mesh_renderer
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
