"""Tests for renderer/shading.py (Chen20 SH) against hand-computed values."""

import math

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from renderer import shading
from tests import test_utils


class ShadingTest(tf.test.TestCase, parameterized.TestCase):

  def test_basis_hand_computed(self):
    x, y, z = 0.6, 0.0, 0.8
    pi = math.pi
    expected = [
        math.sqrt(1 / (4 * pi)),                       # l0
        math.sqrt(3 / (4 * pi)) * z,                   # l1z
        math.sqrt(3 / (4 * pi)) * x,                   # l1x
        0.0,                                           # l1y
        math.sqrt(5 / (16 * pi)) * (3 * z * z - 1),    # l2z2
        math.sqrt(15 / (4 * pi)) * x * z,              # l2xz
        0.0,                                           # l2yz
        math.sqrt(15 / (16 * pi)) * (x * x - y * y),   # l2x2-y2
        0.0,                                           # l2xy
    ]
    self.assertAllClose(shading.sh_basis([[x, y, z]]), [expected])

  def test_basis_y_terms(self):
    # A normal along +y only lights l1y and the y part of l2x2-y2 (and l2z2).
    pi = math.pi
    basis = shading.sh_basis([0.0, 1.0, 0.0]).numpy()
    self.assertAllClose(basis, [
        math.sqrt(1 / (4 * pi)), 0, 0, math.sqrt(3 / (4 * pi)),
        -math.sqrt(5 / (16 * pi)), 0, 0, -math.sqrt(15 / (16 * pi)), 0])

  def test_shade_hand_computed(self):
    pi = math.pi
    normal = (0.6, 0.0, 0.8)
    albedo = (0.5, 0.25, 1.0)
    lighting = np.zeros([1, 27], np.float32)
    lighting[0, 0] = 0.1        # red l0
    lighting[0, 9 + 2] = 0.4    # green l1x
    lighting[0, 18 + 5] = -0.2  # blue l2xz
    c0 = math.sqrt(1 / (4 * pi))
    c1 = math.sqrt(3 / (4 * pi))
    c2 = math.sqrt(15 / (4 * pi))
    # Every channel: +0.3 on l0 and l1z (Chen20's ambient offset).
    ambient = 0.3 * c0 + 0.3 * c1 * 0.8
    expected = [[[0.5 * (ambient + 0.1 * c0),
                  0.25 * (ambient + 0.4 * c1 * 0.6),
                  1.0 * (ambient - 0.2 * c2 * 0.6 * 0.8)]]]
    shaded = shading.sh_shade([[albedo]], [[normal]], lighting)
    self.assertAllClose(shaded, expected)

  def test_zero_lighting_is_lit(self):
    shaded = shading.sh_shade(np.ones([2, 1, 3]), [[[0., 0., 1.]]] * 2,
                              np.zeros([2, 27]))
    self.assertAllGreater(shaded, 0.2)

  @parameterized.parameters(
      (lambda: shading.sh_basis(np.zeros([4, 2])), 'normals'),
      (lambda: shading.sh_shade(np.zeros([1, 4, 3]), np.zeros([1, 4, 3]),
                                np.zeros([1, 9])), 'lighting'),
      (lambda: shading.sh_shade(np.zeros([4, 3]), np.zeros([1, 4, 3]),
                                np.zeros([1, 27])), 'albedo'),
  )
  def test_bad_input(self, fn, what):
    test_utils.assert_rejects(self, fn, what)


if __name__ == '__main__':
  tf.test.main()
