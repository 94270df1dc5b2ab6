"""eval/detail_benchmark.py end to end at tiny settings, and its scores."""

import json
import os
import unittest

from absl.testing import flagsaver
import numpy as np
import tensorflow as tf

try:
  import bfm
  from detail import displacement as displacement_lib
  from eval import detail_benchmark
  from eval import detail_scoring
  from eval import detail_sets
  from tests import test_utils
except ImportError as e:  # renderer op or a stage missing
  raise unittest.SkipTest('dependency missing: %s' % e)

UV = 16
IMAGE = 32
TEST_IMAGES = 3
WRINKLES_MM = 2.0
SEED = 3


def _tiny_flags(tmp):
  """Every flag the benchmark and the detail training read, set here: in a
  whole-suite run another module may have defined them with other
  defaults."""
  return dict(
      bfm='synthetic', paper_scale=False,
      detail_benchmark_seed=SEED, detail_benchmark_image_size=IMAGE,
      detail_benchmark_uv_size=UV, detail_benchmark_train_images=4,
      detail_benchmark_test_images=TEST_IMAGES,
      detail_benchmark_wrinkles_mm=WRINKLES_MM,
      detail_benchmark_small_max_yaw=30.0,
      detail_benchmark_large_yaw=['45', '90'],
      detail_benchmark_steps=2, detail_benchmark_large_steps=1,
      detail_benchmark_batch_size=2, detail_benchmark_learning_rate=1e-3,
      detail_benchmark_rows=list(detail_benchmark.ROWS),
      detail_benchmark_reuse_runs=False,
      detail_benchmark_cache_dir=os.path.join(tmp, 'cache'),
      detail_benchmark_lowpass_texels=4.0,
      detail_benchmark_eval_batch_size=2,
      detail_benchmark_figure_faces=1,
      detail_benchmark_results_dir=os.path.join(tmp, 'results'),
      detail_benchmark_name='tiny',
      detail_benchmark_channels=['4'] * 4, ri2itn_stem_channels=4,
      ri2itn_feedback_chains='per_pair', ri2itn_input_mode='difference',
      ri2itn_shading_input=False,
      detail_displacement_scale_mm=WRINKLES_MM, detail_photo_skin_mask=True,
      large_pose_yaw_threshold_deg=30.0)


class DetailScoringTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    test_utils.require_rasterizer()
    cls.model = bfm.load('synthetic')
    cls.applier = displacement_lib.DisplacementApplier(cls.model, UV)

  def test_true_map_scores_zero_and_a_shift_is_not_detail(self):
    data = detail_sets.make_set(self.model, self.applier, 5, 2, IMAGE, 0.0,
                                30.0, WRINKLES_MM)
    truth = detail_scoring.truth(self.applier, data['vertices'],
                                 data['maps'], WRINKLES_MM)
    weights = tf.ones([2, self.applier.mesh.num_vertices])
    exact = detail_scoring.score(self.applier, truth, truth.displacement,
                                 weights, 2.0)
    for metric in detail_scoring.METRICS:
      self.assertAllClose(exact[metric], [0.0, 0.0], atol=1e-4)
    # A constant 0.5 mm offset over the whole face: 0.5 mm displacement
    # error, but no detail error away from nothing (the low-pass keeps a
    # constant), and flat normals stay flat: small normal error.
    shifted = detail_scoring.score(self.applier, truth,
                                   truth.displacement + 0.5, weights, 2.0)
    self.assertAllClose(shifted['disp_mae_mm'], [0.5, 0.5], atol=1e-4)
    self.assertAllClose(shifted['detail_mae_mm'], [0.0, 0.0], atol=1e-3)

  def test_regions_split_the_face_by_yaw(self):
    sides = detail_benchmark_sides(self.model)
    yaw = tf.constant(np.deg2rad([60.0, -60.0]), tf.float32)
    visible = detail_scoring.region_weights(self.applier, sides, yaw,
                                            'visible').numpy()
    occluded = detail_scoring.region_weights(self.applier, sides, yaw,
                                             'occluded').numpy()
    self.assertEqual(np.max(visible + occluded), 1.0)  # disjoint
    # Opposite yaws swap the halves.
    self.assertAllEqual(visible[0], occluded[1])
    self.assertGreater(visible[0].sum(), 0.3 * visible.shape[1])
    with self.assertRaisesRegex(ValueError, 'region must be one of'):
      detail_scoring.region_weights(self.applier, sides, yaw, 'left')


def detail_benchmark_sides(model):
  from detail import symmetric_padding
  return symmetric_padding.side_map(model, UV)


