"""Tests of the synthetic full-pose benchmark (eval/synthetic_*.py).

Generator determinism, ground-truth meshes that re-render to the stored
images, yaw histograms against the requested distributions, NME sanity, and
a tiny end-to-end run of `python eval/synthetic_benchmark.py` (32-px images,
a few images and steps) that must produce a well-formed table.
"""

import contextlib
import io
import json
import math
import os
import unittest

from absl import flags
from absl.testing import flagsaver
from absl.testing import parameterized
import numpy as np
import tensorflow as tf

try:
  import bfm
  from coarse import coefficients
  from coarse import face_reconstruction
  from flags import benchmark_flags
  from eval import synthetic_benchmark
  from eval import synthetic_report
  from eval import synthetic_scoring
  from eval import synthetic_sets
except ImportError as e:  # a stage not written yet
  raise unittest.SkipTest('dependency missing: %s' % e)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _spec(**kw):
  base = dict(model='synthetic', seed=3, image_size=32, train_images=8,
              test_images=4, train_yaw='celeba', small_max_yaw=30.0,
              large_yaw=(45.0, 90.0))
  base.update(kw)
  return synthetic_sets.SetSpec(**base)


def _quiet(*_):
  pass


def _parse_flags():
  # tf.test.TestCase.create_tempdir reads --test_tmpdir (pytest skips absl).
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()


def _normal_cdf(x, sd):
  return 0.5 * (1.0 + math.erf(x / (sd * math.sqrt(2.0))))


class SetsTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    _parse_flags()
    cls.model = bfm.load('synthetic')

  def test_generator_is_deterministic_for_a_seed(self):
    a = synthetic_sets.generate_test_set(self.model, 5, 3, 32, 45.0, 90.0)
    b = synthetic_sets.generate_test_set(self.model, 5, 3, 32, 45.0, 90.0)
    c = synthetic_sets.generate_test_set(self.model, 6, 3, 32, 45.0, 90.0)
    self.assertEqual(sorted(a), sorted(b))
    for key in a:
      np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    self.assertGreater(np.abs(a['vertices'] - c['vertices']).max(), 1.0)
    # Whole cached sets, training TFRecords included, are byte-identical.
    spec = _spec()
    f1 = synthetic_sets.ensure_sets(self.model, spec,
                                    self.create_tempdir().full_path, _quiet)
    f2 = synthetic_sets.ensure_sets(self.model, spec,
                                    self.create_tempdir().full_path, _quiet)
    for name in ('train/train.tfrecord', 'train_yaw_deg.npy'):
      with open(os.path.join(f1, name), 'rb') as x, open(
          os.path.join(f2, name), 'rb') as y:
        self.assertEqual(x.read(), y.read(), name)
    for split in synthetic_sets.SPLITS:
      s1 = synthetic_sets.load_test_set(f1, split)
      s2 = synthetic_sets.load_test_set(f2, split)
      for key in s1:
        np.testing.assert_array_equal(s1[key], s2[key], err_msg=key)

  def test_cache_is_keyed_by_settings_and_reused(self):
    cache = self.create_tempdir().full_path
    f1 = synthetic_sets.ensure_sets(self.model, _spec(), cache, _quiet)
    stamp = os.path.getmtime(os.path.join(f1, 'test_small.npz'))
    self.assertEqual(
        synthetic_sets.ensure_sets(self.model, _spec(), cache, _quiet), f1)
    self.assertEqual(os.path.getmtime(os.path.join(f1, 'test_small.npz')),
                     stamp)
    f2 = synthetic_sets.ensure_sets(self.model, _spec(seed=4), cache, _quiet)
    self.assertNotEqual(f1, f2)
    self.assertEqual(sorted(d for d in os.listdir(cache)
                            if not d.startswith('sets-')), [])

  def test_ground_truth_meshes_rerender_to_stored_images(self):
    data = synthetic_sets.generate_test_set(self.model, 7, 4, 48, 0.0, 90.0)
    albedo = self.model.albedo(tf.constant(data['texture']))
    face = face_reconstruction.render_faces(self.model, data['vertices'],
                                            albedo, data['pose'],
                                            data['lighting'], 48)
    mask = face.mask.numpy()[..., 0] > 0.5
    stored = data['images'].astype(np.float32) / 255.0
    rendered = face.image.numpy()
    self.assertGreater(mask.sum(), 4 * 100)
    # Equal up to the uint8 rounding of the stored images.
    self.assertLessEqual(np.abs(stored - rendered)[mask].max(), 0.5 / 255 +
                         1e-6)
    np.testing.assert_allclose(face.landmarks2d.numpy(), data['landmarks'],
                               atol=1e-4)
    np.testing.assert_allclose(
        np.asarray(self.model.landmarks(data['vertices'])),
        data['landmarks3d'], atol=1e-5)
    np.testing.assert_allclose(
        np.asarray(self.model.vertices(data['identity'], data['expression'])),
        data['vertices'], atol=1e-4)
    # Another face's mesh does not match: the check can fail.
    shuffled = face_reconstruction.render_faces(
        self.model, data['vertices'][::-1], albedo, data['pose'],
        data['lighting'], 48).image.numpy()
    self.assertGreater(np.abs(stored - shuffled)[mask].max(), 0.1)

  def test_yaw_histograms_match_requested_distributions(self):
    n = 400
    spec = _spec(image_size=32, train_images=n, test_images=60,
                 train_yaw='celeba')
    folder = synthetic_sets.ensure_sets(self.model, spec,
                                        self.create_tempdir().full_path,
                                        _quiet)
    yaw = synthetic_sets.load_train_yaw(folder)
    self.assertLen(yaw, n)
    # 'celeba' = normal(0, 15 deg) clipped to +-75: expected |yaw| bin mass.
    sd = 15.0
    for low, high, count, _ in synthetic_sets.yaw_histogram(yaw):
      hi = min(high, 75.0)
      p = 0.0 if low >= 75.0 else 2 * (_normal_cdf(hi, sd) -
                                       _normal_cdf(low, sd))
      if low <= 75.0 < high:  # the clipped tail piles up at 75
        p += 2 * (1 - _normal_cdf(75.0, sd))
      tolerance = 4 * math.sqrt(n * p * (1 - p)) + 2
      self.assertLess(abs(count - n * p), tolerance, (low, high, count, p))
    for split in synthetic_sets.SPLITS:
      data = synthetic_sets.load_test_set(folder, split)
      low, high = synthetic_sets.test_yaw_ranges(spec)[split]
      magnitude = np.abs(data['yaw_deg'])
      self.assertTrue(np.all(magnitude >= low) and np.all(magnitude <= high),
                      split)
      # The stored yaw is the one the faces were rendered with.
      np.testing.assert_allclose(np.rad2deg(data['pose'][:, 1]),
                                 data['yaw_deg'], atol=1e-3)
      # Uniform |yaw|: each half of the range holds about half the images,
      # and both signs occur.
      lower = np.mean(magnitude < (low + high) / 2)
      self.assertBetween(lower, 0.5 - 4 * math.sqrt(0.25 / 60),
                         0.5 + 4 * math.sqrt(0.25 / 60))
      self.assertTrue(np.any(data['yaw_deg'] < 0) and
                      np.any(data['yaw_deg'] > 0))

  def test_uniform_range_and_bad_distribution(self):
    self.assertEqual(synthetic_sets.parse_yaw_distribution('-20:60'),
                     (-20.0, 60.0))
    for bad in ('sideways', '60:20', '0:120', 'a:b'):
      with self.assertRaisesRegex(ValueError, 'benchmark_train_yaw'):
        synthetic_sets.parse_yaw_distribution(bad)
    with self.assertRaisesRegex(ValueError, 'yaw'):
      synthetic_sets.symmetric_yaw(50.0, 40.0)

  def test_prediction_is_one_network_pass_per_image(self):
    """Scoring calls the network once per batch on exactly the test images
    (no SAM renders in the batch) and builds the mesh of that prediction."""
    model = self.model
    dim = coefficients.vector_size(model)
    calls = []

    def network(images, training=False):
      self.assertFalse(training)
      calls.append(images.numpy())
      # Identity coefficient 0 = the image's mean brightness, all else 0.
      n = int(images.shape[0])
      brightness = tf.reduce_mean(images, axis=[1, 2, 3])
      return tf.concat([brightness[:, None], tf.zeros([n, dim - 1])], 1)

    rng = np.random.RandomState(4)
    images = rng.randint(0, 256, [5, 16, 16, 3]).astype(np.uint8)
    pred = synthetic_scoring.predict_vertices(model, network, images,
                                              batch_size=2)
    self.assertEqual([c.shape[0] for c in calls], [2, 2, 1])
    np.testing.assert_allclose(np.concatenate(calls), images / 255.0,
                               atol=1e-6)
    # Expected meshes from the model's arrays: mean + a * first basis.
    a = images.reshape(5, -1).mean(1) / 255.0
    expected = (model.mean_shape[None] +
                a[:, None, None] * model.id_basis[0][None])
    np.testing.assert_allclose(pred, expected, atol=1e-3)
    self.assertIn('one network pass', synthetic_scoring.SCORING)
    self.assertIn('no SAM', synthetic_scoring.SCORING)

  def test_nme_is_zero_for_ground_truth_and_positive_for_mean_face(self):
    data = synthetic_sets.generate_test_set(self.model, 8, 3, 32, 0.0, 30.0)
    exact, _ = synthetic_scoring.score(self.model, data, data['vertices'])
    self.assertLess(exact['pooled']['mean'], 1e-6)
    mean_face, per_image = synthetic_scoring.score(
        self.model, data, synthetic_scoring.mean_face_vertices(self.model, 3))
    self.assertGreater(mean_face['pooled']['mean'], 0.1)
    self.assertLen(per_image, 3)
    with self.assertRaisesRegex(ValueError, 'do not match'):
      synthetic_scoring.score(self.model, data, data['vertices'][:2])


