"""preprocess/dlib_landmarks.py and preprocess/skin_mask.py without photos."""

import os
import tempfile

from absl.testing import parameterized
import numpy as np
from PIL import Image
import tensorflow as tf

from preprocess import dlib_landmarks
from preprocess import face_crop
from preprocess import image_io
from preprocess import skin_mask


def _mean_landmarks(scale=1.0, offset=(0.0, 0.0)):
  """A plausible frontal 68-point layout (x, y pixels) for mask/crop tests."""
  pts = np.zeros([68, 2], np.float64)
  t = np.linspace(-1, 1, 17)
  pts[:17] = np.stack([60 * t, 10 + 60 * np.cos(t * np.pi / 2.5)], 1)  # jaw
  pts[17:22] = np.stack([np.linspace(-50, -10, 5), np.full(5, -40)], 1)
  pts[22:27] = np.stack([np.linspace(10, 50, 5), np.full(5, -40)], 1)
  pts[27:31] = np.stack([np.zeros(4), np.linspace(-25, 5, 4)], 1)  # nose
  pts[31:36] = np.stack([np.linspace(-12, 12, 5), np.full(5, 12)], 1)
  for first, cx in ((36, -30.0), (42, 30.0)):  # eyes: 6-point rings
    ang = np.linspace(np.pi, -np.pi, 6, endpoint=False)
    pts[first:first + 6] = np.stack([cx + 12 * np.cos(ang),
                                     -22 + 5 * np.sin(ang)], 1)
  ang = np.linspace(np.pi, -np.pi, 12, endpoint=False)
  pts[48:60] = np.stack([25 * np.cos(ang), 35 + 10 * np.sin(ang)], 1)
  ang = np.linspace(np.pi, -np.pi, 8, endpoint=False)
  pts[60:68] = np.stack([18 * np.cos(ang), 35 + 5 * np.sin(ang)], 1)
  return (pts * scale + np.asarray(offset)).astype(np.float32)


def _tempdir(test):
  """A fresh folder removed after the test (works without parsed flags)."""
  folder = tempfile.TemporaryDirectory()
  test.addCleanup(folder.cleanup)
  return folder.name


class ReadImageTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(('RGB', None), ('L', 'L'), ('RGBA', 'RGBA'),
                            ('P', 'P'))
  def test_modes_become_rgb(self, mode, converted):
    path = os.path.join(_tempdir(self), 'x.png')
    rgb = np.zeros([5, 4, 3], np.uint8)
    rgb[1, 2] = [255, 255, 255]
    Image.fromarray(rgb).convert(mode).save(path)
    loaded = image_io.load_image(path)
    self.assertEqual(loaded.image.dtype, np.float32)
    self.assertEqual(loaded.image.shape, (5, 4, 3))
    self.assertEqual(loaded.converted_from, converted)
    self.assertAllClose(loaded.image[1, 2], [1.0, 1.0, 1.0])
    self.assertAllClose(loaded.image[0, 0], [0.0, 0.0, 0.0])
    self.assertEqual(image_io.is_grayscale_mode(converted), mode == 'L')

  def test_16_bit_grayscale_is_scaled(self):
    path = os.path.join(_tempdir(self), 'x.png')
    Image.fromarray(np.full([2, 2], 32768, np.uint16)).save(path)
    image = image_io.read_image(path)
    self.assertAllClose(image, np.full([2, 2, 3], 0.5), atol=1e-3)

  def test_errors_name_the_file(self):
    folder = _tempdir(self)
    corrupt = os.path.join(folder, 'corrupt.jpg')
    with open(corrupt, 'wb') as f:
      f.write(b'\xff\xd8\xff\xe0 definitely not a jpeg')
    empty = os.path.join(folder, 'empty.png')
    open(empty, 'wb').close()
    for path, why in ((corrupt, 'not a readable image'),
                      (empty, 'empty file'),
                      (os.path.join(folder, 'missing.png'), 'no such file')):
      with self.assertRaisesRegex(ValueError, '%s: %s' % (path, why)):
        image_io.read_image(path)


