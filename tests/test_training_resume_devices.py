"""A training folder resumes with another number of devices (issue 15).

coarse/training_loop.py writes one checkpoint (the chief's) whatever the
number of replicas. Here a checkpoint saved by 2 replicas (--strategy=
mirrored over 2 logical CPU devices) is resumed by one device, and a
checkpoint saved by one device is resumed by 2 replicas; both must restore
the weights, the Adam slots and iteration and the step counter, and take
the next step that an uninterrupted single-device run takes.

The runs train with Chen20's augmentation (--coarse_augment, the default)
on a 6-face synthetic set in global batches of 4, so the stop falls in the
middle of the second epoch: the resumed run must read the same faces, in
the same order, with the same colour/flip/scale draws as the uninterrupted
run (training_loop.example_stream, augmentation.augment_dataset).

The host CPU can only be split before TensorFlow sets up its devices, so
the five tiny coarse/train.py runs (Chen20 losses, 32 px, 1/16-width VGG)
happen in one child process (`_train_runs`); this process compares what
they saved.
"""

import os
import re
import shutil
import tempfile

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tests import test_utils

STEPS = 3
RESUME_AT = 2
# The stop after RESUME_AT steps falls inside the second pass over the set.
NUM_IMAGES = 6
BATCH = 4
# Checkpoint values of 2 replicas against one device: float32 summation
# order (measured: at most 2.6e-6 apart after 3 steps). A resume that drops
# the Adam moments, or only the iteration count, puts the weights of step 3
# 1.8e-3 / 5.7e-4 away from the reference (measured), 50-180x this.
ATOL = 1e-5
RTOL = 1e-5
# (folder, [(strategy, --steps), ...]): the reference runs without a stop;
# the others stop at RESUME_AT and resume with the other number of devices.
RUNS = (('reference', [('default', STEPS)]),
        ('two_then_one', [('mirrored', RESUME_AT), ('default', STEPS)]),
        ('one_then_two', [('default', RESUME_AT), ('mirrored', STEPS)]))
RESUMED = (('two_replicas_then_one', 'two_then_one'),
           ('one_device_then_two', 'one_then_two'))


def _train_runs(root):
  """Runs RUNS in folders under `root` (the child process's work).

  Every run is a fresh coarse/train.py training (new network, optimizer and
  tf.functions, restored from the folder) in this process, which is split
  into 2 logical CPU devices before its first run.
  """
  from absl import flags  # pylint: disable=g-import-not-at-top
  from absl import logging  # pylint: disable=g-import-not-at-top
  from absl.testing import flagsaver  # pylint: disable=g-import-not-at-top
  from coarse import train as coarse_train  # pylint: disable=g-import-not-at-top
  flags.FLAGS.mark_as_parsed()
  logging.set_verbosity(logging.INFO)  # 'Resumed from ...' (as app.run)
  settings = dict(bfm='synthetic', sam_config='none', image_size=32,
                  vgg_width=1.0 / 16, num_images=NUM_IMAGES,
                  batch_size=BATCH, seed=0, learning_rate=1e-3, log_every=1,
                  save_every=1, image_every=100, keep_checkpoints=STEPS,
                  num_cpu_devices=2, coarse_augment=True, data=None)
  for folder, runs in RUNS:
    for strategy, steps in runs:
      with flagsaver.flagsaver(log_dir=os.path.join(root, folder),
                               strategy=strategy, steps=steps, **settings):
        coarse_train.train()


def _checkpoint(folder, step):
  """{name: array} of every variable in <folder>/ckpt-<step>."""
  reader = tf.train.load_checkpoint(os.path.join(folder, 'ckpt-%d' % step))
  return {name: reader.get_tensor(name)
          for name in reader.get_variable_to_shape_map()
          if name != '_CHECKPOINTABLE_OBJECT_GRAPH'}


