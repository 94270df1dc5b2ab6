"""The resumable training stream (coarse/training_loop.py example_stream,
record_dataset): a run resumed at global example g reads what the
uninterrupted run reads from g on."""

import os

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from coarse import training_loop
from preprocess import face_records
from tests import test_utils

NUM = 5


def _take(dataset, n):
  return [int(x) for x in dataset.take(n)]


class ExampleStreamTest(tf.test.TestCase, parameterized.TestCase):

  def _stream(self, seed=3, first_example=0, buffer=NUM):
    return training_loop.example_stream(tf.data.Dataset.range(NUM), NUM, seed,
                                        first_example, shuffle_buffer=buffer)

  def test_every_epoch_is_a_permutation_and_epochs_differ(self):
    values = _take(self._stream(), 6 * NUM)
    epochs = [values[i:i + NUM] for i in range(0, len(values), NUM)]
    for epoch in epochs:
      self.assertCountEqual(epoch, range(NUM))
    # Reshuffled: not every epoch in the same order (probability of six equal
    # orders by chance: 120^-5).
    self.assertGreater(len(set(map(tuple, epochs))), 1)
    # Shuffled at all: not the input order every time.
    self.assertNotEqual(epochs, [list(range(NUM))] * 6)

  @parameterized.parameters(1, 4, 5, 7, 13)
  def test_a_resumed_stream_continues_the_uninterrupted_one(self, first):
    whole = _take(self._stream(), first + 2 * NUM)
    resumed = _take(self._stream(first_example=first), 2 * NUM)
    self.assertEqual(resumed, whole[first:])

  def test_order_depends_on_the_seed_only(self):
    orders = []
    for global_seed in (0, 1):  # tf's global seed does not enter
      tf.random.set_seed(global_seed)
      a = _take(self._stream(seed=3), 4 * NUM)
      tf.random.uniform([7])  # nor do the random ops drawn before
      b = _take(self._stream(seed=3), 4 * NUM)
      c = _take(self._stream(seed=4), 4 * NUM)
      self.assertEqual(a, b)
      self.assertNotEqual(a, c)
      orders.append(a)
    self.assertEqual(orders[0], orders[1])

  def test_blocks_beyond_the_buffer(self):
    # Blocks of 2: each epoch permutes (0, 1), (2, 3) and (4,) in place.
    values = _take(self._stream(buffer=2), 8 * NUM)
    epochs = [values[i:i + NUM] for i in range(0, len(values), NUM)]
    for epoch in epochs:
      self.assertCountEqual(epoch[:2], [0, 1])
      self.assertCountEqual(epoch[2:4], [2, 3])
      self.assertEqual(epoch[4], 4)
    self.assertIn([1, 0], [e[:2] for e in epochs])
    self.assertIn([0, 1], [e[:2] for e in epochs])

  def test_bad_arguments(self):
    with self.assertRaisesRegex(ValueError, 'no examples'):
      training_loop.example_stream(tf.data.Dataset.range(0), 0, 0)
    with self.assertRaisesRegex(ValueError, 'first_example must be >= 0'):
      self._stream(first_example=-1)


class RecordDatasetResumeTest(test_utils.FlagsTestCase,
                              parameterized.TestCase):

  def _shards(self, folder):
    """Two shards of 3 + 4 records; record k's landmarks are all k."""
    k = 0
    for shard, count in enumerate((3, 4)):
      path = os.path.join(folder, 'faces-%d.tfrecord' % shard)
      with tf.io.TFRecordWriter(path) as writer:
        for _ in range(count):
          writer.write(face_records.serialize(
              np.full([16, 16, 3], 10 * k, np.uint8),
              np.full([68, 2], float(k), np.float32),
              np.full([16, 16], 255, np.uint8), 'face%d.png' % k))
          k += 1
    return folder

  def _ids(self, data, batches, first_example, skip_bad_records):
    dataset, _ = training_loop.record_dataset(
        data, 16, 3, seed=0, skip_bad_records=skip_bad_records,
        first_example=first_example)
    ids = []
    for images, landmarks, _ in dataset.take(batches):
      ids.extend(int(round(v)) for v in landmarks.numpy()[:, 0, 0])
      # The image of the same record.
      self.assertAllClose(images.numpy()[:, 0, 0, 0] * 255.0,
                          10.0 * landmarks.numpy()[:, 0, 0], atol=0.5)
    return ids

  @parameterized.parameters(False, True)
  def test_resumed_batches_are_the_uninterrupted_ones(self, skip_bad_records):
    data = self._shards(self.create_tempdir().full_path)
    whole = self._ids(data, 6, 0, skip_bad_records)  # 18 records, 2.6 epochs
    for epoch in (whole[:7], whole[7:14]):
      self.assertCountEqual(epoch, range(7))
    # Resumed after 3 steps of 3 (mid second epoch).
    self.assertEqual(self._ids(data, 3, 9, skip_bad_records), whole[9:])


if __name__ == '__main__':
  tf.test.main()
