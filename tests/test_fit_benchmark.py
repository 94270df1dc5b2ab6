"""eval/fit_benchmark.py end to end at a tiny size, and its render helpers."""

import json
import os
import subprocess
import sys
import tempfile

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
    self.assertTrue(os.path.isfile(os.path.join(out, 'fit_benchmark.md')))


if __name__ == '__main__':
  tf.test.main()
