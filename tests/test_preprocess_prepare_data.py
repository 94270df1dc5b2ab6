"""preprocess/prepare_data.py on the shared face photos, a blank and bad files.

PrepareDataTest runs --landmarks=dlib (with a reused dlib detector);
FacemeshPrepareDataTest the default --landmarks=facemesh on CelebA photos
and the landmark source each writes into its records.
"""

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

from absl.testing import parameterized
import numpy as np
from PIL import Image
import tensorflow as tf

from preprocess import dlib_landmarks
from preprocess import face_crop
from preprocess import face_landmarks
from preprocess import face_records
from preprocess import image_io
from preprocess import mediapipe_landmarks
from preprocess import prepare_data
from tests import test_utils

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _data_dir():
  return test_utils.data_dir()


def _photos():
  return sorted(glob.glob(os.path.join(_data_dir(), 'faces', '*', '*.jpg')))


def _frontal_photos():
  """CelebA photos first (small poses: dlib's HOG detector finds them)."""
  photos = _photos()
  return sorted(photos, key=lambda p: ('celeba' not in p, p))


def _skip_reason():
  if not _photos():
    return ('no face photos under %s/faces (set FULLPOSE_DATA_DIR to the '
            'shared data folder)' % _data_dir())
  try:
    dlib_landmarks.find_landmark_model()
  except FileNotFoundError as e:
    return 'no dlib landmark model: %s' % e
  return None


class PrepareDataTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    reason = _skip_reason()
    if reason:
      raise unittest.SkipTest(reason)
    cls.detector = dlib_landmarks.get_detector()

  def _fresh_dir(self):
    folder = tempfile.TemporaryDirectory()
    self.addCleanup(folder.cleanup)
    return folder.name

  def test_every_shared_photo_gives_a_face_with_68_landmarks(self):
    out = os.path.join(self._fresh_dir(), 'out')
    photos = _photos()
    summary = prepare_data.prepare(os.path.join(_data_dir(), 'faces'), out,
                                   size=224, images_per_shard=10,
                                   detector=self.detector, landmarks='dlib')
    self.assertEqual(summary.counts[prepare_data.WRITTEN], len(photos),
                     msg=summary.report)
    self.assertLen(summary.shards, (len(photos) + 9) // 10)
    records = list(tf.data.TFRecordDataset(summary.shards))
    self.assertLen(records, len(photos))
    names = []
    for record in records:
      image, landmarks, mask = face_records.decode(record, 224)
      names.append(tf.io.parse_single_example(
          record, {'name': tf.io.FixedLenFeature([], tf.string)})['name'])
      self.assertEqual(landmarks.shape, (68, 2))
      lm = landmarks.numpy()
      self.assertTrue(np.all(np.isfinite(lm)))
      # The crop frames the landmarks (a little slack for profile faces).
      self.assertAllInRange(lm, 0.0, 224.0)
      span = (lm.max(0) - lm.min(0)).max()
      self.assertBetween(span, 0.4 * 224, 0.75 * 224)
      self.assertBetween(float(tf.reduce_mean(mask)), 0.05, 0.5)
      self.assertGreater(float(tf.math.reduce_std(image)), 0.02)
    self.assertCountEqual([n.numpy().decode() for n in names],
                          [os.path.basename(p) for p in photos])
    with open(os.path.join(out, prepare_data.REPORT_FILE)) as f:
      rows = f.read().splitlines()
    self.assertLen(rows, 1 + len(photos))

  def test_records_match_the_detector_and_crop(self):
    photo = _frontal_photos()[0]
    folder = self._fresh_dir()
    shutil.copy(photo, folder)
    summary = prepare_data.prepare(folder, os.path.join(folder, 'out'),
                                   size=128, detector=self.detector,
                                   landmarks='dlib')
    image = image_io.read_image(photo)
    face = self.detector.detect(image)[0]
    crop, lm_crop, _ = face_crop.crop_face(image, face.landmarks, 128)
    record = next(iter(tf.data.TFRecordDataset(summary.shards)))
    got_image, got_lm, _ = face_records.decode(record, 128)
    self.assertAllClose(got_lm, lm_crop, atol=1e-4)
    self.assertAllClose(got_image, crop, atol=1.0 / 255 + 1e-6)

  def test_blank_corrupt_and_grayscale_files_are_reported(self):
    folder = self._fresh_dir()
    src = os.path.join(folder, 'in')
    os.makedirs(os.path.join(src, 'sub'))
    photos = _frontal_photos()[:2]
    for p in photos:
      shutil.copy(p, src)
    Image.new('RGB', (160, 120), (128, 128, 128)).save(
        os.path.join(src, 'blank.png'))
    with open(photos[0], 'rb') as f:
      head = f.read(2000)
    with open(os.path.join(src, 'corrupt.jpg'), 'wb') as f:
      f.write(head)  # a truncated JPEG
    Image.open(photos[0]).convert('L').save(os.path.join(src, 'sub', 'g.png'))
    with open(os.path.join(src, 'notes.txt'), 'w') as f:
      f.write('not a photo')
    out = os.path.join(folder, 'out')
    summary = prepare_data.prepare(src, out, size=64, detector=self.detector,
                                   landmarks='dlib')
    c = summary.counts
    self.assertEqual(c[prepare_data.WRITTEN], 3)
    self.assertEqual(c[prepare_data.NO_FACE], 1)
    self.assertEqual(c[prepare_data.UNREADABLE], 1)
    self.assertEqual(c[prepare_data.NOT_AN_IMAGE], 1)
    self.assertEqual(c[prepare_data.GRAYSCALE], 1)
    report = {row[0]: row for row in summary.report}
    self.assertLen(report, 6)
    self.assertEqual(report['blank.png'][1], prepare_data.NO_FACE)
    self.assertIn('no face found', report['blank.png'][2])
    self.assertEqual(report['corrupt.jpg'][1], prepare_data.UNREADABLE)
    self.assertIn('corrupt.jpg: not a readable image', report['corrupt.jpg'][2])
    self.assertIn('grayscale', report[os.path.join('sub', 'g.png')][2])
    # The shards feed the training pipeline (parallel decode, prefetch).
    ds = face_records.dataset(out, 32, batch_size=3, shuffle=False,
                              repeat=False)
    images, landmarks, masks = next(iter(ds))
    self.assertEqual(images.shape, (3, 32, 32, 3))
    self.assertEqual(landmarks.shape, (3, 68, 2))
    self.assertEqual(masks.shape, (3, 32, 32, 1))
    # An output folder that already holds shards is refused.
    with self.assertRaisesRegex(ValueError, 'already holds 1 TFRecord'):
      prepare_data.prepare(src, out, size=64, detector=self.detector,
                           landmarks='dlib')

  def test_several_faces_keep_the_largest_or_skip(self):
    folder = self._fresh_dir()
    a, b = [Image.open(p).convert('RGB') for p in _frontal_photos()[:2]]
    b = b.resize((b.width * a.height // (2 * b.height), a.height // 2))
    both = Image.new('RGB', (a.width + b.width, a.height))
    both.paste(a, (0, 0))
    both.paste(b, (a.width, a.height // 4))
    src = os.path.join(folder, 'in')
    os.makedirs(src)
    both.save(os.path.join(src, 'two.png'))
    faces = self.detector.detect(image_io.read_image(
        os.path.join(src, 'two.png')))
    self.assertLen(faces, 2)
    self.assertLess(faces[0].box[0], a.width)  # the large face comes first
    kept = prepare_data.prepare(src, os.path.join(folder, 'largest'), size=64,
                                detector=self.detector, landmarks='dlib')
    self.assertEqual(kept.counts[prepare_data.WRITTEN], 1)
    self.assertEqual(kept.counts[prepare_data.SEVERAL_LARGEST], 1)
    self.assertIn('2 faces found; kept the largest', kept.report[0][2])
    skipped = prepare_data.prepare(src, os.path.join(folder, 'skip'), size=64,
                                   multiple_faces='skip',
                                   detector=self.detector, landmarks='dlib')
    self.assertEqual(skipped.counts[prepare_data.WRITTEN], 0)
    self.assertEqual(skipped.report[0][1], prepare_data.SEVERAL_SKIPPED)

  def test_max_images_stops_early(self):
    folder = self._fresh_dir()
    for p in _frontal_photos()[:3]:
      shutil.copy(p, folder)
    summary = prepare_data.prepare(folder, os.path.join(folder, 'out'),
                                   size=64, max_images=2,
                                   detector=self.detector, landmarks='dlib')
    self.assertEqual(summary.counts[prepare_data.WRITTEN], 2)
    self.assertEqual(summary.counts[prepare_data.NOT_VISITED], 1)

  def test_command_line_logs_each_file_and_never_crashes(self):
    folder = self._fresh_dir()
    src = os.path.join(folder, 'in')
    os.makedirs(src)
    shutil.copy(_frontal_photos()[0], src)
    with open(os.path.join(src, 'bad.png'), 'wb') as f:
      f.write(b'garbage')
    out = os.path.join(folder, 'out')
    run = subprocess.run(
        [sys.executable, '-m', 'preprocess.prepare_data',
         '--images=' + src, '--out=' + out, '--image_size=64',
         '--landmarks=dlib', '--nocnn_fallback'],
        capture_output=True, text=True, timeout=300, check=False)
    self.assertEqual(run.returncode, 0, msg=run.stderr[-3000:])
    self.assertRegex(run.stderr, r'bad\.png: unreadable \(.*bad\.png: not a '
                     r'readable image')
    self.assertRegex(run.stderr, r'Summary .* written 1, no_face 0, '
                     r'several_faces_skipped 0, unreadable 1')
    self.assertLen(glob.glob(os.path.join(out, '*.tfrecord')), 1)
    # Nothing usable: exit status 1 with a message, no traceback.
    os.remove(os.path.join(src, os.path.basename(_frontal_photos()[0])))
    run = subprocess.run(
        [sys.executable, '-m', 'preprocess.prepare_data',
         '--images=' + src, '--out=' + os.path.join(folder, 'out2'),
         '--landmarks=dlib'],
        capture_output=True, text=True, timeout=300, check=False)
    self.assertEqual(run.returncode, 1)
    self.assertIn('no usable face', run.stderr)
    self.assertNotIn('Traceback', run.stderr)


def _celeba_photos(count):
  """The first `count` shared CelebA photos (skips the test when absent)."""
  folder = test_utils.require_data('faces', 'celeba_sample')
  photos = sorted(glob.glob(os.path.join(folder, '*.jpg')))[:count]
  if len(photos) < count:
    raise unittest.SkipTest('fewer than %d photos in %s' % (count, folder))
  return photos


def _require_facemesh():
  try:
    mediapipe_landmarks.find_model_dir()
  except FileNotFoundError as e:
    raise unittest.SkipTest('no FaceMesh model files: %s' % e)


def _sources(shards):
  return [face_records.record_source(r)
          for r in tf.data.TFRecordDataset(shards)]


class FacemeshPrepareDataTest(tf.test.TestCase, parameterized.TestCase):

  def _fresh_dir(self):
    folder = tempfile.TemporaryDirectory()
    self.addCleanup(folder.cleanup)
    return folder.name

  def _copy(self, photos):
    folder = os.path.join(self._fresh_dir(), 'in')
    os.makedirs(folder)
    for p in photos:
      shutil.copy(p, folder)
    return folder

  def test_default_landmarks_are_facemesh_and_records_say_so(self):
    _require_facemesh()
    photos = _celeba_photos(2)
    src = self._copy(photos)
    out = os.path.join(os.path.dirname(src), 'out')
    summary = prepare_data.prepare(src, out, size=128)
    self.assertEqual(summary.counts[prepare_data.WRITTEN], 2,
                     msg=summary.report)
    self.assertEqual(_sources(summary.shards), ['facemesh'] * 2)
    self.assertEqual(face_records.landmark_source(out), 'facemesh')
    # The records hold FaceMesh's 68 points, cropped as the reconstruct
    # command's detection would give them.
    image = image_io.read_image(photos[0])
    face = face_landmarks.detect_faces(image, 'facemesh')[0]
    crop, lm_crop, _ = face_crop.crop_face(image, face.landmarks, 128)
    record = next(iter(tf.data.TFRecordDataset(summary.shards)))
    got_image, got_lm, _ = face_records.decode(record, 128)
    self.assertAllClose(got_lm, lm_crop, atol=1e-3)
    self.assertAllClose(got_image, crop, atol=1.0 / 255 + 1e-6)

  def test_blank_photo_names_the_facemesh_detector(self):
    _require_facemesh()
    src = self._copy(_celeba_photos(1))
    Image.new('RGB', (160, 120), (128, 128, 128)).save(
        os.path.join(src, 'blank.png'))
    summary = prepare_data.prepare(src, os.path.join(src, '..', 'out'),
                                   size=64, landmarks='facemesh')
    report = {row[0]: row for row in summary.report}
    self.assertEqual(report['blank.png'][1], prepare_data.NO_FACE)
    self.assertIn('no face found by the MediaPipe BlazeFace',
                  report['blank.png'][2])
    self.assertEqual(summary.counts[prepare_data.WRITTEN], 1)

  @parameterized.parameters('facemesh', 'dlib')
  def test_command_line_stores_the_landmark_source(self, source):
    if source == 'dlib':
      try:
        dlib_landmarks.find_landmark_model()
      except FileNotFoundError as e:
        self.skipTest('no dlib landmark model: %s' % e)
    else:
      _require_facemesh()
    src = self._copy(_celeba_photos(2))
    out = os.path.join(os.path.dirname(src), 'out')
    args = [] if source == 'facemesh' else ['--landmarks=dlib',
                                            '--nocnn_fallback']
    run = subprocess.run(
        [sys.executable, '-m', 'preprocess.prepare_data', '--images=' + src,
         '--out=' + out, '--image_size=64'] + args,
        capture_output=True, text=True, timeout=300, check=False, cwd=REPO)
    self.assertEqual(run.returncode, 0, msg=run.stderr[-3000:])
    self.assertIn('--landmarks=%s' % source, run.stderr)
    shards = glob.glob(os.path.join(out, '*.tfrecord'))
    self.assertEqual(_sources(shards), [source] * 2)


if __name__ == '__main__':
  tf.test.main()
