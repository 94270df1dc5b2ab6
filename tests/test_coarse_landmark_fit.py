"""coarse/landmark_fit.py: the closed-form MAP fit to 2D landmarks."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

import bfm
from coarse import face_reconstruction
from coarse import landmark_fit
from eval import protocols
from renderer import camera
from tests import test_utils

SIZE = (240, 240)


def _project(model, identity, expression, pose, source):
  """Exact landmarks of a model face: [1,68,2] pixels, and its vertices."""
  vertices = model.vertices(identity[None], expression[None])
  screen = camera.orthographic_project(vertices, pose[None], SIZE)
  if source == 'dlib':
    landmarks = face_reconstruction.landmarks2d(model, screen)
  else:
    idx = landmark_fit.landmark_vertices(model, source)
    landmarks = tf.gather(screen[..., :2], idx, axis=1)
  return landmarks.numpy(), vertices.numpy()[0]


def _nme(model, truth, vertices):
  return protocols.nme(truth, truth[model.keypoints7], vertices,
                       model.triangles, vertices[model.keypoints7]).mean


class LandmarkFitTest(tf.test.TestCase, parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.model = bfm.load('synthetic')

  @parameterized.product(yaw_deg=(0.0, 40.0, -70.0),
                         source=('facemesh', 'dlib'))
  def test_recovers_pose_and_beats_the_mean_face_in_model(self, yaw_deg,
                                                          source):
    # Exact landmarks of random faces of the fitted model (the Surrey Face
    # Model: a statistical prior; the built-in synthetic face's hand-made
    # modes are not): the pose comes back within a few degrees (the prior
    # trades a little pose for shape), and on average the shape beats the
    # mean face.
    test_utils.require_data('sfm', 'sfm_shape_3448.bin')
    model = bfm.load('sfm')
    rng = np.random.RandomState(7)
    fit_nme, mean_nme = [], []
    for _ in range(4):
      identity = rng.normal(size=model.num_id).astype(np.float32)
      expression = np.zeros([model.num_exp], np.float32)
      pose = np.array([np.deg2rad(rng.uniform(-10, 10)), np.deg2rad(yaw_deg),
                       np.deg2rad(rng.uniform(-10, 10)), 4.0, -3.0,
                       np.log(0.9)], np.float32)
      landmarks, truth = _project(model, identity, expression, pose, source)
      fit = landmark_fit.fit_landmarks(model, landmarks, SIZE, source)
      # dlib's sliding jaw adds a few degrees (measured up to 8 frontally).
      self.assertAllClose(np.rad2deg(fit.pose[0, :3]), np.rad2deg(pose[:3]),
                          atol=5.0 if source == 'facemesh' else 10.0)
      fitted = model.vertices(fit.identity, fit.expression).numpy()[0]
      fit_nme.append(_nme(model, truth, fitted))
      mean_nme.append(_nme(model, truth, model.mean_shape))
    # Measured: 0.44-0.71 x the mean face's NME.
    self.assertLess(np.mean(fit_nme), 0.8 * np.mean(mean_nme))

  def test_pose_only_keeps_the_mean_face(self):
    landmarks, _ = _project(self.model,
                            np.ones([self.model.num_id], np.float32),
                            np.zeros([self.model.num_exp], np.float32),
                            np.array([0, 0.3, 0, 0, 0, 0], np.float32),
                            'facemesh')
    fit = landmark_fit.fit_landmarks(self.model, landmarks, SIZE, 'facemesh',
                                     fit_shape=False)
    self.assertAllEqual(fit.identity, np.zeros_like(fit.identity))
    self.assertAllEqual(fit.expression, np.zeros_like(fit.expression))

  def test_mean_face_landmarks_give_zero_coefficients(self):
    landmarks, _ = _project(self.model,
                            np.zeros([self.model.num_id], np.float32),
                            np.zeros([self.model.num_exp], np.float32),
                            np.array([0.1, -0.4, 0.05, 0, 0, 0], np.float32),
                            'facemesh')
    fit = landmark_fit.fit_landmarks(self.model, landmarks, SIZE, 'facemesh')
    self.assertLess(np.abs(fit.identity).max(), 1e-2)
    self.assertLess(np.abs(fit.expression).max(), 1e-2)

  def test_noise_is_in_millimetres_not_pixels(self):
    # The same face photographed twice as large: the landmark likelihood is
    # in mm on the face, so the shape estimate must not change. (With
    # weights in pixels, the larger photo would trust its landmarks 4x more
    # against the prior.)
    rng = np.random.RandomState(3)
    landmarks, _ = _project(self.model,
                            rng.normal(size=self.model.num_id).astype(
                                np.float32),
                            np.zeros([self.model.num_exp], np.float32),
                            np.array([0, 0.2, 0, 0, 0, 0], np.float32),
                            'facemesh')
    landmarks = landmarks + rng.normal(0, 2.0, landmarks.shape)
    small = landmark_fit.fit_landmarks(self.model, landmarks, SIZE,
                                       'facemesh')
    large = landmark_fit.fit_landmarks(self.model, landmarks * 2.0,
                                       (SIZE[0] * 2, SIZE[1] * 2), 'facemesh')
    self.assertAllClose(small.identity, large.identity, atol=1e-3)
    self.assertAllClose(small.pose[:, :3], large.pose[:, :3], atol=1e-4)

  def test_occluded_landmarks_count_less(self):
    # Moving the jaw points of the far side of a face turned by 60 degrees
    # moves the fit less than moving those of the near side by as much.
    model = self.model
    zeros_id = np.zeros([model.num_id], np.float32)
    zeros_exp = np.zeros([model.num_exp], np.float32)
    pose = np.array([0, np.deg2rad(60.0), 0, 0, 0, 0], np.float32)
    landmarks, _ = _project(model, zeros_id, zeros_exp, pose, 'facemesh')
    base = landmark_fit.fit_landmarks(model, landmarks, SIZE, 'facemesh')
    changes = []
    for side in (range(0, 6), range(11, 17)):
      moved = landmarks.copy()
      moved[0, list(side), 1] += 6.0
      fit = landmark_fit.fit_landmarks(model, moved, SIZE, 'facemesh')
      changes.append(np.abs(fit.identity - base.identity).sum())
    # Positive yaw turns the subject's left (points 9..16) away.
    self.assertLess(changes[1], changes[0])

  def test_bad_input_is_named(self):
    with self.assertRaisesRegex(ValueError, r'\[B,68,2\]'):
      landmark_fit.fit_landmarks(self.model, np.zeros([1, 5, 2]), SIZE)
    with self.assertRaisesRegex(ValueError, 'NaN'):
      landmark_fit.fit_landmarks(self.model, np.full([1, 68, 2], np.nan),
                                 SIZE)
    with self.assertRaisesRegex(ValueError, 'facemesh'):
      landmark_fit.fit_landmarks(self.model, np.zeros([1, 68, 2]), SIZE,
                                 'hand-placed')


class RealPhotoTest(tf.test.TestCase):

  def test_profile_photo_is_found_and_turned(self):
    from preprocess import face_crop  # pylint: disable=g-import-not-at-top
    from preprocess import face_landmarks  # pylint: disable=g-import-not-at-top
    from preprocess import image_io  # pylint: disable=g-import-not-at-top
    path = test_utils.require_data('faces', 'aflw2000_sample',
                                   'image00181.jpg')
    image = image_io.read_image(path)
    faces = face_landmarks.detect_faces(image, 'facemesh')
    self.assertNotEmpty(faces, 'FaceMesh found no face in the profile')
    crop, landmarks, _ = face_crop.crop_face(image, faces[0].landmarks, 224)
    del crop
    test_utils.require_data('sfm', 'sfm_shape_3448.bin')
    fit = landmark_fit.fit_landmarks(bfm.load('sfm'), landmarks[None],
                                     (224, 224), 'facemesh')
    self.assertGreater(abs(np.rad2deg(fit.pose[0, 1])), 45.0)


if __name__ == '__main__':
  tf.test.main()
