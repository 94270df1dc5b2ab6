"""A global batch that the replicas cannot share evenly (issue 15).

A stage without a tf.data pipeline (detail/train.py) hands the training loop
whole global batches from next_batch(); coarse/training_loop.py splits them
among the replicas itself. Every image must be used and each replica's
losses weighted by its own part, so that 2 replicas take the one-device
step on a batch of 5 as on a batch of 4; and a batch smaller than the
number of replicas is refused before anything is written.

The step runs in a child process (the host CPU is split into 2 logical
devices before TensorFlow sets up its devices), on a least-squares problem
with a one-layer network, once on one device and once mirrored over both.
"""

import json
import os
import shutil
import tempfile

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from coarse import training_loop

from tests import test_utils

BATCHES = (4, 5, 7)
STEPS = 2


def _settings(batch_size):
  return training_loop.Settings(
      steps=STEPS, batch_size=batch_size, lr_decay_steps=1000,
      lr_decay_rate=1.0, min_learning_rate=0.0, log_every=1, image_every=100,
      save_every=STEPS, learning_rate=0.1, grad_clip=0.0, keep_checkpoints=1,
      allow_fewer_steps=False, seed=0, strategy=None, num_cpu_devices=2)


def _problem(batch_size):
  """(inputs [B,3], targets [B,1]) float32: no example has zero error."""
  rng = np.random.RandomState(batch_size)
  x = rng.uniform(-1, 1, [batch_size, 3]).astype(np.float32)
  y = (x @ np.float32([[1.0], [-2.0], [0.5]]) + 1.0 +
       rng.uniform(0.5, 1.0, [batch_size, 1])).astype(np.float32)
  return x, y


def _child(root):
  """Trains STEPS steps per batch size and device count; writes JSON."""
  import keras  # pylint: disable=g-import-not-at-top

  class LeastSquares(training_loop.TrainingLoop):

    def __init__(self, folder, batch_size):
      net = keras.Sequential([
          keras.Input((3,)),
          keras.layers.Dense(1, kernel_initializer='ones',
                             bias_initializer='zeros')])
      super().__init__('least_squares', folder, net, {}, 'config.json',
                       _settings(batch_size))
      self.data = tuple(tf.constant(a) for a in _problem(batch_size))

    def next_batch(self):
      return self.data

    def compute(self, batch):
      x, y = batch
      mse = tf.reduce_mean(tf.square(self.network(x) - y))
      return mse, {'mse': mse}, {}

  results = {}
  for devices, strategy in ((1, 'default'), (2, 'mirrored')):
    with training_loop.distribution(strategy, 2).scope():
      for batch_size in BATCHES + (1,):
        folder = os.path.join(root, '%d_%d' % (devices, batch_size))
        loop = LeastSquares(folder, batch_size)
        try:
          history = loop.run()
        except training_loop.TrainingError as e:  # reported, compared below
          history = str(e)
        results['%d_%d' % (devices, batch_size)] = {
            'history': history,
            'weights': [v.numpy().tolist() for v in loop.variables],
            'wrote': os.path.exists(folder)}
  with open(os.path.join(root, 'results.json'), 'w') as f:
    json.dump(results, f)


class SplitSizesTest(parameterized.TestCase):

  @parameterized.parameters((4, 2, [2, 2]), (5, 2, [3, 2]), (7, 3, [3, 2, 2]),
                            (2, 4, [1, 1, 0, 0]), (6, 1, [6]))
  def test_sizes(self, total, parts, expected):
    self.assertEqual(training_loop.split_sizes(total, parts), expected)


class UnevenBatchTest(tf.test.TestCase, parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = tempfile.mkdtemp(prefix='test_training_batch_split_')
    cls.child = test_utils.run_test_child('test_training_batch_split',
                                          '_child', cls.root)
    cls.results = None
    if cls.child.returncode == 0:
      with open(os.path.join(cls.root, 'results.json')) as f:
        cls.results = json.load(f)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.root, ignore_errors=True)
    super().tearDownClass()

  def setUp(self):
    super().setUp()
    self.assertEqual(self.child.returncode, 0, self.child.stderr[-3000:])

  @parameterized.parameters(*BATCHES)
  def test_two_replicas_take_the_one_device_step(self, batch_size):
    one = self.results['1_%d' % batch_size]
    two = self.results['2_%d' % batch_size]
    self.assertLen(one['history'], STEPS)
    # The reference: the loss of the whole batch under the initial weights.
    x, y = _problem(batch_size)
    self.assertAllClose(one['history'][0],
                        np.mean((x.sum(1, keepdims=True) - y)**2), rtol=1e-6)
    self.assertAllClose(two['history'], one['history'], rtol=1e-5)
    for a, b in zip(two['weights'], one['weights']):
      self.assertAllClose(a, b, rtol=1e-5, atol=1e-6)

  def test_a_batch_smaller_than_the_replicas_is_refused(self):
    self.assertLen(self.results['1_1']['history'], STEPS)
    self.assertEqual(
        self.results['2_1']['history'],
        'least_squares: --batch_size=1 is the global batch, split among 2 '
        'replicas: give at least one image per replica (--batch_size >= 2)')
    self.assertFalse(self.results['2_1']['wrote'])


if __name__ == '__main__':
  tf.test.main()
