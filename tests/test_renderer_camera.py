"""Tests for renderer/camera.py against hand-computed projections."""

import math

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from renderer import camera


def _rx(a):
  c, s = math.cos(a), math.sin(a)
  return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _ry(a):
  c, s = math.cos(a), math.sin(a)
  return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rz(a):
  c, s = math.cos(a), math.sin(a)
  return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


class CameraTest(tf.test.TestCase, parameterized.TestCase):

  def test_rotation_matrix_is_rz_ry_rx(self):
    angles = np.array([[0.3, -0.7, 1.1], [-0.2, 0.5, 0.0]], np.float32)
    expected = [_rz(a[2]) @ _ry(a[1]) @ _rx(a[0]) for a in angles]
    self.assertAllClose(camera.rotation_matrix(angles), expected, atol=1e-6)

  @parameterized.parameters(
      # (pose angles, rotated vertex (10, 20, 30) by hand)
      ((0.0, 0.0, 0.0), (10.0, 20.0, 30.0)),
      ((0.0, math.pi / 2, 0.0), (30.0, 20.0, -10.0)),   # yaw: x' = z, z' = -x
      ((math.pi / 2, 0.0, 0.0), (10.0, -30.0, 20.0)),   # pitch: y' = -z
      ((0.0, 0.0, math.pi / 2), (-20.0, 10.0, 30.0)),   # roll: x' = -y
  )
  def test_orthographic_hand_computed(self, angles, rotated):
    # W = 448, H = 224, log_scale = log 2: s = 2 * 448 / 224 = 4 px/mm,
    # tx = 5 -> 5 * 448/224 = 10 px right, ty = -3 -> -3 px up (3 px down).
    pose = np.array([list(angles) + [5.0, -3.0, math.log(2.0)]], np.float32)
    vertices = np.array([[[10.0, 20.0, 30.0]]], np.float32)
    px, py, pz = (4.0 * r for r in rotated)
    expected = [[[224.0 + px + 10.0, 112.0 - (py - 3.0), pz]]]
    screen = camera.orthographic_project(vertices, pose, (224, 448))
    self.assertAllClose(screen, expected, atol=1e-3)

  def test_reference_scale(self):
    # At 224 px and log_scale 0, 1 mm = 1 px and the origin is the centre.
    vertices = np.array([[[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]], np.float32)
    screen = camera.orthographic_project(vertices, np.zeros([1, 6]),
                                         (224, 224))
    self.assertAllClose(screen, [[[112, 112, 0], [113, 111, 1]]])

  def test_sign_conventions(self):
    nose = np.array([[[0.0, 0.0, 50.0]]], np.float32)
    head_top = np.array([[[0.0, 80.0, 0.0]]], np.float32)
    size = (224, 224)

    def project(v, pitch=0.0, yaw=0.0, roll=0.0):
      pose = np.array([[pitch, yaw, roll, 0, 0, 0]], np.float32)
      return camera.orthographic_project(v, pose, size).numpy()[0, 0]

    self.assertGreater(project(nose, yaw=0.3)[0], 112.0)       # image right
    self.assertGreater(project(nose, pitch=0.3)[1], 112.0)     # looks down
    self.assertLess(project(head_top, roll=0.3)[0], 112.0)     # CCW in image
    # The nose is closer than the face centre: larger z = closer.
    self.assertGreater(project(nose)[2], 0.0)

  def test_screen_to_clip(self):
    screen = np.array([[[0.0, 0.0, 50.0], [300.0, 200.0, -100.0],
                        [150.0, 50.0, 0.0]]], np.float32)
    clip = camera.screen_to_clip(screen, (200, 300), depth_range_px=1000.0)
    expected = [[[-1, 1, -0.05, 1], [1, -1, 0.1, 1], [0, 0.5, 0, 1]]]
    self.assertAllClose(clip, expected)

  def test_perspective_hand_computed(self):
    vertices = np.array([[[10.0, 20.0, 0.0], [0.0, 0.0, 100.0]]], np.float32)
    angles = np.zeros([1, 3], np.float32)
    translation = np.array([[0.0, 0.0, -500.0]], np.float32)
    size = (200, 300)
    screen = camera.perspective_project(vertices, angles, translation, 1000.0,
                                        size)
    # c = (10, 20, -500): x = 150 + 1000 * 10 / 500, y = 100 - 1000 * 20/500.
    # c = (0, 0, -400): the image centre.
    self.assertAllClose(screen, [[[170.0, 60.0, -500.0],
                                  [150.0, 100.0, -400.0]]])
    clip = camera.perspective_clip(vertices, angles, translation, 1000.0,
                                   size, near=400.0, far=500.0).numpy()
    ndc = clip[..., :3] / clip[..., 3:]
    self.assertAllClose(clip[..., 3], [[500.0, 400.0]])
    # Same pixels as perspective_project; near plane -> -1, far plane -> +1.
    self.assertAllClose(ndc, [[[2 * 170 / 300 - 1, 1 - 2 * 60 / 200, 1.0],
                               [0.0, 0.0, -1.0]]], atol=1e-5)

  @parameterized.parameters(
      (lambda: camera.orthographic_project(np.zeros([1, 4, 2]),
                                           np.zeros([1, 6]), (8, 8)),
       'vertices'),
      (lambda: camera.orthographic_project(np.zeros([1, 4, 3]),
                                           np.zeros([1, 5]), (8, 8)), 'pose'),
      (lambda: camera.orthographic_project(np.zeros([1, 4, 3]),
                                           np.zeros([1, 6]), (0, 8)),
       'image_size'),
      (lambda: camera.rotation_matrix(np.zeros([3])), 'angles'),
      (lambda: camera.screen_to_clip(np.zeros([1, 2, 3]), (4, 4), 0.0),
       'depth_range_px'),
  )
  def test_bad_input(self, fn, what):
    with self.assertRaisesRegex(ValueError, what):
      fn()


if __name__ == '__main__':
  tf.test.main()
