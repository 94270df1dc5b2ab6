"""eval/fit_benchmark.py end to end at a tiny size, and its render helpers."""

import json
import os
import subprocess
import sys
import tempfile

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

import bfm
from eval import fit_benchmark
from eval import textured_faces
from tests import test_utils

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEYS = ('render_model', 'fit_model', 'yaw_range', 'images', 'detected',
        'off_face', 'seconds_per_photo')


class TexturedFacesTest(tf.test.TestCase):

  def test_render_covers_the_face_and_keeps_the_background(self):
    test_utils.require_rasterizer()
    model = bfm.load('synthetic')
    background = np.full([96, 96, 3], 0.25, np.float32)
    texture = np.full([32, 32, 3], 0.7, np.float32)
    image, mask = textured_faces.render_textured(
        model, model.mean_shape, texture, (0.0, 0.3, 0.0),
        textured_faces.random_lighting(np.random.RandomState(0)), 96,
        background, hair_colour=(0.1, 0.1, 0.1))
    self.assertEqual(image.shape, (96, 96, 3))
    self.assertBetween(mask.mean(), 0.1, 0.7)
    # Corners are background; the face is lit skin, not background.
    self.assertAllClose(image[0, 0], background[0, 0], atol=1e-6)
    self.assertGreater(image[mask > 0].mean(), 0.3)

  def test_head_stand_in_is_closed_and_behind_the_face(self):
    model = bfm.load('synthetic')
    head, triangles = textured_faces.head_ellipsoid(model.mean_shape)
    # Closed: every edge is shared by exactly two triangles.
    edges = np.sort(np.concatenate([triangles[:, [0, 1]],
                                    triangles[:, [1, 2]],
                                    triangles[:, [2, 0]]]), axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    self.assertTrue(np.all(counts == 2))
    # Its front pole stays behind the nose tip.
    nose = model.mean_shape[model.landmarks68[30]]
    self.assertLess(head[:, 2].max(), nose[2])


class OnFaceTest(tf.test.TestCase):

  def test_landmarks_on_and_off_the_rendered_face(self):
    mask = np.zeros([100, 100], bool)
    mask[20:60, 30:70] = True  # the face: x 30-70, y 20-60
    on = np.stack([np.linspace(32, 68, 68), np.linspace(22, 58, 68)], 1)
    self.assertTrue(fit_benchmark.on_face(on, mask))
    # A face-like patch elsewhere: every point outside the grown box.
    self.assertFalse(fit_benchmark.on_face(on + [0.0, 45.0], mask))
    # Within the margin (10% of 40 px = 4 px) still counts, beyond does not.
    self.assertTrue(fit_benchmark.on_face(np.full([68, 2], [73.5, 40.0]),
                                          mask))
    self.assertFalse(fit_benchmark.on_face(np.full([68, 2], [74.5, 40.0]),
                                           mask))
    # Half of the points on the face is enough (a profile's hidden side).
    half = on.copy()
    half[:34] += [0.0, 45.0]
    self.assertTrue(fit_benchmark.on_face(half, mask))
    half[34] += [0.0, 45.0]
    self.assertFalse(fit_benchmark.on_face(half, mask))
    self.assertFalse(fit_benchmark.on_face(on, np.zeros_like(mask)))


class SummarizeTest(tf.test.TestCase):

  def test_paired_difference_and_its_standard_error(self):
    def record(nme, mean_face, yaw_est, yaw=20.0, sign=1):
      return {'bin': (15, 30), 'sign': sign, 'yaw_deg': yaw, 'yaw_est': yaw_est,
              'nme': nme, 'mean_face_nme': mean_face,
              'exact_points_nme': nme / 2.0}
    records = [record(2.0, 2.5, 21.0), record(3.0, 2.9, 17.0),
               record(2.2, 2.6, 20.5, sign=-1),
               {'bin': (15, 30), 'sign': 1, 'yaw_deg': 25.0,
                'failure': 'no face'}]
    rows = fit_benchmark.summarize(records, 'ict', 'sfm', 1.0)
    row = [r for r in rows if r['yaw_range'] == [15, 30]][0]
    self.assertEqual((row['images'], row['detected']), (4, 3))
    # Differences -0.5, +0.1, -0.4: mean -0.26667, sample sd 0.32146.
    self.assertAllClose(row['nme_minus_mean_face_mm'], -0.8 / 3.0)
    self.assertAllClose(row['nme_minus_mean_face_se_mm'],
                        0.321455 / np.sqrt(3.0), atol=1e-5)
    self.assertAllClose(row['exact_points_nme_mm'], 7.2 / 6.0)
    self.assertAllClose(row['yaw_error_deg_median'], 1.0)
    # One photo: a difference but no standard error.
    self.assertNotIn('nme_minus_mean_face_se_mm', row['by_sign']['-'])
    self.assertAllClose(row['by_sign']['-']['nme_minus_mean_face_mm'], -0.4)
    self.assertIn('| -0.27 ± 0.19 |',
                  fit_benchmark.markdown({
                      'bins': [row], 'command': 'c', 'git_commit': 'x' * 40,
                      'settings': {'renders': 'r'}}))


class ExactPointsTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(('sfm', 0.0), ('sfm', 35.0), ('ict', 70.0))
  def test_in_model_fit_of_exact_points_beats_the_mean_face(self, name, yaw):
    test_utils.require_data(*{'sfm': ('sfm', 'sfm_shape_3448.bin'),
                              'ict': ('ict', 'ict_face.npz')}[name])
    from coarse import facemesh_correspondence  # pylint: disable=g-import-not-at-top
    from eval import protocols  # pylint: disable=g-import-not-at-top
    model = bfm.load(name)
    corr = facemesh_correspondence.for_model(model)
    rng = np.random.RandomState(3)
    identity = rng.normal(size=[1, model.num_id]).astype(np.float32)
    truth = np.asarray(model.vertices(
        identity, np.zeros([1, model.num_exp], np.float32)))[0]
    angles = np.deg2rad([10.0, yaw, -5.0])
    fit = fit_benchmark.exact_points_coefficients(corr, model, corr, truth,
                                                  angles)
    # Yaw and roll; the pitch trades off against the shape under the prior.
    self.assertAllClose(fit.pose[0, 1:3], angles[1:], atol=np.deg2rad(4.0))
    pred = np.asarray(model.vertices(fit.identity, fit.expression))[0]

    def nme(vertices):
      return protocols.nme(truth, truth[model.keypoints7], vertices,
                           model.triangles, vertices[model.keypoints7]
                           ).distances.mean()

    # A random identity: exact points under the production weights and
    # prior recover part of its difference from the mean face.
    self.assertLess(nme(pred), 0.9 * nme(model.mean_shape))


class EndToEndTest(tf.test.TestCase):

  def test_tiny_run_writes_the_documented_json(self):
    test_utils.require_rasterizer()
    test_utils.require_data('faces', 'celeba_sample')
    test_utils.require_data('sfm', 'sfm_shape_3448.bin')
    out = tempfile.mkdtemp(dir=self.get_temp_dir())
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', CUDA_VISIBLE_DEVICES='',
               PYTHONPATH=REPO)
    run = subprocess.run(
        [sys.executable, os.path.join(REPO, 'eval', 'fit_benchmark.py'),
         '--fit_benchmark_pairs=sfm:sfm', '--fit_benchmark_images_per_bin=1',
         '--fit_benchmark_image_size=256', '--fit_detail_steps=1',
         '--fit_uv_size=32', '--fit_benchmark_out=' + out],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
        check=False)
    self.assertEqual(run.returncode, 0, run.stderr[-3000:])
    with open(os.path.join(out, 'fit_benchmark.json')) as f:
      result = json.load(f)
    self.assertLen(result['bins'], 6)
    self.assertIn('--fit_benchmark_pairs=sfm:sfm', result['command'])
    for row in result['bins']:
      for key in KEYS:
        self.assertIn(key, row)
      self.assertEqual(row['images'], 2)
      self.assertBetween(row['detected'], 0, 2)
      self.assertBetween(row['off_face'], 0, 2 - row['detected'])
      if row['detected']:
        self.assertGreater(row['nme_mm'], 0.0)
        self.assertGreater(row['mean_face_nme_mm'], 0.0)
        self.assertAllClose(row['nme_minus_mean_face_mm'],
                            row['nme_mm'] - row['mean_face_nme_mm'])
        self.assertGreater(row['exact_points_nme_mm'], 0.0)
    self.assertTrue(os.path.isfile(os.path.join(out, 'fit_benchmark.md')))


if __name__ == '__main__':
  tf.test.main()
