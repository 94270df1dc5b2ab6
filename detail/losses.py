"""Detail-stage losses: Eq. 12-13 (paper Sec. 4) and Eq. 19-20 (appendix B.0.2).

L = a1 * L_p + a2 * L_s + a3 * R_disp                         (Eq. 12 / 19)
L_s = sum_i sum_{j in N(i)} b1 |dn(i) - dn(j)|^2 + b2 |dz(i) - dz(j)|^2
                                                                    (Eq. 13)
R_disp = sum_i w_dn |dn(i)|^2 + w_dz |dz(i)|^2                     (Eq. 20)

dz is the displacement along model-space depth (millimetres) and dn the change
of the unit normal caused by it, both on the UV grid (the dense detail mesh has
one vertex per UV texel, so N(i) = the 8 texels within radius 1). Sums are
taken as means over valid terms, as Chen20's losses.py does (tf.reduce_mean),
so the weights do not depend on the UV resolution.

Units (as coarse/losses.py): Chen20's weights were set for colours in
[0, 255] (its fine render is scaled by 255 before its photo_loss), so L_p
measures colour differences x 255 while images here are in [0, 1]. As
Chen20's fine photo loss (controller.py: create_fine_photo_loss_mask_from_seg
times the fine render's face mask), L_p counts only skin pixels of the input:
the rendered face region without eyes, times the input's skin mask when one
is given (preprocess/skin_mask.py for photos; the rendered skin region for
synthetic faces).
"""

import tensorflow as tf

from coarse import losses as coarse_losses

_EPS = 1e-8
# Colours are compared x 255, the units Chen20's weights were set for.
COLOR_SCALE = coarse_losses.COLOR_SCALE
# Chen20 losses.py disp_loss clips squared values to [0, 10].
_DISP_CLIP = 10.0


# Eq. 12-13 / 19-20 weights, Chen20 run_train.sh (fine model): the one place
# these defaults are written (flags/detail_flags.py and
# detail/displacement_fitting.py read them from here).
DEFAULT_WEIGHTS = {
    'photo': 1.0,  # a1, photometric loss.
    'smooth': 1.0,  # a2, smoothness loss L_s (Chen20 --smooth_weight).
    'disp_reg': 1.0,  # a3, R_disp.
    'smooth_normal': 1.0,  # b1 (Chen20 --smooth_normal_weight).
    'smooth_depth': 0.01,  # b2 (Chen20 --smooth_uv_weight).
    'disp_normal': 0.001,  # w_dn (Chen20 --disp_normal_weight).
    'disp_depth': 0.001,  # w_dz (Chen20 --disp_weight).
}

def photometric_loss(images, renders, mask):
  """L_p: mean over masked pixels of the per-pixel L2 colour distance (L_{2,1}).

  Same form and units as the coarse stage (coarse/losses.py photo_loss,
  Chen20 losses.py photo_loss): the distance is measured in [0, 255] colour
  units, so a difference of 0.1 in every pixel of one channel gives 25.5.
  Args:
    images, renders: [B,H,W,3] float32 in [0,1].
    mask: [B,H,W,1] float32 in [0,1], visible skin pixels.
  Returns: scalar float32, colour distance in [0, 255] units.
  """
  diff = (images - renders) * COLOR_SCALE
  dist = tf.sqrt(tf.reduce_sum(tf.square(diff) * mask, -1) + _EPS)
  dist = dist * mask[..., 0]
  per_image = tf.reduce_sum(dist,
                            [1, 2]) / (tf.reduce_sum(mask, [1, 2, 3]) + _EPS)
  return tf.reduce_mean(per_image)


def _neighbour_pairs(x):
  """Yields (a, b) slices of x [B,S,S,C] for the 4 neighbour directions of the
  8-neighbourhood (each unordered pair once)."""
  yield x[:, :, 1:], x[:, :, :-1]  # horizontal
  yield x[:, 1:, :], x[:, :-1, :]  # vertical
  yield x[:, 1:, 1:], x[:, :-1, :-1]  # diagonal
  yield x[:, 1:, :-1], x[:, :-1, 1:]  # anti-diagonal


def neighbour_smoothness(uv_map, uv_mask):
  """Mean over valid neighbour pairs (both texels in mask) of |m(i) - m(j)|^2.

  Args:
    uv_map: [B,S,S,C] float32.
    uv_mask: [S,S,1] or [B,S,S,1] float32 in {0,1}.
  Returns: scalar float32.
  """
  uv_mask = tf.broadcast_to(uv_mask, tf.concat([tf.shape(uv_map)[:3], [1]], 0))
  total = 0.0
  count = 0.0
  for (a, b), (ma, mb) in zip(_neighbour_pairs(uv_map),
                              _neighbour_pairs(uv_mask)):
    w = ma * mb
    total += tf.reduce_sum(
        tf.reduce_sum(tf.square(a - b), -1, keepdims=True) * w)
    count += tf.reduce_sum(w)
  return total / (count + _EPS)