class LandmarkModelTest(tf.test.TestCase):

  def test_explicit_path_must_exist(self):
    with self.assertRaisesRegex(FileNotFoundError,
                                "--landmark_model: no file at '/nope.dat'"):
      dlib_landmarks.find_landmark_model('/nope.dat')

  def test_package_copy_is_found_without_importing_the_package(self):
    import sys  # pylint: disable=g-import-not-at-top
    try:
      path = dlib_landmarks.find_landmark_model()
    except FileNotFoundError as e:
      self.skipTest('face-recognition-models not installed: %s' % e)
    self.assertEndsWith(path, dlib_landmarks.LANDMARK_MODEL_FILE)
    self.assertTrue(os.path.isfile(path))
    self.assertNotIn(dlib_landmarks.LANDMARK_PACKAGE, sys.modules)

  def test_blank_image_has_no_face(self):
    try:
      detector = dlib_landmarks.get_detector()
    except FileNotFoundError as e:
      self.skipTest('no landmark model: %s' % e)
    self.assertEqual(detector.detect(np.full([120, 100, 3], 0.5)), [])
    with self.assertRaisesRegex(ValueError, r'\[H,W,3\]'):
      detector.detect(np.zeros([10, 10]))


class CropTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters((224, 1.0), (64, 2.0), (300, 0.5))
  def test_transform_maps_crop_pixels_back_to_the_photo(self, size, scale):
    rng = np.random.RandomState(0)
    h, w = 400, 360
    # A smooth photo, so bilinear/area resampling barely changes values.
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    image = np.stack([xx / w, yy / h, 0.5 + 0.3 * np.sin(xx / 40.0)], -1)
    lm = _mean_landmarks(scale, offset=(180, 200))
    crop, lm_crop, tr = face_crop.crop_face(image, lm, size)
    self.assertEqual(crop.shape, (size, size, 3))
    self.assertEqual(crop.dtype, np.float32)
    self.assertAllClose(tr.to_original(lm_crop), lm, atol=1e-3)
    self.assertAllClose(tr.to_crop(lm), lm_crop, atol=1e-4)
    h3 = tr.matrix() @ np.array([lm_crop[0, 0], lm_crop[0, 1], 1.0])
    self.assertAllClose(h3[:2], lm[0], atol=1e-3)
    # Crop pixel centres sample the photo at the mapped positions.
    for u, v in rng.uniform(20, size - 20, [5, 2]):
      r, c = int(v), int(u)
      x, y = tr.to_original([c + 0.5, r + 0.5])
      self.assertAllClose(crop[r, c, :2], [x / w, y / h],
                          atol=2.0 * max(tr.scale, 1.0) / min(h, w))
    # Landmarks span ~61% of the crop, like the synthetic training images.
    span = (lm_crop.max(0) - lm_crop.min(0)).max() / size
    self.assertAllClose(span, 1.0 / face_crop.CROP_SCALE, atol=0.02)

  def test_outside_the_photo_is_black(self):
    image = np.ones([100, 100, 3], np.float32)
    lm = _mean_landmarks(0.5, offset=(10, 50))  # face at the left edge
    crop, _, tr = face_crop.crop_face(image, lm, 64)
    self.assertLess(tr.left, 0)
    self.assertAllEqual(crop[:, 0], np.zeros([64, 3]))
    self.assertAllClose(crop[32, 63], [1.0, 1.0, 1.0])

  def test_bad_landmarks(self):
    with self.assertRaisesRegex(ValueError, 'not finite'):
      face_crop.crop_face(np.zeros([9, 9, 3]),
                               np.full([68, 2], np.nan), 8)


class SkinMaskTest(tf.test.TestCase):

  def test_hull_minus_eyes_mouth_and_brows(self):
    lm = _mean_landmarks(1.0, offset=(100, 100))
    mask = skin_mask.skin_mask(lm, 200, 210)
    self.assertEqual(mask.shape, (200, 210))
    self.assertEqual(mask.dtype, np.uint8)
    self.assertEqual(set(np.unique(mask)), {0, 255})

    def at(x, y):
      return mask[int(y), int(x)]

    self.assertEqual(at(100 - 45, 100 + 10), 255)  # cheek
    self.assertEqual(at(100, 100 - 5), 255)  # nose
    self.assertEqual(at(100 - 30, 100 - 22), 0)  # right eye centre
    self.assertEqual(at(100 + 30, 100 - 22), 0)  # left eye centre
    self.assertEqual(at(100, 100 + 35), 0)  # inner mouth
    self.assertEqual(at(100 - 30, 100 - 40), 0)  # eyebrow
    self.assertEqual(at(5, 5), 0)  # outside the hull
    self.assertEqual(at(100, 100 - 60), 0)  # forehead: not in the hull

  def test_shape_check(self):
    with self.assertRaisesRegex(ValueError, r'\[68,2\]'):
      skin_mask.skin_mask(np.zeros([5, 2]), 10)


if __name__ == '__main__':
  tf.test.main()
