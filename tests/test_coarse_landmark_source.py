"""The landmark source of a training dataset and the loss's jaw convention.

preprocess/face_records.py stores which detector marked a record's landmarks
('facemesh' or 'dlib'; records without it are dlib's); coarse/train.py reads
it from --data and coarse/sam.py / coarse/face_reconstruction.py build the
model's landmarks under that source's convention: the sliding silhouette
contour for dlib (and the synthetic data), the fixed landmarks68 vertices for
FaceMesh.
"""

import os

from absl.testing import flagsaver
from absl.testing import parameterized
import numpy as np
import tensorflow as tf

import bfm
from coarse import coefficients
from coarse import face_reconstruction
from coarse import landmark_fit
from coarse import losses
from coarse import sam
from coarse import train as coarse_train
from coarse import training_loop
from preprocess import face_records
from preprocess import synthetic_data
from tests import test_utils

SIZE = 64
YAW = 0.8  # radians, ~46 deg: the silhouette jaw leaves the fixed vertices


def _legacy_record(rng, size=32):
  """A record as face_records.serialize wrote it before 'landmark_source'."""
  image = rng.randint(0, 256, [size, size, 3]).astype(np.uint8)
  feats = {
      'image': tf.train.Feature(bytes_list=tf.train.BytesList(
          value=[tf.io.encode_png(image).numpy()])),
      'mask': tf.train.Feature(bytes_list=tf.train.BytesList(
          value=[tf.io.encode_png(np.full([size, size, 1], 255, np.uint8))
                 .numpy()])),
      'landmarks': tf.train.Feature(float_list=tf.train.FloatList(
          value=rng.uniform(0, size, [136]).tolist())),
      'name': tf.train.Feature(bytes_list=tf.train.BytesList(
          value=[b'old.png'])),
  }
  return tf.train.Example(features=tf.train.Features(feature=feats)
                         ).SerializeToString()


def _record(rng, source, size=32):
  return face_records.serialize(
      rng.randint(0, 256, [size, size, 3]).astype(np.uint8),
      rng.uniform(0, size, [68, 2]).astype(np.float32),
      np.full([size, size], 255, np.uint8), 'new.png', landmark_source=source)


def _write(path, records):
  with tf.io.TFRecordWriter(path) as writer:
    for r in records:
      writer.write(r)
  return path


class RecordSourceTest(test_utils.FlagsTestCase, parameterized.TestCase):

  @parameterized.parameters('facemesh', 'dlib')
  def test_source_round_trips(self, source):
    rng = np.random.RandomState(0)
    folder = self.create_tempdir().full_path
    _write(os.path.join(folder, 'faces-00000.tfrecord'),
           [_record(rng, source) for _ in range(3)])
    self.assertEqual(face_records.landmark_source(folder), source)
    record = next(iter(tf.data.TFRecordDataset(
        face_records.list_files(folder))))
    self.assertEqual(face_records.record_source(record), source)

  def test_dataset_without_source_reads_as_dlib(self):
    rng = np.random.RandomState(1)
    folder = self.create_tempdir().full_path
    path = _write(os.path.join(folder, 'faces-00000.tfrecord'),
                  [_legacy_record(rng) for _ in range(2)])
    self.assertEqual(face_records.LEGACY_SOURCE, 'dlib')
    self.assertEqual(face_records.landmark_source(folder), 'dlib')
    self.assertEqual(face_records.landmark_source(path), 'dlib')
    # ... and still decodes as before.
    image, landmarks, mask = face_records.decode(
        next(iter(tf.data.TFRecordDataset(path))), 16)
    self.assertEqual(image.shape, (16, 16, 3))
    self.assertEqual(landmarks.shape, (68, 2))
    self.assertEqual(mask.shape, (16, 16, 1))

  def test_shards_of_two_sources_are_refused(self):
    rng = np.random.RandomState(2)
    folder = self.create_tempdir().full_path
    _write(os.path.join(folder, 'a.tfrecord'), [_record(rng, 'facemesh')])
    _write(os.path.join(folder, 'b.tfrecord'), [_legacy_record(rng)])
    with self.assertRaisesRegex(ValueError,
                                r'different landmark sources \(dlib in .*'
                                r'b\.tfrecord, facemesh in .*a\.tfrecord\)'):
      face_records.landmark_source(folder)

  def test_unknown_source_is_refused_when_written(self):
    rng = np.random.RandomState(3)
    with self.assertRaisesRegex(ValueError, 'landmark_source must be one of'):
      _record(rng, 'openpose')

  def test_synthetic_data_is_dlib_like(self):
    # The synthetic faces' landmarks are face_reconstruction's sliding ones.
    self.assertEqual(synthetic_data.LANDMARK_SOURCE, 'dlib')
    self.assertEqual(face_reconstruction.JAW_CONVENTIONS['dlib'], 'sliding')
    self.assertEqual(coarse_train.data_landmark_source(None), 'dlib')


