"""preprocess/face_records.py: the optional ground-truth mesh feature."""

import numpy as np
import tensorflow as tf

from preprocess import face_records


def _record(shape=None, size=16):
  rng = np.random.RandomState(0)
  return face_records.serialize(
      rng.randint(0, 256, [size, size, 3]).astype(np.uint8),
      rng.uniform(0, size, [68, 2]).astype(np.float32),
      np.full([size, size], 255, np.uint8), 'face.png', shape=shape)


class ShapeFeatureTest(tf.test.TestCase):

  def test_mesh_round_trip_and_size(self):
    shape = np.random.RandomState(1).normal(size=[5, 3]).astype(np.float32)
    record = _record(shape)
    self.assertEqual(face_records.record_shape_size(record), 15)
    image, landmarks, mask, got = face_records.decode(record, 8,
                                                      with_shape=True)
    self.assertAllEqual(got, shape)  # mm, untouched by the image resize
    plain = face_records.decode(record, 8)
    self.assertLen(plain, 3)
    self.assertAllEqual(plain[0], image)
    self.assertAllEqual(plain[1], landmarks)
    self.assertAllEqual(plain[2], mask)

  def test_records_without_a_mesh(self):
    record = _record()
    self.assertEqual(face_records.record_shape_size(record), 0)
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError, 'no .shape.'):
      face_records.decode(record, 8, with_shape=True)

  def test_bad_mesh_is_refused(self):
    with self.assertRaisesRegex(ValueError, r'shape must be \[V,3\] mm'):
      _record(np.zeros([4, 2], np.float32))


if __name__ == '__main__':
  tf.test.main()