class DetailBenchmarkTest(test_utils.FlagsTestCase):

  def test_tiny_benchmark_end_to_end(self):
    test_utils.require_rasterizer()
    tmp = self.create_tempdir().full_path
    with flagsaver.flagsaver(**_tiny_flags(tmp)):
      detail_benchmark.main(['detail_benchmark.py'])
      configs = {}
      for name in ('large_no_padding', 'large_padding'):
        with open(os.path.join(detail_benchmark.stage_folder(name),
                               'detail_config.json')) as f:
          configs[name] = json.load(f)
    # The ablation run trained without the padding, the other with it
    # (detail/train.py records only the non-default).
    self.assertIs(configs['large_no_padding']['large_pose_padding'], False)
    self.assertNotIn('large_pose_padding', configs['large_padding'])
    folder = os.path.join(tmp, 'results')
    for ext in ('json', 'md', 'png'):
      self.assertTrue(os.path.exists(os.path.join(folder, 'tiny.' + ext)))
    with open(os.path.join(folder, 'tiny.json')) as f:
      result = json.load(f)
    self.assertIn('command', result)
    self.assertIn('git_commit', result)
    rows = {(r['name'], r['split'], r['region']): r for r in result['rows']}
    expected = {('zero', 'small', 'all'), ('zero', 'large', 'visible'),
                ('zero', 'large', 'occluded')}
    expected |= {(n, 'small', 'all') for n in ('t1', 't2', 't2_unshared',
                                                't3')}
    expected |= {(n, 'large', r) for n in ('large_as_is', 'large_no_padding',
                                           'large_padding')
                 for r in ('visible', 'occluded')}
    self.assertEqual(set(rows), expected)
    for row in result['rows']:
      for key in ('label', 'split', 'region', 'disp_mae_mm', 'detail_mae_mm',
                  'normal_err_deg', 'train_s', 'params'):
        self.assertIn(key, row)
      self.assertLen(row['per_image']['disp_mae_mm'], TEST_IMAGES)
    # The zero row: mean |true displacement| over the face, computed here
    # from the known maps with NumPy (texel values x amplitude x the detail
    # mask, averaged over the face texels of each image, then the images).
    model = bfm.load('synthetic')
    applier = displacement_lib.DisplacementApplier(model, UV)
    for split, seed, low, high in (('small', SEED + 1001, 0.0, 30.0),):
      data = detail_sets.make_set(model, applier, seed, TEST_IMAGES, IMAGE,
                                  low, high, WRINKLES_MM)
      rows_idx, cols_idx = np.nonzero(applier.face_uv_mask)
      mask = np.asarray(applier.detail_mask)[:, 0]
      self.assertLen(mask, len(rows_idx))
      true = np.abs(data['maps'][:, rows_idx, cols_idx, 0] * WRINKLES_MM *
                    mask[None])
      self.assertGreater(true.mean(), 0.01)
      self.assertAllClose(rows[('zero', split, 'all')]['disp_mae_mm'],
                          true.mean(axis=1).mean(), rtol=1e-4)
    # Parameter counts: unshared t = 2 holds one more encoder-decoder than
    # shared t = 2 (= the t = 1 network, which has no fusion layer); t = 3
    # shared adds one fusion weight to t = 2 shared.
    p = {n: rows[(n, 'small', 'all')]['params']
         for n in ('t1', 't2', 't2_unshared', 't3')}
    self.assertGreater(p['t1'], 0)
    self.assertEqual(p['t2_unshared'] - p['t2'], p['t1'])
    self.assertEqual(p['t3'] - p['t2'], 1)
    self.assertEqual(rows[('zero', 'small', 'all')]['params'], 0)
    for name in ('t1', 't2', 'large_padding'):
      key = (name, 'small' if name[0] == 't' else 'large',
             'all' if name[0] == 't' else 'occluded')
      self.assertGreater(rows[key]['train_s'], 0.0)
    # Paired differences: mean of per-image differences = difference of the
    # row means, with a finite interval.
    pair = [x for x in result['paired'] if x['row'] == 't2' and
            x['baseline'] == 'zero' and x['metric'] == 'disp_mae_mm']
    self.assertLen(pair, 1)
    self.assertAllClose(pair[0]['mean'],
                        rows[('t2', 'small', 'all')]['disp_mae_mm'] -
                        rows[('zero', 'small', 'all')]['disp_mae_mm'],
                        atol=1e-6)
    self.assertTrue(np.isfinite(pair[0]['half_width_95']))
    self.assertTrue(any(x['row'] == 'large_padding' and
                        x['baseline'] == 'large_no_padding'
                        and x['region'] == 'occluded'
                        for x in result['paired']))
    # The picture: one line per face and split, input + zero + 4 networks +
    # truth columns on the small-pose lines.
    import cv2  # pylint: disable=g-import-not-at-top
    png = cv2.imread(os.path.join(folder, 'tiny.png'))
    self.assertEqual(png.shape[0], 2 * IMAGE)
    self.assertEqual(png.shape[1], 7 * IMAGE)
    with open(os.path.join(folder, 'tiny.md')) as f:
      text = f.read()
    self.assertIn('RI2ITN t = 2, shared weights', text)
    self.assertIn('large-pose network with symmetric padding', text)

  def test_bad_row_name_is_named(self):
    tmp = self.create_tempdir().full_path
    with flagsaver.flagsaver(**dict(_tiny_flags(tmp),
                                    detail_benchmark_rows=['t2', 't9'])):
      with self.assertRaisesRegex(ValueError, '--detail_benchmark_rows'):
        detail_benchmark.check_settings()


if __name__ == '__main__':
  tf.test.main()