def _turned_coefficients(model, yaw=YAW):
  """[1] Coefficients of the mean face turned by `yaw` radians."""
  c = coefficients.Coefficients.zeros(model, 1).numpy()
  pose = np.array(c.pose)
  pose[0, 1] = yaw
  return c._replace(pose=pose.astype(np.float32))


class JawConventionTest(test_utils.FlagsTestCase, parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    test_utils.require_rasterizer()
    cls.model = bfm.load('synthetic')

  def test_sources_match_the_fit(self):
    self.assertCountEqual(face_reconstruction.JAW_CONVENTIONS,
                          landmark_fit.LANDMARK_SOURCES)

  @parameterized.parameters(YAW, -YAW)
  def test_facemesh_jaw_is_fixed_and_dlib_jaw_slides(self, yaw):
    m = self.model
    face = face_reconstruction.reconstruct(
        m, _turned_coefficients(m, yaw), SIZE, landmark_source='facemesh')
    screen = face.screen_vertices.numpy()
    fixed = screen[:, m.landmarks68, :2]
    self.assertAllClose(face.landmarks2d, fixed)
    sliding = face_reconstruction.landmarks2d(m, face.screen_vertices,
                                              'dlib').numpy()
    # Same model landmarks as the fit's correspondence of each source.
    self.assertAllClose(
        fixed[0], screen[0, landmark_fit.landmark_vertices(m, 'facemesh'), :2])
    self.assertAllClose(
        sliding[0],
        screen[0, landmark_fit.landmark_vertices(m, 'dlib', screen[0]), :2])
    # The default is dlib's, as before.
    default = face_reconstruction.reconstruct(m, _turned_coefficients(m, yaw),
                                              SIZE)
    self.assertAllClose(default.landmarks2d, sliding)
    # Brows, eyes, nose and mouth agree; the turned jaw does not.
    self.assertAllClose(sliding[:, 17:], fixed[:, 17:])
    jaw_gap = np.linalg.norm(sliding[0, :17] - fixed[0, :17], axis=-1)
    self.assertGreater(jaw_gap.max(), 1.0)

  def test_bad_source(self):
    m = self.model
    with self.assertRaisesRegex(ValueError, 'landmark_source must be one of'):
      face_reconstruction.reconstruct(m, _turned_coefficients(m), SIZE,
                                      landmark_source='openpose')
    with self.assertRaisesRegex(ValueError, 'landmark_source must be one of'):
      sam.SelfAugment(m, None, 'none', SIZE, landmark_source='openpose')

  @parameterized.parameters(('facemesh', 'none'), ('facemesh', 'our'),
                            ('dlib', 'our'))
  def test_training_landmark_loss_uses_the_source_jaw(self, source, config):
    m = self.model
    vector = tf.constant(_turned_coefficients(m).to_vector())

    def network(images, training=False):
      del training
      return tf.tile(vector, [tf.shape(images)[0], 1])

    augment = sam.SelfAugment(m, network, config, SIZE,
                              landmark_source=source)
    images = tf.zeros([1, SIZE, SIZE, 3])
    out = augment.forward(images)
    screen = out.face.screen_vertices.numpy()
    want = (screen[:, m.landmarks68, :2] if source == 'facemesh' else
            face_reconstruction.landmarks2d(m, screen, 'dlib').numpy())
    other = (face_reconstruction.landmarks2d(m, screen, 'dlib').numpy()
             if source == 'facemesh' else screen[:, m.landmarks68, :2])
    self.assertAllClose(out.face.landmarks2d, want)
    # The loss is zero against landmarks marked in the source's convention
    # and not against the other's.
    _, terms = losses.coarse_losses(images, tf.constant(want), None,
                                    out.face, out.coefficients,
                                    losses.DEFAULT_WEIGHTS)
    self.assertAllClose(terms['landmark'], 0.0, atol=1e-6)
    _, terms = losses.coarse_losses(images, tf.constant(other), None,
                                    out.face, out.coefficients,
                                    losses.DEFAULT_WEIGHTS)
    self.assertGreater(float(terms['landmark']), 1e-3)


def _settings(log_dir, data):
  return dict(bfm='synthetic', data=data, sam_config='none', image_size=32,
              vgg_width=1.0 / 16, vgg_input_size=None, vgg_weights=None,
              init_checkpoint=None, batch_size=2, num_images=2, seed=0,
              steps=1, log_dir=log_dir, coarse_contour_landmark_weight=0.5)


class TrainingSourceTest(test_utils.FlagsTestCase, parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    test_utils.require_rasterizer()

  @parameterized.named_parameters(('facemesh', 'facemesh', 'facemesh'),
                                  ('dlib', 'dlib', 'dlib'),
                                  ('no_source', None, 'dlib'),
                                  ('synthetic', 'synthetic', 'dlib'))
  def test_training_takes_the_data_source(self, written, want):
    rng = np.random.RandomState(4)
    data = None
    if written != 'synthetic':
      data = self.create_tempdir().full_path
      _write(os.path.join(data, 'faces-00000.tfrecord'),
             [_legacy_record(rng) if written is None else
              _record(rng, written) for _ in range(2)])
    log_dir = self.create_tempdir().full_path
    with flagsaver.flagsaver(**_settings(log_dir, data)):
      loop = coarse_train.CoarseTraining(bfm.load('synthetic'))
    self.assertEqual(loop.landmark_source, want)
    self.assertEqual(loop.sam.landmark_source, want)
    self.assertEqual(loop.config['landmark_source'], want)

  @parameterized.named_parameters(('facemesh', 'facemesh', False),
                                  ('dlib', 'dlib', True),
                                  ('synthetic', 'synthetic', True))
  def test_contour_term_only_for_outline_landmarks(self, written, on):
    """Chen20's contour term (sliding outline correspondence) is trained for
    landmarks that follow the outline, not for FaceMesh's fixed points."""
    rng = np.random.RandomState(6)
    data = None
    if written != 'synthetic':
      data = self.create_tempdir().full_path
      _write(os.path.join(data, 'faces-00000.tfrecord'),
             [_record(rng, written) for _ in range(2)])
    model = bfm.load('synthetic')
    with flagsaver.flagsaver(**_settings(self.create_tempdir().full_path,
                                         data)):
      loop = coarse_train.CoarseTraining(model)
    self.assertIs(loop.contour_model, model if on else None)
    images = tf.constant(rng.uniform(0, 1, [2, 32, 32, 3]), tf.float32)
    landmarks = tf.constant(rng.uniform(8, 24, [2, 68, 2]), tf.float32)
    total, terms, _ = loop.compute((images, landmarks, tf.ones([2, 32, 32,
                                                                1])))
    self.assertEqual('contour_landmark' in terms, on)
    rest = sum(loop.weights[k] * float(v) for k, v in terms.items()
               if k != 'contour_landmark')
    if on:  # random landmarks are far from the face: the term counts
      self.assertGreater(float(terms['contour_landmark']), 0.1)
      self.assertAllClose(
          total, rest + 0.5 * float(terms['contour_landmark']), rtol=1e-5)
    else:
      self.assertAllClose(total, rest, rtol=1e-5)

  def test_mixed_data_is_a_usage_error(self):
    rng = np.random.RandomState(5)
    data = self.create_tempdir().full_path
    _write(os.path.join(data, 'a.tfrecord'), [_record(rng, 'facemesh')] * 2)
    _write(os.path.join(data, 'b.tfrecord'), [_record(rng, 'dlib')] * 2)
    log_dir = self.create_tempdir().full_path
    with flagsaver.flagsaver(**_settings(log_dir, data)):
      with self.assertRaisesRegex(training_loop.UsageError,
                                  'different landmark sources'):
        coarse_train.CoarseTraining(bfm.load('synthetic'))


if __name__ == '__main__':
  tf.test.main()
