"""Real training runs of coarse/train.py at 32 px with a 1/16-width VGG."""

import os
from unittest import mock

from absl import flags
from absl.testing import flagsaver
import numpy as np
import tensorflow as tf

from coarse import losses
from coarse import train as coarse_train

FLAGS = flags.FLAGS


def _settings(log_dir, **extra):
  base = dict(bfm='synthetic', data=None, sam_config='our', image_size=32,
              vgg_width=1.0 / 16, vgg_input_size=None, vgg_weights=None,
              init_checkpoint=None, batch_size=2, num_images=2, seed=0,
              learning_rate=1e-3, log_every=10, image_every=10,
              save_every=10, log_dir=log_dir)
  base.update(extra)
  return base


def _checkpoint_values(path):
  reader = tf.train.load_checkpoint(path)
  return {name: reader.get_tensor(name)
          for name in reader.get_variable_to_shape_map()
          if name.startswith('network/')}


class CoarseTrainTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    if not FLAGS.is_parsed():
      FLAGS.mark_as_parsed()

  def test_log_dir_default_survives_absl_logging(self):
    # absl.logging defines its own --log_dir (default ''): ours must win, or
    # a run without --log_dir would write checkpoints to ''.
    self.assertEqual(FLAGS['log_dir'].default, 'results/coarse')
    self.assertIn('checkpoints', FLAGS['log_dir'].help)

  def test_same_seed_same_run(self):
    # --seed covers the network initialisation: two one-step runs with the
    # same seed save identical weights, another seed different ones.
    values = []
    for seed in (3, 3, 4):
      log_dir = self.create_tempdir().full_path
      with flagsaver.flagsaver(**_settings(log_dir, steps=1, seed=seed,
                                           save_every=1)):
        coarse_train.train()
      values.append(_checkpoint_values(tf.train.latest_checkpoint(log_dir)))
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
    before = _checkpoint_values(saved)
    self.assertNotEmpty(before)

    def nan_photo(images, renders, mask):
      del renders, mask
      return tf.reduce_mean(images) * np.float32(np.nan)

    with flagsaver.flagsaver(**_settings(log_dir, steps=6, save_every=1,
                                         sam_config='none')):
      with mock.patch.object(losses, 'photo_loss', nan_photo):
        with self.assertRaisesRegex(
            coarse_train.NonFiniteLossError,
            r"loss term 'photo' is nan at step 4.*ckpt-3"):
          coarse_train.train()
    self.assertEqual(tf.train.latest_checkpoint(log_dir), saved)
    after = _checkpoint_values(saved)
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
    want = _checkpoint_values(os.path.join(source, 'ckpt-1'))
    got = _checkpoint_values(os.path.join(same, 'ckpt-1'))
    self.assertEqual(sorted(want), sorted(got))
    for name in want:
      self.assertAllEqual(want[name], got[name], msg=name)
    wider = self.create_tempdir().full_path
    with flagsaver.flagsaver(**_settings(wider, steps=1, sam_config='none',
                                         vgg_width=1.0 / 8,
                                         init_checkpoint=source)):
      with self.assertRaisesRegex(ValueError, '--init_checkpoint: .*ckpt-1'):
        coarse_train.train()


if __name__ == '__main__':
  tf.test.main()
