"""Tests for detail/coarse_source.py (training batches, frozen coarse net)."""

import os
import re
import tempfile

import numpy as np
import tensorflow as tf

import bfm
from coarse import coarse_model
from coarse import coefficients
from coarse import face_reconstruction
from preprocess import face_records
from detail import coarse_source


class CoarseSourceTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.model = bfm.load('synthetic')

  def test_ground_truth_without_checkpoint_and_fixed_set_cycles(self):
    source = coarse_source.CoarseSource(self.model, 32, 2, num_images=4)
    first = [source.next_batch() for _ in range(2)]
    again = [source.next_batch() for _ in range(2)]
    for (a_img, a_vec, a_skin), (b_img, b_vec, b_skin) in zip(first, again):
      self.assertAllEqual(a_img, b_img)
      self.assertAllEqual(a_vec, b_vec)
      self.assertAllEqual(a_skin, b_skin)
    self.assertNotAllClose(first[0][0], first[1][0])
    images, vector, skin = first[0]
    self.assertEqual(images.shape, (2, 32, 32, 3))
    self.assertEqual(vector.shape,
                     (2, coefficients.vector_size(self.model)))
    # Ground truth: re-rendering the coefficients reproduces the face pixels.
    coeffs = source.coefficients(vector)
    self.assertEqual(coeffs.pose.shape, (2, 6))
    face = face_reconstruction.reconstruct(self.model, coeffs, 32)
    self.assertGreater(float(tf.reduce_sum(face.mask)), 50.0)
    self.assertAllClose(face.image * face.mask, images * face.mask, atol=1e-5)
    # The skin mask is the rendered face region without eyes: inside the
    # rendered face, not empty, and without the background.
    self.assertEqual(skin.shape, (2, 32, 32, 1))
    self.assertAllClose(skin, face.photo_mask, atol=1e-5)
    self.assertGreater(float(tf.reduce_sum(skin)), 50.0)
    self.assertEqual(float(tf.reduce_sum(skin * (1.0 - face.mask))), 0.0)
    with self.assertRaisesRegex(ValueError, 'multiple of batch_size'):
      coarse_source.CoarseSource(self.model, 32, 3, num_images=4)

  def test_missing_checkpoint_names_the_path(self):
    empty = tempfile.mkdtemp(dir=self.get_temp_dir())
    with self.assertRaisesRegex(FileNotFoundError,
                                re.escape(empty) + '.*coarse/train.py'):
      coarse_source.CoarseSource(self.model, 32, 2, coarse_checkpoint=empty)

  def _coarse_checkpoint(self):
    """A small coarse network saved as coarse/train.py saves it."""
    folder = tempfile.mkdtemp(dir=self.get_temp_dir())
    net = coarse_model.CoarseModel(self.model, input_size=32, width=1 / 16)
    net(tf.zeros([1, 32, 32, 3]))
    for v in net.heads[3].weights:  # non-zero pose head: not the zero init
      v.assign(tf.random.normal(v.shape, stddev=0.01, seed=1))
    coarse_model.save_config(net, folder)
    tf.train.Checkpoint(network=net).save(os.path.join(folder, 'ckpt'))
    return net, folder

  def test_frozen_coarse_network_from_a_coarse_checkpoint(self):
    net, folder = self._coarse_checkpoint()
    source = coarse_source.CoarseSource(self.model,
                                        48,
                                        2,
                                        coarse_checkpoint=folder,
                                        num_images=2)
    self.assertEndsWith(source.coarse_checkpoint, 'ckpt-1')
    images, vector, _ = source.next_batch()
    self.assertAllClose(vector, net(images), atol=1e-5)
    # Cached with the fixed set: the coarse network runs once per batch.
    images2, vector2, _ = source.next_batch()
    self.assertAllEqual(vector, vector2)
    self.assertAllEqual(images, images2)
    self.assertTrue(np.all(np.isfinite(vector.numpy())))


  def test_real_images_from_tfrecords_need_a_coarse_checkpoint(self):
    folder = tempfile.mkdtemp(dir=self.get_temp_dir())
    rng = np.random.RandomState(0)
    path = os.path.join(folder, 'faces.tfrecord')
    # The stored skin mask: the left half of the crop.
    mask = np.zeros([40, 40], np.uint8)
    mask[:, :20] = 255
    with tf.io.TFRecordWriter(path) as writer:
      for k in range(3):
        writer.write(
            face_records.serialize(
                rng.randint(0, 256, [40, 40, 3]).astype(np.uint8),
                rng.uniform(0, 40, [68, 2]).astype(np.float32),
                mask, 'face%d.png' % k))
    with self.assertRaisesRegex(ValueError, 'coarse_checkpoint'):
      coarse_source.CoarseSource(self.model, 32, 2, data=folder)
    net, ckpt = self._coarse_checkpoint()
    source = coarse_source.CoarseSource(self.model,
                                        32,
                                        2,
                                        coarse_checkpoint=ckpt,
                                        data=folder,
                                        num_images=2)
    images, vector, skin = source.next_batch()
    self.assertEqual(images.shape, (2, 32, 32, 3))
    self.assertAllClose(vector, net(images), atol=1e-5)
    # The records' skin masks come with the images, resized to 32 px.
    self.assertEqual(skin.shape, (2, 32, 32, 1))
    self.assertAllClose(skin[:, :, :15], tf.ones([2, 32, 15, 1]))
    self.assertAllClose(skin[:, :, 17:], tf.zeros([2, 32, 15, 1]))


if __name__ == '__main__':
  tf.test.main()
