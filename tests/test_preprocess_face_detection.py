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


def _dlib_detector(test):
  try:
    return dlib_landmarks.get_detector()
  except (FileNotFoundError, ImportError) as e:
    test.skipTest('no dlib landmark model: %s' % e)


class ReliabilityTest(tf.test.TestCase, parameterized.TestCase):
  """Issue 16: EXIF orientation, tiny photos, bounded detection cost."""

  @parameterized.parameters((6, 1), (8, 3), (3, 2), (1, 0))
  def test_exif_orientation_is_applied(self, orientation, ccw_turns):
    """A file stored turned, with the tag that undoes it, reads upright."""
    upright = np.zeros([40, 60, 3], np.uint8)
    upright[:10, :20] = [255, 0, 0]  # red block at the top left
    stored = np.rot90(upright, ccw_turns)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = os.path.join(_tempdir(self), 'phone.jpg')
    Image.fromarray(np.ascontiguousarray(stored)).save(
        path, exif=exif.tobytes(), quality=100)
    image = image_io.read_image(path)
    self.assertEqual(image.shape, (40, 60, 3))  # the displayed size
    self.assertGreater(image[3, 3, 0], 0.9)
    self.assertLess(image[30, 50, 0], 0.1)

  @parameterized.parameters((1, 1), (31, 200), (200, 20))
  def test_tiny_photo_has_our_message(self, width, height):
    detector = _dlib_detector(self)
    with self.assertRaisesRegex(
        ValueError, r'too small: %dx%d, need at least 32 px' % (width,
                                                                height)):
      detector.detect(np.zeros([height, width, 3], np.float32))

  def test_prepare_data_reports_a_tiny_photo(self):
    from preprocess import prepare_data  # pylint: disable=g-import-not-at-top
    detector = _dlib_detector(self)
    path = os.path.join(_tempdir(self), 'dot.png')
    Image.new('RGB', (1, 1)).save(path)
    record, outcome, reason, _ = prepare_data.process_photo(path, detector,
                                                            64)
    self.assertIsNone(record)
    self.assertEqual(outcome, prepare_data.NO_FACE)
    self.assertIn('too small: 1x1', reason)

  def test_both_detectors_see_a_capped_copy_and_boxes_come_back(self):
    """HOG and the CNN fallback get <= MAX_SIDE px; boxes and landmarks are
    in the photo's pixels."""
    detector = _dlib_detector(self)
    photo = np.full([3000, 4500, 3], 0.5, np.float32)
    seen = []

    class Rect:

      def __init__(self, l, t, r, b):
        self.v = (l, t, r, b)

      def left(self):
        return self.v[0]

      def top(self):
        return self.v[1]

      def right(self):
        return self.v[2]

      def bottom(self):
        return self.v[3]

    class Detection:
      rect = Rect(99, 199, 298, 398)  # 200 px square, corner (99, 199)
      confidence = 1.0

    def hog(pixels, upsample, threshold):
      del upsample, threshold
      seen.append(('hog', pixels.shape))
      return [], [], []

    def cnn(pixels, upsample):
      del upsample
      seen.append(('cnn', pixels.shape))
      return [Detection()]

    # pylint: disable=protected-access
    original = (detector._detector, detector._cnn)
    self.addCleanup(setattr, detector, '_detector', original[0])
    self.addCleanup(setattr, detector, '_cnn', original[1])
    detector._detector = type('Hog', (), {'run': staticmethod(hog)})()
    detector._cnn = cnn
    # pylint: enable=protected-access
    faces = detector.detect(photo)
    self.assertEqual([s for _, s in seen], [(683, 1024, 3)] * 2)
    scale = 4500 / 1024.0
    self.assertAllClose(faces[0].box, np.array([99, 199, 299, 399]) * scale,
                        atol=1.0)
    self.assertEqual(faces[0].detector, 'cnn')

  def test_6000x4000_photo_without_a_face_is_fast_and_small(self):
    """The issue's case: HOG finds nothing, the CNN fallback runs; measured
    in a fresh process (peak resident memory of the child)."""
    _dlib_detector(self)
    import resource  # pylint: disable=g-import-not-at-top
    import subprocess  # pylint: disable=g-import-not-at-top
    import sys  # pylint: disable=g-import-not-at-top
    import time  # pylint: disable=g-import-not-at-top
    path = os.path.join(_tempdir(self), 'big.jpg')
    rng = np.random.RandomState(0)
    noise = (rng.rand(40, 60, 3) * 255).astype(np.uint8)
    Image.fromarray(noise).resize((6000, 4000), Image.BICUBIC).save(path)
    script = ('from preprocess import image_io, dlib_landmarks\n'
              'd = dlib_landmarks.get_detector()\n'
              'assert d.has_cnn_fallback\n'
              'print(len(d.detect(image_io.read_image(%r))))\n' % path)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    t0 = time.time()
    run = subprocess.run([sys.executable, '-c', script], cwd=repo,
                         capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, PYTHONPATH=repo))
    seconds = time.time() - t0
    self.assertEqual(run.returncode, 0, run.stderr)
    self.assertEqual(run.stdout.strip(), '0')
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    self.assertLess(peak_gb, 2.0)
    self.assertLess(seconds, 60.0)


if __name__ == '__main__':
  tf.test.main()
