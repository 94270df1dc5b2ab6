"""Pose sets of the self-augment mechanism (SAM), as data.

Each config is a list of K poses (pitch_deg, yaw_deg, roll_deg, tx, ty, sth):
the rotation the predicted face is rendered at, the screen translation that
goes with it, and a log-scale offset sth (0 everywhere in the paper).
Translations are in the paper's units, Chen20 pixels of its 300-px screen
(cyj907/unsupervised-detail-layer tools/render_utils.py adds tx, ty in screen
pixels); coarse/sam.py converts them (flag --sam_translation).

Angles here use the paper's own (Chen20's) sign; Chen20's rotation is the
transpose of renderer/camera.py's, so for single-axis poses our angle is
minus Chen20's (renderer/camera.py docstring). `pose_vectors` converts.

READINGS OF THE PAPER (Sec. 3.2 Eq. 2 and appendix C)

our_star (Table 4 "Our*", 26 poses). Eq. 2 prints
    yaw_i = delta * (pi/180) * 10 * (6 + i/4),
    tx_i = delta * (160/9) * (6 + i/4),
    delta = -1 for i in [0, 12], +1 for i in [13, 25],
    pitch = ty = roll = sth = 0.
Taken literally, i = 13..25 gives |yaw| = 92.5..122.5 degrees, which shows
the back of the head. The consistent reading (used here) is i mod 13 on the
second side: both sides sweep |yaw| = 60, 62.5, ..., 90 degrees (13 poses
each, 2.5-degree steps) with |tx| = (160/9)(6 + (i mod 13)/4) = 106.7 ... 160.
`our_star_literal` keeps the printed formula for comparison.

our (Table 4 "Our", 9 poses). The appendix text is garbled in print (index
sets overlap and repeat, one brace is cut). The consistent reading is a 3x3
grid of yaw and pitch in {-45, 0, +45} degrees, with translations of -/+80
pixels that go with each non-zero angle (tx with yaw, ty with pitch, the
opposite sign: "yaw_i = delta(pi/180)(-45), tx_i = delta(-80)" pairs -45
degrees with -80 and +45 with +80 after delta = -1; we keep the printed
pairing yaw = -45 <-> tx = -80, pitch = +45 <-> ty = -80), roll = sth = 0.
Grid order: i = 3 * row + col, row = pitch (-45, 0, +45), col = yaw
(-45, 0, +45); i = 4 is the frontal pose (the input's own view re-rendered).

none: no SAM (Chen20 baseline): K = 0.
"""

import numpy as np

# Column layout of every config array.
COLUMNS = ('pitch_deg', 'yaw_deg', 'roll_deg', 'tx', 'ty', 'sth')
# Width of Chen20's screen, the unit of the translations above.
PAPER_SCREEN_SIZE = 300.0


def _our_star(literal):
  rows = []
  for i in range(26):
    delta = -1.0 if i <= 12 else 1.0
    j = i if literal else i % 13
    t = 6.0 + j / 4.0
    rows.append((0.0, delta * 10.0 * t, 0.0, delta * (160.0 / 9.0) * t, 0.0,
                 0.0))
  return np.array(rows, np.float64)


def _our():
  rows = []
  for pitch in (-45.0, 0.0, 45.0):
    for yaw in (-45.0, 0.0, 45.0):
      tx = 80.0 * np.sign(yaw)    # yaw -45 <-> tx -80 (printed pairing)
      ty = -80.0 * np.sign(pitch)  # pitch +45 <-> ty -80 (printed pairing)
      rows.append((pitch, yaw, 0.0, tx, ty, 0.0))
  return np.array(rows, np.float64) + 0.0  # + 0.0: no negative zeros


CONFIGS = {
    'our_star': _our_star(literal=False),
    'our_star_literal': _our_star(literal=True),
    'our': _our(),
    'none': np.zeros([0, 6], np.float64),
}


def get(name):
  """[K, 6] float64 array (COLUMNS) of the named config (a copy)."""
  if name not in CONFIGS:
    raise ValueError('sam_poses: unknown SAM config %r; choose one of %s' %
                     (name, sorted(CONFIGS)))
  return CONFIGS[name].copy()


def num_poses(name):
  return get(name).shape[0]


def pose_vectors(name, image_width, translation='paper'):
  """Config -> [K, 6] float32 poses in renderer/camera.py's layout.

  (pitch, yaw, roll) in radians with our sign (minus the paper's, see the
  module docstring), tx, ty in pixels of a 224-px image, log_scale = sth.

  Args:
    name: config name.
    image_width: python int, unused except to validate (tx, ty of
      renderer/camera.py are already resolution independent).
    translation: 'paper' = the printed translations converted from Chen20's
      300-px screen to camera.py's 224-px units (x 224/300); 'none' = zero
      translation (coarse/sam.py re-centres).
  """
  if translation not in ('paper', 'none'):
    raise ValueError('sam_poses.pose_vectors: translation must be paper or '
                     'none, got %r' % (translation,))
  if int(image_width) <= 0:
    raise ValueError('sam_poses.pose_vectors: bad image_width %r' %
                     (image_width,))
  cfg = get(name)
  out = np.zeros([cfg.shape[0], 6], np.float32)
  out[:, :3] = -np.deg2rad(cfg[:, :3])
  if translation == 'paper':
    # Chen20 adds tx, ty in screen pixels, +x right and +y up (its image y
    # flip comes after), as camera.py does: only the unit changes. The angle
    # sign flips because the rotation is transposed; the image is the same.
    out[:, 3:5] = cfg[:, 3:5] * (224.0 / PAPER_SCREEN_SIZE)
  out[:, 5] = cfg[:, 5]
  return out