class TexturedFacesTest(tf.test.TestCase):
  """Photo-like faces of a statistical model (eval/synthetic_photos.py)."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    _parse_flags()
    from tests import test_utils  # pylint: disable=g-import-not-at-top
    test_utils.require_rasterizer()
    test_utils.require_data('sfm', 'sfm_shape_3448.bin')
    cls.model = bfm.load('sfm')
    # Two flat skins of distinct colours and two flat backgrounds: what a
    # pixel shows says where it came from.
    cls.skins = [np.full([64, 64, 3], c, np.float32) for c in
                 ((0.8, 0.5, 0.4), (0.6, 0.4, 0.3))]
    cls.backgrounds = [np.full([48, 48, 3], c, np.float32) for c in
                       ((0.0, 0.2, 0.9), (0.1, 0.6, 0.1))]

  def _batch(self, seed, yaw='frontal', n=4):
    from eval import synthetic_photos  # pylint: disable=g-import-not-at-top
    return synthetic_photos.sample_batch(
        self.model, n, 48, np.random.RandomState(seed), yaw, self.skins,
        self.backgrounds)

  def test_inner_landmarks_lie_on_their_own_face(self):
    """The nose and eye landmarks (27-47) of a face within 30 deg of
    frontal fall on its rendered skin (brow ends and mouth corners may sit
    on the mesh's edge, inner lips in an open mouth); moved landmarks
    mostly do not."""
    batch = self._batch(11, (-30.0, 30.0), n=6)
    self.assertEqual(batch.images.shape, (6, 48, 48, 3))
    self.assertEqual(batch.landmarks.shape, (6, 68, 2))
    self.assertEqual(batch.vertices.shape[1:], (3448, 3))

    def inside(landmarks, mask):
      px = np.clip(np.round(landmarks[27:48] - 0.5).astype(int), 0, 47)
      return mask[px[:, 1], px[:, 0]].mean()

    masks = batch.skin_masks[..., 0]
    for i in range(6):
      self.assertGreaterEqual(inside(batch.landmarks[i], masks[i]), 0.95, i)
    # Landmarks moved by 10 px and scaled about the image centre: off skin.
    moved = (batch.landmarks - 24.0) * 1.6 + 24.0 + 10.0
    self.assertLess(np.mean([inside(moved[i], masks[i]) for i in range(6)]),
                    0.7)
    # Skin pixels show a skin colour (shaded), background pixels one of the
    # backgrounds.
    far = batch.images[:, :3, :3].reshape(-1, 3)
    self.assertLess(np.min(np.abs(far[:, None] - np.asarray(
        [b[0, 0] for b in self.backgrounds])[None]).sum(-1), 1).max(), 0.05)

  def test_yaw_sign_and_ground_truth_meshes(self):
    """The stored mesh is the model's shape of the stored coefficients, and
    a positive yaw turns the face towards image right (renderer/camera.py):
    the nose tip moves right of the eye-corner midpoint."""
    batch = self._batch(12, (50.0, 60.0), n=2)
    np.testing.assert_allclose(
        np.asarray(self.model.vertices(batch.coefficients.identity,
                                       batch.coefficients.expression)),
        batch.vertices, atol=1e-3)
    self.assertTrue(np.all(batch.yaw_deg >= 50.0))
    eyes = 0.5 * (batch.landmarks[:, 36, 0] + batch.landmarks[:, 45, 0])
    self.assertTrue(np.all(batch.landmarks[:, 30, 0] > eyes + 2.0))
    turned = self._batch(12, (-60.0, -50.0), n=2)
    eyes = 0.5 * (turned.landmarks[:, 36, 0] + turned.landmarks[:, 45, 0])
    self.assertTrue(np.all(turned.landmarks[:, 30, 0] < eyes - 2.0))

  def test_generation_is_deterministic(self):
    from eval import synthetic_photos  # pylint: disable=g-import-not-at-top
    photos = [np.random.RandomState(0).uniform(size=[60, 80, 3]).astype(
        np.float32)]
    run = lambda seed: list(synthetic_photos.generate(
        self.model, seed, 3, 32, 'celeba', self.skins, photos, batch_size=2))
    a, b, c = run(1), run(1), run(2)
    self.assertEqual([len(x.images) for x in a], [2, 1])
    for x, y in zip(a, b):
      np.testing.assert_array_equal(x.images, y.images)
      np.testing.assert_array_equal(x.landmarks, y.landmarks)
    self.assertGreater(np.abs(a[0].vertices - c[0].vertices).max(), 1.0)


class ReportTest(tf.test.TestCase):

  def test_paired_differences_against_the_no_sam_row(self):
    rng = np.random.RandomState(0)
    base = rng.uniform(2, 4, 30)
    delta = rng.normal(-0.2, 0.1, 30)

    def row(config, values):
      return {'config': config, 'splits': {
          'small': {'per_image_mean': list(values)},
          'large': {'per_image_mean': list(values[::-1])}}}

    result = {'splits': ['small', 'large'],
              'rows': [row('none', base), row('our', base + delta)]}
    paired = synthetic_report.paired_differences(result)
    self.assertEqual(list(paired), ['our'])
    mean, half, n = paired['our']['small']
    self.assertAllClose(mean, delta.mean())
    self.assertAllClose(half, 1.96 * delta.std(ddof=1) / np.sqrt(30))
    self.assertEqual(n, 30)
    self.assertAllClose(paired['our']['large'][0], delta.mean())
    self.assertEqual(synthetic_report.paired_differences(
        {'splits': ['small'], 'rows': [row('our', base)]}), {})


class TrainCommandTest(tf.test.TestCase, parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    _parse_flags()

  @parameterized.parameters(0.0, 0.5)
  def test_contour_weight_reaches_every_run_and_its_cache_key(self, weight):
    tmp = self.create_tempdir().full_path
    spec = _spec()
    with flagsaver.flagsaver(benchmark_cache_dir=tmp,
                             benchmark_contour_landmark_weight=weight,
                             benchmark_sam_configs=['none', 'our'],
                             benchmark_sam_reduce=['sum'], bfm='synthetic'):
      pretrain, runs = synthetic_benchmark.plan_runs(tmp, spec)
      for run in [pretrain] + runs:
        argv = synthetic_benchmark.train_command(run, tmp)
        given = [a for a in argv
                 if a.startswith('--coarse_contour_landmark_weight=')]
        self.assertEqual(given,
                         ['--coarse_contour_landmark_weight=%r' % weight])
      other = 0.5 if weight == 0.0 else 0.0
      with flagsaver.flagsaver(benchmark_contour_landmark_weight=other):
        pretrain2, runs2 = synthetic_benchmark.plan_runs(tmp, spec)
    # A different loss is a different training run, never a reused one.
    self.assertNotEqual(pretrain.log_dir, pretrain2.log_dir)
    self.assertNotEqual([r.log_dir for r in runs], [r.log_dir for r in runs2])

  def test_decay_flags_reach_the_pretraining_only(self):
    tmp = self.create_tempdir().full_path
    with flagsaver.flagsaver(benchmark_cache_dir=tmp,
                             benchmark_pretrain_lr_decay_steps=123,
                             benchmark_pretrain_lr_decay_rate=0.7,
                             benchmark_sam_configs=['none'], bfm='synthetic'):
      pretrain, runs = synthetic_benchmark.plan_runs(tmp, _spec())
      argv = synthetic_benchmark.train_command(pretrain, tmp)
      self.assertIn('--lr_decay_steps=123', argv)
      self.assertIn('--lr_decay_rate=0.7', argv)
      argv = synthetic_benchmark.train_command(runs[0], tmp)
      self.assertEmpty([a for a in argv if a.startswith('--lr_decay')])
      with flagsaver.flagsaver(benchmark_pretrain_lr_decay_rate=0.9):
        other, _ = synthetic_benchmark.plan_runs(tmp, _spec())
    self.assertNotEqual(pretrain.log_dir, other.log_dir)

  def test_vertex_weight_reaches_the_pretraining_only(self):
    tmp = self.create_tempdir().full_path
    with flagsaver.flagsaver(benchmark_cache_dir=tmp,
                             benchmark_pretrain_vertex_weight=2.5,
                             benchmark_sam_configs=['none', 'our'],
                             benchmark_sam_reduce=['sum'], bfm='synthetic'):
      pretrain, runs = synthetic_benchmark.plan_runs(tmp, _spec())
      self.assertIn('--coarse_vertex_weight=2.5',
                    synthetic_benchmark.train_command(pretrain, tmp))
      for run in runs:  # the compared runs train as the paper
        argv = synthetic_benchmark.train_command(run, tmp)
        self.assertEmpty([a for a in argv if a.startswith('--coarse_vertex')])
      with flagsaver.flagsaver(benchmark_pretrain_vertex_weight=0.0):
        other, other_runs = synthetic_benchmark.plan_runs(tmp, _spec())
        argv = synthetic_benchmark.train_command(other, tmp)
        self.assertEmpty([a for a in argv if a.startswith('--coarse_vertex')])
      self.assertIn('--benchmark_pretrain_vertex_weight=2.5 (paper: '
                    'self-supervised pre-training, no ground-truth shape)',
                    synthetic_benchmark.shortcuts())
    # Another pre-training: every run starting from it is another run too.
    self.assertNotEqual(pretrain.log_dir, other.log_dir)
    self.assertNotEqual([r.log_dir for r in runs],
                        [r.log_dir for r in other_runs])

  @parameterized.parameters(
      ('benchmark_pretrain_vertex_weight', 0.0),
      ('benchmark_contour_landmark_weight', 0.5),
      ('benchmark_pretrain_lr_decay_steps', 2000),
      ('benchmark_pretrain_lr_decay_rate', 0.98))
  def test_paper_scale_restores_chen20_values(self, name, chen20):
    with flagsaver.flagsaver():
      flags.FLAGS[name].unparse()
      synthetic_benchmark.apply_paper_scale()
      self.assertEqual(flags.FLAGS[name].value, chen20)


class EndToEndTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    _parse_flags()

  def test_tiny_benchmark_writes_a_well_formed_table(self):
    tmp = self.create_tempdir().full_path
    results = os.path.join(tmp, 'results')
    argv = [
        os.path.join(REPO, 'eval', 'synthetic_benchmark.py'),
        '--benchmark_cache_dir=' + os.path.join(tmp, 'cache'),
        '--benchmark_results_dir=' + results,
        '--benchmark_name=tiny',
        '--benchmark_image_size=32', '--benchmark_train_images=6',
        # No pre-training: one coarse/train.py start (minutes under load)
        # less; the compared runs start from random weights.
        '--benchmark_test_images=2', '--benchmark_pretrain_steps=0',
        '--benchmark_steps=2', '--benchmark_batch_size=2',
        '--benchmark_vgg_width=0.0625', '--benchmark_eval_batch_size=2',
        # The no-download fallback (fast); both reductions, one SAM config.
        '--bfm=synthetic', '--benchmark_faces=model',
        '--benchmark_sam_configs=none,our', '--benchmark_sam_reduce=sum,mean',
    ]
    # `python eval/synthetic_benchmark.py ARGS` in this process: the command
    # line parsed by absl as app.run parses it (every flag given is
    # `present`, the others keep their defaults; all restored afterwards),
    # then the script's main with its printed output captured. Its three
    # coarse/train.py runs are still subprocesses (each start takes ~20 s on
    # idle cores and minutes on loaded ones).
    with flagsaver.flagsaver():
      for name in benchmark_flags.names():
        flags.FLAGS[name].unparse()
      leftover = flags.FLAGS(argv)
      stdout = io.StringIO()
      with contextlib.redirect_stdout(stdout):
        synthetic_benchmark.main(leftover)
    stdout = stdout.getvalue()
    with open(os.path.join(results, 'tiny_sam_mean.json')) as f:
      mean_result = json.load(f)
    with open(os.path.join(results, 'tiny.json')) as f:
      result = json.load(f)
    # One file per reduction; the w/o SAM row and references are shared.
    self.assertEqual((result['sam_reduce'], mean_result['sam_reduce']),
                     ('sum', 'mean'))
    self.assertEqual([r['config'] for r in mean_result['rows']],
                     ['none', 'our'])
    self.assertEqual(mean_result['rows'][0], result['rows'][0])
    self.assertNotEqual(mean_result['rows'][1]['log_dir'],
                        result['rows'][1]['log_dir'])
    self.assertEqual(mean_result['rows'][1]['sam_reduce'], 'mean')
    self.assertEqual(mean_result['references'], result['references'])
    self.assertEqual(result['settings']['benchmark_model'], 'synthetic')
    self.assertEqual(result['settings']['benchmark_faces_used'], 'model')
    self.assertEqual([r['config'] for r in result['rows']], ['none', 'our'])
    for row in result['rows'] + result['references']:
      for split in ('small', 'large'):
        stats = row['splits'][split]['pooled']
        self.assertTrue(np.isfinite(stats['mean']) and stats['mean'] > 0,
                        row['label'])
        self.assertTrue(np.isfinite(stats['std']), row['label'])
        self.assertLen(row['splits'][split]['per_image_mean'], 2)
    for row in result['rows']:
      self.assertGreater(row['train_wall_s'], 0)
    # Scored with one plain network pass, as the paper's inference.
    self.assertEqual(result['scoring'], synthetic_scoring.SCORING)
    self.assertTrue(any('benchmark_image_size=32' in s
                        for s in result['shortcuts']))
    with open(os.path.join(results, 'tiny.md')) as f:
      text = f.read()
    self.assertEqual(text, synthetic_report.markdown(result))
    self.assertIn(text, stdout)
    lines = text.splitlines()
    header = [i for i, l in enumerate(lines) if l.startswith('| Method')]
    self.assertLen(header, 1)
    self.assertIn('Small pose', lines[header[0]])
    self.assertIn('Large pose', lines[header[0]])
    table = lines[header[0] + 2:lines.index('', header[0])]
    self.assertEqual([l.split(' | ')[0] for l in table],
                     ['| w/o SAM', '| Our'])
    for row in table:
      self.assertRegex(row, r'^\| [^|]+ \| \d+\.\d{3}±\d+\.\d{3} \| '
                       r'\d+\.\d{3}±\d+\.\d{3} \| \d+ s \|$')
    self.assertIn('Paired per-image differences from w/o SAM', text)
    self.assertIn('Shortcuts versus the paper', text)
    self.assertIn('Scoring: one network pass, no SAM', text)
    self.assertIn('synthetic', text)
    self.assertIn('Eq. 4 as printed', text)


if __name__ == '__main__':
  tf.test.main()