def smoothness_loss(delta_normals, delta_depth, uv_mask, b1, b2):
  """L_s, Eq. 13.

  Args:
    delta_normals: [B,S,S,3] normal after minus before displacement.
    delta_depth: [B,S,S,1] displacement depth in mm.
    uv_mask: [S,S,1] or [B,S,S,1] texels of the detail mesh.
    b1, b2: weights (Chen20 smooth_normal_weight 1.0, smooth_uv_weight 0.01).
  """
  return (b1 * neighbour_smoothness(delta_normals, uv_mask) +
          b2 * neighbour_smoothness(delta_depth, uv_mask))


def displacement_regulariser(delta_normals, delta_depth, uv_mask, w_dn, w_dz):
  """R_disp, Eq. 20: masked mean of clipped |dn|^2 and dz^2 (Chen20
  disp_loss)."""
  uv_mask = tf.broadcast_to(uv_mask,
                            tf.concat([tf.shape(delta_depth)[:3], [1]], 0))
  denom = tf.reduce_sum(uv_mask) + _EPS
  dn = tf.clip_by_value(
      tf.reduce_sum(tf.square(delta_normals), -1, keepdims=True), 0.0,
      _DISP_CLIP)
  dz = tf.clip_by_value(tf.square(delta_depth), 0.0, _DISP_CLIP)
  return (w_dn * tf.reduce_sum(dn * uv_mask) +
          w_dz * tf.reduce_sum(dz * uv_mask)) / denom


def photo_mask_with_skin(photo_mask, skin_mask=None):
  """The pixels L_p counts: the render's photo mask times the input's skin.

  Args:
    photo_mask: [B,H,W,1] float32 in [0,1], rendered face without eyes
      (detail.displacement.DetailedFace.photo_mask).
    skin_mask: None or [B,H,W,1] float32 in [0,1], skin pixels of the input
      image (Chen20: the face parser's skin class).
  Returns: [B,H,W,1] float32 in [0,1].
  """
  if skin_mask is None:
    return photo_mask
  skin_mask = tf.convert_to_tensor(skin_mask, tf.float32)
  return tf.clip_by_value(photo_mask * skin_mask, 0.0, 1.0)


def total_loss(images, renders, photo_mask, delta_normals, delta_depth, uv_mask,
               weights, skin_mask=None):
  """Eq. 12 / 19.

  Args:
    images, renders: [B,H,W,3] float32 in [0,1].
    photo_mask: [B,H,W,1] float32, rendered face pixels without eyes.
    delta_normals: [B,S,S,3] normal change on the UV grid.
    delta_depth: [B,S,S,1] displacement in mm on the UV grid.
    uv_mask: [S,S,1] or [B,S,S,1] texels of the detail mesh.
    weights: dict (or object with attributes) photo (a1), smooth (a2),
      disp_reg (a3), smooth_normal (b1), smooth_depth (b2), disp_normal
      (w_dn), disp_depth (w_dz).
    skin_mask: None or [B,H,W,1] skin pixels of the input; L_p counts
      photo_mask x skin_mask.
  Returns: (total scalar, dict of the unweighted terms and 'total').
  """
  w = weights if isinstance(weights, dict) else vars(weights)
  l_p = photometric_loss(images, renders,
                         photo_mask_with_skin(photo_mask, skin_mask))
  l_s = smoothness_loss(delta_normals, delta_depth, uv_mask, w['smooth_normal'],
                        w['smooth_depth'])
  r_disp = displacement_regulariser(delta_normals, delta_depth, uv_mask,
                                    w['disp_normal'], w['disp_depth'])
  total = w['photo'] * l_p + w['smooth'] * l_s + w['disp_reg'] * r_disp
  return total, {
      'photo': l_p,
      'smooth': l_s,
      'disp_reg': r_disp,
      'total': total
  }


def weights_from_flags(flag_values):
  """Loss weights dict from flags/detail_flags.py values."""
  f = flag_values
  return {
      'photo': f.detail_photo_weight,
      'smooth': f.detail_smooth_weight,
      'disp_reg': f.detail_disp_reg_weight,
      'smooth_normal': f.detail_smooth_normal_weight,
      'smooth_depth': f.detail_smooth_depth_weight,
      'disp_normal': f.detail_disp_normal_weight,
      'disp_depth': f.detail_disp_depth_weight
  }
