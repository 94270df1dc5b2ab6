"""SAM pose configs (coarse/sam_poses.py): exact angles and translations."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

import bfm
from coarse import coefficients
from coarse import sam
from coarse import sam_poses
from renderer import camera


def _expected_our_star(literal):
  """Eq. 2 written out: i = 0..25, delta = -1 then +1, j = i or i mod 13."""
  i = np.arange(26)
  delta = np.where(i <= 12, -1.0, 1.0)
  j = i if literal else i % 13
  yaw = delta * 10.0 * (6.0 + j / 4.0)
  tx = delta * (160.0 / 9.0) * (6.0 + j / 4.0)
  return yaw, tx


class SamPosesTest(tf.test.TestCase, parameterized.TestCase):

  def test_our_star_sweeps_60_to_90_degrees_on_both_sides(self):
    cfg = sam_poses.get('our_star')
    self.assertEqual(cfg.shape, (26, 6))
    steps = 60.0 + 2.5 * np.arange(13)  # 60, 62.5, ..., 90
    self.assertAllClose(cfg[:13, 1], -steps)
    self.assertAllClose(cfg[13:, 1], steps)
    # tx = yaw * (160/9) / 10: -106.67 at -60 deg, +160 at +90 deg.
    self.assertAllClose(cfg[:, 3], cfg[:, 1] * 16.0 / 9.0)
    self.assertAllClose(cfg[0, 3], -320.0 / 3.0)
    self.assertAllClose(cfg[25, 3], 160.0)
    yaw, tx = _expected_our_star(literal=False)
    self.assertAllClose(cfg[:, 1], yaw)
    self.assertAllClose(cfg[:, 3], tx)
    for col in ('pitch_deg', 'roll_deg', 'ty', 'sth'):
      self.assertAllEqual(cfg[:, sam_poses.COLUMNS.index(col)], np.zeros(26))

  def test_our_star_literal_is_eq2_as_printed(self):
    cfg = sam_poses.get('our_star_literal')
    yaw, tx = _expected_our_star(literal=True)
    self.assertAllClose(cfg[:, 1], yaw)
    self.assertAllClose(cfg[:, 3], tx)
    # The printed formula turns the second side past 90 degrees.
    self.assertAllClose(cfg[13, 1], 92.5)
    self.assertAllClose(cfg[25, 1], 122.5)
    self.assertAllClose(cfg[:13], sam_poses.get('our_star')[:13])

  def test_our_is_a_3x3_yaw_pitch_grid(self):
    cfg = sam_poses.get('our')
    self.assertEqual(cfg.shape, (9, 6))
    for i, (pitch, yaw) in enumerate([(p, y) for p in (-45, 0, 45)
                                      for y in (-45, 0, 45)]):
      self.assertEqual(tuple(cfg[i]),
                       (pitch, yaw, 0.0, 80.0 * np.sign(yaw),
                        -80.0 * np.sign(pitch), 0.0), msg='pose %d' % i)
    self.assertAllEqual(cfg[4], np.zeros(6))  # frontal in the middle
    self.assertFalse(np.any(np.signbit(cfg[cfg == 0])))  # no -0.0

  def test_none_is_empty(self):
    self.assertEqual(sam_poses.get('none').shape, (0, 6))
    self.assertEqual(sam_poses.num_poses('none'), 0)
    self.assertEqual(sam_poses.pose_vectors('none', 224).shape, (0, 6))

  def test_get_returns_a_copy_and_names_unknown_configs(self):
    cfg = sam_poses.get('our')
    cfg[:] = 7.0
    self.assertEqual(sam_poses.get('our')[0, 0], -45.0)
    with self.assertRaisesRegex(ValueError,
                                "unknown SAM config 'ours'.*our_star"):
      sam_poses.get('ours')

  @parameterized.parameters('our_star', 'our_star_literal', 'our')
  def test_pose_vectors_convert_units_and_sign(self, name):
    cfg = sam_poses.get(name)
    paper = sam_poses.pose_vectors(name, 224, 'paper')
    self.assertEqual(paper.dtype, np.float32)
    # Angles: radians, minus the paper's sign (renderer/camera.py docstring).
    self.assertAllClose(paper[:, :3], -cfg[:, :3] * np.pi / 180.0)
    # Translations: Chen20's 300-px screen pixels -> 224-px image pixels.
    self.assertAllClose(paper[:, 3:5], cfg[:, 3:5] * 224.0 / 300.0)
    self.assertAllEqual(paper[:, 5], cfg[:, 5])
    untranslated = sam_poses.pose_vectors(name, 64, 'none')
    self.assertAllEqual(untranslated[:, 3:5], np.zeros_like(paper[:, 3:5]))
    self.assertAllClose(untranslated[:, :3], paper[:, :3])
    with self.assertRaisesRegex(ValueError, 'translation must be'):
      sam_poses.pose_vectors(name, 224, 'sideways')

  def test_positive_config_yaw_turns_the_nose_to_image_left(self):
    # Chen20's sign: its positive yaw turns the face towards image LEFT
    # (renderer/camera.py docstring), so the last our_star pose (+90 deg)
    # puts the nose tip left of the head's centre.
    model = bfm.load('synthetic')
    zero = coefficients.Coefficients.zeros(model, 1)
    verts = model.vertices(zero.identity, zero.expression)
    pose = sam_poses.pose_vectors('our_star', 224, 'none')[-1:]
    screen = camera.orthographic_project(verts, pose, (224, 224))[0].numpy()
    nose = screen[model.landmarks68[30], 0]
    self.assertLess(nose, 0.5 * (screen[:, 0].min() + screen[:, 0].max()))

  @parameterized.parameters(('our_star', 224), ('our_star_literal', 224),
                            ('our', 224), ('our_star', 64), ('our', 96))
  def test_mean_face_stays_inside_the_frame(self, name, size):
    model = bfm.load('synthetic')
    augment = sam.SelfAugment(model, network=None, config=name,
                              image_size=size)  # default: recentre
    k = augment.num_poses
    zero = coefficients.Coefficients.zeros(model, 2)
    verts = tf.repeat(model.vertices(zero.identity, zero.expression), k, 0)
    poses = augment.recentre(verts, augment.render_poses(2))
    screen = camera.orthographic_project(verts, poses, (size, size)).numpy()
    self.assertEqual(screen.shape[0], 2 * k)
    self.assertGreater(screen[..., :2].min(), 0.0)
    self.assertLess(screen[..., :2].max(), float(size))
    # Re-centred: each render's bounding box centre is the image centre.
    centre = 0.5 * (screen[..., :2].min(1) + screen[..., :2].max(1))
    self.assertAllClose(centre, np.full_like(centre, size / 2.0), atol=1e-2)


if __name__ == '__main__':
  tf.test.main()
