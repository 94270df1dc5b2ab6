"""Real training runs of coarse/train.py at 32 px with a 1/16-width VGG.

Also the training folder's guarantees (coarse/training_loop.py, shared with
the detail stage): config checks before any write, steps behind the folder,
a truncated newest checkpoint, Ctrl-C, corrupt TFRecord shards, and
coarse_model.load of a folder whose config does not fit.
"""

import contextlib
import io
import json
import os
from unittest import mock

from absl import flags
from absl.testing import flagsaver
import numpy as np
import tensorflow as tf

import bfm
from coarse import coarse_model
from coarse import losses
from coarse import training_loop
from coarse import train as coarse_train
from preprocess import face_records
from tests import test_utils

FLAGS = flags.FLAGS


def _settings(log_dir, **extra):
  base = dict(bfm='synthetic', data=None, sam_config='our', image_size=32,
              vgg_width=1.0 / 16, vgg_input_size=None, vgg_weights=None,
              init_checkpoint=None, batch_size=2, num_images=2, seed=0,
              learning_rate=1e-3, log_every=10, image_every=10,
              save_every=10, log_dir=log_dir)
  base.update(extra)
  return base


class CoarseTrainTest(test_utils.FlagsTestCase):

  def test_log_dir_default_survives_absl_logging(self):
    # absl.logging defines its own --log_dir (default ''): ours must win, or
    # a run without --log_dir would write checkpoints to ''.
    self.assertEqual(FLAGS['log_dir'].default, 'results/coarse')
    self.assertIn('checkpoints', FLAGS['log_dir'].help)

  def test_pretraining_steps_default(self):
    # --steps unset: 200,000 for the no-SAM pre-training (paper appendix C),
    # 250 for a SAM run; an explicit --steps wins.
    for config, steps, want in (('none', None, 200000), ('our', None, 250),
                                ('none', 7, 7)):
      log_dir = self.create_tempdir().full_path
      with flagsaver.flagsaver(**_settings(log_dir, steps=steps,
                                           sam_config=config)):
        loop = coarse_train.CoarseTraining(bfm.load('synthetic'))
      self.assertEqual(loop.settings.steps, want, config)

  def test_same_seed_same_run(self):
    # --seed covers the network initialisation: two one-step runs with the
    # same seed save identical weights, another seed different ones.
    values = []
    for seed in (3, 3, 4):
      log_dir = self.create_tempdir().full_path
      with flagsaver.flagsaver(**_settings(log_dir, steps=1, seed=seed,
                                           save_every=1)):
        coarse_train.train()
      values.append(test_utils.network_weights(log_dir))
    self.assertNotEmpty(values[0])
    for name, value in values[0].items():
      self.assertAllEqual(value, values[1][name], msg=name)
    self.assertTrue(any(not np.array_equal(v, values[2][k])
                        for k, v in values[0].items()))

  def test_loss_falls_and_resume_continues(self):
    log_dir = self.create_tempdir().full_path
    with flagsaver.flagsaver(**_settings(log_dir, steps=30)):
      with self.assertLogs('absl', 'WARNING') as logs:
        first = coarse_train.train()
    # Without --vgg_weights the identity loss is off, said once.
    off = [r for r in logs.output if 'identity loss' in r]
    self.assertLen(off, 1)
    self.assertIn('OFF', off[0])
    self.assertLen(first, 30)
    self.assertTrue(np.all(np.isfinite(first)))
    # The training set is one batch of two faces: its loss must fall.
    self.assertLess(np.mean(first[-5:]), 0.7 * np.mean(first[:5]))
    self.assertEqual(tf.train.latest_checkpoint(log_dir),
                     os.path.join(log_dir, 'ckpt-30'))
    self.assertTrue(tf.io.gfile.glob(os.path.join(log_dir, 'events.out.*')))
    # Resume: --steps=34 runs steps 31..34 from the saved weights.
    with flagsaver.flagsaver(**_settings(log_dir, steps=34)):
      with self.assertLogs('absl', 'INFO') as logs:
        more = coarse_train.train()
    self.assertTrue(any('Resumed from %s at step 30' %
                        os.path.join(log_dir, 'ckpt-30') in r
                        for r in logs.output))
    self.assertLen(more, 4)
    # It continues at the trained loss level, not at the initial one.
    self.assertLess(more[0], 0.7 * np.mean(first[:5]))
    self.assertEqual(tf.train.latest_checkpoint(log_dir),
                     os.path.join(log_dir, 'ckpt-34'))
    # Nothing left to do at --steps=34.
    with flagsaver.flagsaver(**_settings(log_dir, steps=34)):
      self.assertEqual(coarse_train.train(), [])

  def test_nan_guard_names_step_and_term_and_keeps_the_checkpoint(self):
    log_dir = self.create_tempdir().full_path
    with flagsaver.flagsaver(**_settings(log_dir, steps=3, save_every=3,
                                         sam_config='none')):
      coarse_train.train()
    saved = os.path.join(log_dir, 'ckpt-3')
    self.assertEqual(tf.train.latest_checkpoint(log_dir), saved)
    before = test_utils.network_weights(saved)
    self.assertNotEmpty(before)

    def nan_photo(images, renders, mask):
      del renders, mask
      return tf.reduce_mean(images) * np.float32(np.nan)

    with flagsaver.flagsaver(**_settings(log_dir, steps=6, save_every=1,
                                         sam_config='none')):
      with mock.patch.object(losses, 'photo_loss', nan_photo):
        with self.assertRaisesRegex(
            training_loop.NonFiniteLossError,
            r"loss term 'photo' is nan at step 4.*ckpt-3"):
          coarse_train.train()
    self.assertEqual(tf.train.latest_checkpoint(log_dir), saved)
    after = test_utils.network_weights(saved)
    self.assertEqual(sorted(before), sorted(after))
    for name in before:
      self.assertAllEqual(before[name], after[name], msg=name)
    self.assertFalse(tf.io.gfile.glob(os.path.join(log_dir, 'ckpt-4*')))

  def test_init_checkpoint_starts_the_network_and_must_match_it(self):
    source = self.create_tempdir().full_path
    with flagsaver.flagsaver(**_settings(source, steps=1, sam_config='none')):
      coarse_train.train()
    # Same network: its weights start the run (learning rate 0 keeps them).
    same = self.create_tempdir().full_path
    with flagsaver.flagsaver(**_settings(same, steps=1, sam_config='none',
                                         learning_rate=0.0,
                                         min_learning_rate=0.0,
                                         init_checkpoint=source)):
      coarse_train.train()
    want = test_utils.network_weights(os.path.join(source, 'ckpt-1'))
    got = test_utils.network_weights(os.path.join(same, 'ckpt-1'))
    self.assertEqual(sorted(want), sorted(got))
    for name in want:
      self.assertAllEqual(want[name], got[name], msg=name)
    wider = self.create_tempdir().full_path
    with flagsaver.flagsaver(**_settings(wider, steps=1, sam_config='none',
                                         vgg_width=1.0 / 8,
                                         init_checkpoint=source)):
      with self.assertRaisesRegex(ValueError, '--init_checkpoint: .*ckpt-1'):
        coarse_train.train()


  def _folder_state(self, log_dir):
    with open(os.path.join(log_dir, coarse_model.CONFIG_FILE), 'rb') as f:
      return sorted(os.listdir(log_dir)), f.read()

  def test_folder_settings_are_checked_before_anything_is_written(self):
    log_dir = self.create_tempdir().full_path
    with flagsaver.flagsaver(**_settings(log_dir, steps=1, sam_config='none')):
      coarse_train.train()
    state = self._folder_state(log_dir)
    config = json.loads(state[1])
    self.assertEqual(config['face_model'], 'synthetic')
    self.assertEqual(config['sam_config'], 'none')
    for change, name in (({'sam_config': 'our'}, 'sam_config'),
                         ({'init_checkpoint': log_dir}, 'init_checkpoint'),
                         ({'vgg_width': 1.0 / 8}, 'width')):
      with flagsaver.flagsaver(**_settings(log_dir, steps=2,
                                           **dict({'sam_config': 'none'},
                                                  **change))):
        with self.assertRaisesRegex(
            training_loop.ConfigMismatchError,
            r'^coarse/train.py: %s holds a run with other settings \(%s: '
            r'folder .*, this run .*\); give the same settings .* another '
            r'--log_dir' % (log_dir, name)) as error:
          coarse_train.train()
      self.assertNotIn('\n', str(error.exception))
      self.assertEqual(self._folder_state(log_dir), state)
    # Fewer steps than the folder holds: an error unless allowed.
    with flagsaver.flagsaver(**_settings(log_dir, steps=0, sam_config='none')):
      with self.assertRaisesRegex(training_loop.StepsError,
                                  'holds step 1, beyond --steps=0'):
        coarse_train.train()
    with flagsaver.flagsaver(**_settings(log_dir, steps=0, sam_config='none',
                                         allow_fewer_steps=True)):
      self.assertEqual(coarse_train.train(), [])
    self.assertEqual(self._folder_state(log_dir), state)

  def test_truncated_checkpoint_falls_back_and_ctrl_c_saves(self):
    log_dir = self.create_tempdir().full_path
    with flagsaver.flagsaver(**_settings(log_dir, steps=2, save_every=1,
                                         sam_config='none')):
      coarse_train.train()
    data_file, = tf.io.gfile.glob(os.path.join(log_dir, 'ckpt-2.data-*'))
    with open(data_file, 'r+b') as f:
      f.truncate(os.path.getsize(data_file) // 2)
    calls = []
    original = coarse_train.CoarseTraining._fetch  # pylint: disable=protected-access

    def interrupt_third(loop):
      calls.append(1)
      if len(calls) == 3:
        raise KeyboardInterrupt
      return original(loop)

    with flagsaver.flagsaver(**_settings(log_dir, steps=9, save_every=100,
                                         sam_config='none')):
      with mock.patch.object(coarse_train.CoarseTraining, '_fetch',
                             interrupt_third):
        with self.assertLogs('absl', 'INFO') as logs:
          stderr = io.StringIO()
          with contextlib.redirect_stderr(stderr):
            with self.assertRaises(SystemExit) as exit_:
              coarse_train.main(['train.py'])
    text = '\n'.join(logs.output)
    self.assertRegex(text, r'ckpt-2 is unreadable')
    self.assertIn('resuming from %s' % os.path.join(log_dir, 'ckpt-1'), text)
    self.assertIn('Resumed from %s at step 1' % os.path.join(log_dir, 'ckpt-1'),
                  text)
    # Steps 2 and 3 ran, the third batch was interrupted: step 3 is saved
    # and the exit is one line, no traceback.
    self.assertEqual(exit_.exception.code, 130)
    self.assertEqual(
        stderr.getvalue(), 'coarse/train.py: interrupted after step 3; saved '
        '%s. Run the same command again to resume.\n' %
        os.path.join(log_dir, 'ckpt-3'))
    self.assertEqual(tf.train.latest_checkpoint(log_dir),
                     os.path.join(log_dir, 'ckpt-3'))

  def _shards(self, folder, truncate_last):
    rng = np.random.RandomState(0)
    paths = []
    for shard in range(2):
      path = os.path.join(folder, 'faces-%d.tfrecord' % shard)
      with tf.io.TFRecordWriter(path) as writer:
        for k in range(2):
          writer.write(face_records.serialize(
              rng.randint(0, 256, [32, 32, 3]).astype(np.uint8),
              rng.uniform(0, 32, [68, 2]).astype(np.float32),
              np.full([32, 32], 255, np.uint8), 'face%d.png' % k))
      paths.append(path)
    with open(paths[-1], 'r+b') as f:
      f.truncate(os.path.getsize(paths[-1]) - truncate_last)
    return paths

  def test_corrupt_shard_is_named_and_its_bad_records_can_be_skipped(self):
    data = self.create_tempdir().full_path
    _, bad = self._shards(data, truncate_last=100)
    log_dir = self.create_tempdir().full_path
    with flagsaver.flagsaver(**_settings(log_dir, steps=1, sam_config='none',
                                         data=data)):
      with self.assertRaisesRegex(
          training_loop.BadRecordsError,
          r'^--data: unreadable record in %s \(1 bad record: .*\); .*'
          r'--skip_bad_records' % bad):
        coarse_train.train()
    with self.assertLogs('absl', 'WARNING') as logs:
      dataset, _ = training_loop.record_dataset(data, 32, 3, seed=0,
                                                skip_bad_records=True)
    batches = iter(dataset)
    self.assertRegex('\n'.join(logs.output),
                     r'skipped 1 unreadable record\(s\), kept 3: %s' % bad)
    for _ in range(3):
      images, landmarks, masks = next(batches)
      self.assertEqual(images.shape, (3, 32, 32, 3))
      self.assertEqual(landmarks.shape, (3, 68, 2))
      self.assertEqual(masks.shape, (3, 32, 32, 1))

  def _records(self, folder, shapes):
    """Two 32-px records; with `shapes`, each carries that ground-truth
    mesh ([2,V,3] mm)."""
    rng = np.random.RandomState(1)
    path = os.path.join(folder, 'faces.tfrecord')
    with tf.io.TFRecordWriter(path) as writer:
      for k in range(2):
        writer.write(face_records.serialize(
            rng.randint(0, 256, [32, 32, 3]).astype(np.uint8),
            rng.uniform(8, 24, [68, 2]).astype(np.float32),
            np.full([32, 32], 255, np.uint8), 'face%d.png' % k,
            shape=None if shapes is None else shapes[k]))
    return path

  def test_vertex_loss_learns_the_records_meshes(self):
    """With only the supervised term on, training fits the two records'
    ground-truth meshes (the augmentation's mirroring: test_coarse_
    augmentation.py)."""
    model = bfm.load('synthetic')
    rng = np.random.RandomState(2)
    shapes = np.asarray(model.vertices(
        rng.normal(size=[2, model.num_id]).astype(np.float32)))
    data = self.create_tempdir().full_path
    self._records(data, shapes)
    log_dir = self.create_tempdir().full_path
    off = {'coarse_%s_weight' % k: 0.0 for k in losses.DEFAULT_WEIGHTS}
    with flagsaver.flagsaver(**_settings(
        log_dir, steps=40, sam_config='none', data=data, learning_rate=3e-3,
        coarse_augment=False, **dict(off, coarse_vertex_weight=1.0))):
      totals = coarse_train.train()
    mean = np.asarray(model.mean_shape)[None]
    start = np.mean(np.sum((shapes - mean)**2, -1))  # the first prediction
    self.assertAllClose(totals[0], start, rtol=0.05)
    self.assertLess(np.mean(totals[-5:]), 0.5 * start)

  def test_vertex_loss_refuses_records_without_meshes(self):
    data = self.create_tempdir().full_path
    path = self._records(data, None)
    log_dir = self.create_tempdir().full_path
    with flagsaver.flagsaver(**_settings(log_dir, steps=1, sam_config='none',
                                         data=data, coarse_vertex_weight=1.0)):
      with self.assertRaisesRegex(
          training_loop.UsageError,
          r'--coarse_vertex_weight=1 needs records with the ground-truth mesh '
          r"of the 'synthetic' model .* but %s has none" % path):
        coarse_train.train()
    self.assertEmpty(tf.io.gfile.glob(os.path.join(log_dir, 'ckpt-*')))

  def test_coarse_model_load_names_the_config_that_does_not_fit(self):
    folder = self.create_tempdir().full_path
    model = bfm.load('synthetic')
    net = coarse_model.CoarseModel(model, 32, 1.0 / 16)
    net(tf.zeros([1, 32, 32, 3]))
    coarse_model.save_config(net, folder)
    tf.train.Checkpoint(network=net).save(os.path.join(folder, 'ckpt'))
    self.assertIsNotNone(coarse_model.load(folder, model))
    config_path = os.path.join(folder, coarse_model.CONFIG_FILE)
    with open(config_path) as f:
      config = json.load(f)
    for change, cause in (({'face_model': 'sfm'}, "face model 'sfm'"),
                          ({'coefficients': dict(config['coefficients'],
                                                 identity=80)},
                           'predicts coefficients'),
                          ({'width': 1.0 / 8}, 'does not hold the network')):
      with open(config_path, 'w') as f:
        json.dump(dict(config, **change), f)
      with self.assertRaisesRegex(ValueError, cause) as error:
        coarse_model.load(folder, model)
      self.assertIn(coarse_model.CONFIG_FILE, str(error.exception))
      self.assertNotIn('\n', str(error.exception))


if __name__ == '__main__':
  tf.test.main()