def _scalars(folder, tag):
  """{step: value} of a scalar summary in the event files of `folder`."""
  out = {}
  for path in tf.io.gfile.glob(os.path.join(folder, 'events.out.*')):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.tag == tag:
          out[event.step] = float(tf.make_ndarray(value.tensor))
  return out


class ResumeWithOtherDevicesTest(tf.test.TestCase, parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = tempfile.mkdtemp(prefix='test_training_resume_devices_')
    cls.child = test_utils.run_test_child('test_training_resume_devices',
                                          '_train_runs', cls.root)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.root, ignore_errors=True)
    super().tearDownClass()

  def setUp(self):
    super().setUp()
    self.assertEqual(self.child.returncode, 0, self.child.stderr[-3000:])

  def _folder(self, name):
    return os.path.join(self.root, name)

  @parameterized.named_parameters(*RESUMED)
  def test_resumed_from_the_stop(self, name):
    log = self.child.stderr
    self.assertIn('--strategy=mirrored: 2 replica(s)', log)
    self.assertIn('--strategy=default: 1 replica(s)', log)
    self.assertRegex(log, 'Resumed from %s at step %d' % (
        re.escape(os.path.join(self._folder(name), 'ckpt-%d' % RESUME_AT)),
        RESUME_AT))

  @parameterized.named_parameters(*RESUMED)
  def test_the_stop_saved_the_reference_state(self, name):
    # Step RESUME_AT as saved by 2 replicas or by one device: the same
    # variables (the checkpoint layout does not depend on the replicas) and
    # the same values as the uninterrupted run's.
    reference = _checkpoint(self._folder('reference'), RESUME_AT)
    self.assertIn('step/.ATTRIBUTES/VARIABLE_VALUE', reference)
    self.assertTrue(any(k.startswith('network/') for k in reference))
    self.assertTrue(any(k.startswith('optimizer/') for k in reference))
    saved = _checkpoint(self._folder(name), RESUME_AT)
    self.assertEqual(sorted(saved), sorted(reference))
    for key, value in reference.items():
      self.assertAllClose(saved[key], value, rtol=RTOL, atol=ATOL, msg=key)

  @parameterized.named_parameters(*RESUMED)
  def test_the_resumed_run_takes_the_uninterrupted_next_step(self, name):
    # The step after the resume needs the restored weights, Adam moments,
    # iteration (bias correction, learning-rate schedule) and step counter:
    # everything in ckpt-3 must match the uninterrupted run's.
    reference = _checkpoint(self._folder('reference'), STEPS)
    self.assertEqual(reference['step/.ATTRIBUTES/VARIABLE_VALUE'], STEPS)
    self.assertEqual(
        reference['optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE'], STEPS)
    # The last step moves the weights far more than the tolerance.
    before = _checkpoint(self._folder('reference'), RESUME_AT)
    moved = max(np.abs(v - before[k]).max() for k, v in reference.items()
                if k.startswith('network/'))
    self.assertGreater(moved, 50 * ATOL)
    resumed = _checkpoint(self._folder(name), STEPS)
    self.assertEqual(sorted(resumed), sorted(reference))
    for key, value in reference.items():
      self.assertAllClose(resumed[key], value, rtol=RTOL, atol=ATOL, msg=key)

  @parameterized.named_parameters(*RESUMED)
  def test_the_resumed_run_logs_the_uninterrupted_losses(self, name):
    for tag in ('loss/total', 'loss/grad_norm'):
      reference = _scalars(self._folder('reference'), tag)
      self.assertEqual(sorted(reference), list(range(1, STEPS + 1)), tag)
      logged = _scalars(self._folder(name), tag)
      self.assertEqual(sorted(logged), sorted(reference), tag)
      for step, value in reference.items():
        self.assertAllClose(logged[step], value, rtol=2e-5, atol=1e-6,
                            msg='%s step %d' % (tag, step))


if __name__ == '__main__':
  tf.test.main()
