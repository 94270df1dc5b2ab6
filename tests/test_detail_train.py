"""Training smoke test for detail/train.py at 64^2 UV (small RI2ITN widths)."""

import contextlib
import io
import os
import unittest

from absl.testing import flagsaver
import numpy as np
import tensorflow as tf

try:
  import bfm
  from coarse import training_loop
  from detail import train as detail_train
  from tests import test_utils
except ImportError as e:  # bfm/, renderer/ or coarse/ not written yet
  raise unittest.SkipTest('dependency missing: %s' % e)


def _settings(tmp, **extra):
  base = dict(bfm='synthetic',
              detail_image_size=64,
              detail_uv_size=64,
              batch_size=2,
              num_images=2,
              ri2itn_channels=['8'] * 6,
              ri2itn_stem_channels=4,
              learning_rate=1e-3)
  base.update(detail_dir=tmp,
              log_every=1,
              image_every=1000,
              save_every=1000,
              coarse_checkpoint=None)
  base.update(extra)
  return base


class DetailTrainTest(test_utils.FlagsTestCase):

  def test_loss_falls_resume_and_large_pose_init(self):
    tmp = self.create_tempdir().full_path
    with flagsaver.flagsaver(**_settings(tmp, steps=6)):
      history = detail_train.train()
    self.assertLen(history, 6)
    self.assertTrue(np.all(np.isfinite(history)))
    # The training set is one fixed batch (--num_images = batch size):
    # the loss on it must fall.
    self.assertLess(history[-1], history[0])
    small_dir = os.path.join(tmp, 'small_pose')
    self.assertIsNotNone(tf.train.latest_checkpoint(small_dir))
    self.assertTrue(os.path.exists(os.path.join(small_dir, 'detail_step6.obj')))
    # Resume: asking for 8 steps continues from step 6 (2 more steps).
    with flagsaver.flagsaver(**_settings(tmp, steps=8)):
      history = detail_train.train()
    self.assertLen(history, 2)
    resumed = tf.train.latest_checkpoint(small_dir)
    self.assertEndsWith(resumed, 'ckpt-8')
    # NaN guard: a NaN loss stops the run before the update and names the
    # last good checkpoint, which stays the latest.
    with flagsaver.flagsaver(
        **_settings(tmp, steps=10, detail_photo_weight=float('nan'))):
      with self.assertRaisesRegex(training_loop.NonFiniteLossError,
                                  'step 9.*ckpt-8'):
        detail_train.train()
    self.assertEqual(tf.train.latest_checkpoint(small_dir), resumed)
    # Resuming with another RI2ITN: the script's own one-line message, the
    # folder's config unchanged.
    config = os.path.join(small_dir, 'detail_config.json')
    with open(config, 'rb') as f:
      before = f.read()
    with flagsaver.flagsaver(
        **_settings(tmp, steps=10, ri2itn_channels=['4'] * 6)):
      with self.assertRaisesRegex(
          training_loop.ConfigMismatchError,
          r'^detail/train.py: %s holds a run with other settings \(channels: '
          r'folder \[8, .*\], this run \[4, .*\]\); .*--detail_dir' %
          small_dir):
        detail_train.train()
    with open(config, 'rb') as f:
      self.assertEqual(f.read(), before)
    # --large_pose starts from the small-pose weights.
    with flagsaver.flagsaver(**_settings(tmp, steps=1, large_pose=True)):
      history = detail_train.train()
    self.assertLen(history, 1)
    large = tf.train.latest_checkpoint(os.path.join(tmp, 'large_pose'))
    small = tf.train.latest_checkpoint(small_dir)
    self.assertIsNotNone(large)
    # One Adam step (lr 1e-3) moves each weight by at most ~lr: the large-pose
    # network started from the small-pose weights, not a fresh initialisation.
    nets = []
    with flagsaver.flagsaver(**_settings(tmp)):
      model = bfm.load('synthetic')
      for path in (small, large):
        recon = detail_train.build_reconstructor(model)
        recon.build()  # the input's channels follow the flags
        net = recon.network
        tf.train.Checkpoint(network=net).restore(path).expect_partial()
        nets.append(net)
    self.assertGreater(len(nets[0].weights), 10)
    diffs = [
        float(np.max(np.abs(a.numpy() - b.numpy())))
        for a, b in zip(nets[0].weights, nets[1].weights)
    ]
    self.assertLess(max(diffs), 1.5e-3)
    self.assertGreater(max(diffs), 0.0)

  def test_large_pose_without_small_pose_checkpoint_says_where_it_looked(self):
    tmp = self.create_tempdir().full_path
    with flagsaver.flagsaver(**_settings(tmp, steps=1, large_pose=True)):
      with self.assertRaisesRegex(FileNotFoundError, 'small_pose'):
        detail_train.train()
      # The script: one line, no traceback, no folder left behind.
      stderr = io.StringIO()
      with contextlib.redirect_stderr(stderr):
        with self.assertRaises(SystemExit) as exit_:
          detail_train.main(['train.py'])
    self.assertEqual(exit_.exception.code, 1)
    self.assertRegex(
        stderr.getvalue(), r'^detail/train.py --large_pose needs the '
        r'small-pose RI2ITN checkpoint: .* Looked in: %s\n$' %
        os.path.join(tmp, 'small_pose'))
    self.assertEqual(os.listdir(tmp), [])


if __name__ == '__main__':
  tf.test.main()
