"""Coarse-stage losses (paper Eq. 14-18), in Chen20's form and units.

Chen20 = cyj907/unsupervised-detail-layer losses.py and controller.py. Its
images are in [0, 255] and its landmarks in pixels of a 300-px screen; the
loss weights (flags/coarse_flags.py) were tuned for those units, so the
photometric loss here measures colours x 255 and the landmark losses measure
pixels rescaled to a 300-px image, whatever the training resolution.

Chen20 has two landmark terms: the 68-landmark loss of Eq. 16
(`landmark_loss`, its landmark3d_weight 1.0) and a second one on the face
contour alone (`contour_landmark_loss`, its landmark2d_weight 0.5), whose
model-side point slides along the outline where the fixed contour vertex is
hidden. The second needs landmarks that follow the visible outline (dlib's,
the synthetic set's); coarse/train.py applies it to those and leaves it out
for FaceMesh's fixed jaw points (see `contour_landmark_term`).

Not in the paper or Chen20: `vertex_loss`, a supervised term against the
ground-truth mesh of synthetic training faces (weight 'vertex', 0 by
default). The synthetic benchmark's pre-training uses it as a listed
shortcut (eval/synthetic_benchmark.py); photos have no ground truth.
"""

import numpy as np
import tensorflow as tf

from coarse import face_reconstruction

# Chen20 renders its coarse faces on a 300-px screen (face_model.py).
LANDMARK_REFERENCE_SIZE = 300.0
COLOR_SCALE = 255.0
_EPS = 1e-8

# Eq. 14 / 18 weights, Chen20 run_train.sh (coarse model): the one place
# these defaults are written (flags/coarse_flags.py and coarse/fitting.py
# read them from here).
DEFAULT_WEIGHTS = {
    'photo': 1.0,  # w1, photometric L2,1 loss.
    'landmark': 1.0,  # w2, 68-landmark loss (Chen20 landmark3d_weight).
    'id': 0.8,  # w3, perceptual identity loss; needs VGG weights.
    'shape_prior': 3.0,  # w4 * omega_s, identity coefficient prior.
    'exp_prior': 10.0,  # w4 * omega_e, expression coefficient prior.
    'tex_prior': 1.0,  # texture coefficient prior.
    # Chen20 landmark2d_weight: the contour landmarks with a sliding
    # correspondence (contour_landmark_loss).
    'contour_landmark': 0.5,
    # Not Chen20: supervised model-space vertex loss against the known mesh
    # of synthetic faces (`vertex_loss`); off, as in the paper.
    'vertex': 0.0,
}
# The image landmarks of the contour term: the 17 iBUG jaw points (Chen20:
# the 18 contour points of its 86-point layout).
CONTOUR_LANDMARKS = np.arange(17)
# Chen20's cap on a hidden contour landmark's weighted squared distance to
# the outline (7 px of a 224-px image, in the 300-px units; its loss
# compares a squared distance with it as it stands).
CONTOUR_CAP = 7.0 / 224.0 * LANDMARK_REFERENCE_SIZE
# Stands for "no outline vertex" in the nearest-vertex search.
_FAR = 1e10


def landmark_weights():
  """[68] float32 per-landmark weights, Chen20's weighted_landmark_loss.

  Chen20 weights its 86-point layout (tools/const.py lmk86_region); mapped
  to iBUG-68 by region:
    jaw 1, 4, 8, 12, 15 -> 2 (Chen20 contour 1, 4, 8, 12, 15);
    eye corners 36, 39, 42, 45 -> 5 (Chen20 35/38, 43/46);
    eyelid centres: Chen20 weights one upper and one lower lid point per eye
      15; iBUG has two points per lid there, so 37, 38, 40, 41, 43, 44, 46,
      47 get 7.5 each (same total);
    nose tip 30 and nostril ends 31, 35 -> 5 (Chen20 59, 60, 63);
    mouth corners 48, 54 -> 5 (Chen20 66, 70);
    lip centres 51, 57, 62, 66 -> 10 (Chen20 68, 71, 79, 82);
    all others 1.
  """
  w = np.ones([68], np.float32)
  w[[1, 4, 8, 12, 15]] = 2.0
  w[[36, 39, 42, 45]] = 5.0
  w[[37, 38, 40, 41, 43, 44, 46, 47]] = 7.5
  w[[30, 31, 35]] = 5.0
  w[[48, 54]] = 5.0
  w[[51, 57, 62, 66]] = 10.0
  return w


def contour_landmark_weights():
  """[17] float32 weights of the hidden contour landmarks (Chen20's
  landmark2d_loss: 5 on its contour points 1, 4, 8, 12, 15, 1 elsewhere;
  mapped to the iBUG jaw as `landmark_weights` maps them)."""
  w = np.ones([len(CONTOUR_LANDMARKS)], np.float32)
  w[[1, 4, 8, 12, 15]] = 5.0
  return w


def nearest_outline_vertex(points, screen_xy, outline):
  """The outline vertex nearest each point: the sliding correspondence.

  Args:
    points: [B,L,2] float32 pixels.
    screen_xy: [B,N,2] float32 pixels of the model's vertices.
    outline: [B,N] float32 in {0,1} (face_reconstruction.silhouette_vertices).
  Returns:
    (index [B,L] int32 vertex, squared distance [B,L] float32 px^2; about
    1e10 where the outline is empty). The distance is differentiable w.r.t.
    the chosen vertex's position.
  """
  gap = points[:, :, None, :] - screen_xy[:, None, :, :]
  dist2 = tf.reduce_sum(tf.square(gap), -1)  # [B,L,N]
  dist2 = tf.where(outline[:, None, :] > 0.5, dist2, _FAR)
  return (tf.argmin(dist2, -1, output_type=tf.int32),
          tf.reduce_min(dist2, -1))


def contour_landmark_loss(gt_contour, fixed_points, fixed_facing, screen_xy,
                          outline, image_width, weights=None):
  """Chen20's second landmark term: the contour with sliding correspondence.

  For each image contour landmark i (a detector that follows the visible
  outline, as dlib's jaw points):
    * where the model's fixed contour vertex faces the camera (camera-frame
      normal z > 0), the mean over x, y of its squared distance to the
      landmark, as `landmark_loss` but unweighted;
    * where it is hidden, the model point is re-chosen on this image's
      outline: the squared distance from the landmark to the NEAREST
      outline vertex, times weights[i], capped at CONTOUR_CAP (no gradient
      beyond it).
  The result is the mean over batch and landmarks. Pixels are rescaled to a
  300-px image first (Chen20's screen).

  Chen20's released code (tools/render_utils.py get_ver_norm) marks a vertex
  as outline when the SUM of its front-facing triangles lies strictly
  between 0 and 1, which no count does: its outline is empty and every
  hidden landmark costs the constant cap, without gradient. Its earlier
  version (get_ver_norm_bk) divided by the number of triangles, the reading
  implemented here (face_reconstruction.silhouette_vertices), which gives
  the sliding correspondence its comments describe.

  Args:
    gt_contour: [B,L,2] float32 image landmark pixels (L = 17, the jaw).
    fixed_points: [B,L,2] float32 pixels of the model's fixed contour
      vertices (model.landmarks68[:17]).
    fixed_facing: [B,L] float32 camera-frame normal z of those vertices.
    screen_xy: [B,N,2] float32 pixels of all model vertices.
    outline: [B,N] float32 in {0,1}, the outline vertices
      (face_reconstruction.silhouette_vertices).
    image_width: python number, width of the image the pixels refer to.
    weights: [L] or None (`contour_landmark_weights()`).
  Returns: scalar float32.
  """
  if weights is None:
    weights = contour_landmark_weights()
  scale = LANDMARK_REFERENCE_SIZE / float(image_width)
  visible = tf.reduce_mean(tf.square((gt_contour - fixed_points) * scale), -1)
  _, dist2 = nearest_outline_vertex(gt_contour, screen_xy, outline)
  hidden = dist2 * scale**2 * tf.constant(weights, tf.float32)[None]
  hidden = tf.minimum(hidden, CONTOUR_CAP)
  per_landmark = tf.where(fixed_facing > 0.0, visible, hidden)
  return tf.reduce_mean(per_landmark)


def contour_landmark_term(model, face, gt_landmarks, image_width):
  """`contour_landmark_loss` of a CoarseFace against [B,68,2] landmarks.

  The fixed contour vertices are model.landmarks68[CONTOUR_LANDMARKS], their
  facing is the face's camera-frame vertex normals, the outline is
  face_reconstruction.silhouette_vertices of the face's screen vertices.
  """
  fixed = tf.constant(np.asarray(model.landmarks68)[CONTOUR_LANDMARKS],
                      tf.int32)
  screen_xy = face.screen_vertices[..., :2]
  return contour_landmark_loss(
      tf.gather(gt_landmarks, CONTOUR_LANDMARKS, axis=1),
      tf.gather(screen_xy, fixed, axis=1),
      tf.gather(face.normals[..., 2], fixed, axis=1), screen_xy,
      face_reconstruction.silhouette_vertices(model.triangles,
                                              face.screen_vertices),
      image_width)


def photo_loss(images, renders, mask):
  """Eq. 15: mean over masked pixels of ||I - I_R||_2 (colours x 255).

  Chen20 photo_loss: per image, sum of per-pixel colour distances over the
  mask divided by the mask area, then the batch mean.

  Args:
    images, renders: [B,H,W,3] float32 in [0,1].
    mask: [B,H,W,1] float32 in {0,1} (visible face pixels).
  Returns: scalar float32.
  """
  diff = (images - renders) * COLOR_SCALE
  dist = tf.sqrt(tf.reduce_sum(tf.square(diff) * mask, -1, keepdims=True) +
                 _EPS)
  per_image = (tf.reduce_sum(dist * mask, [1, 2, 3]) /
               (tf.reduce_sum(mask, [1, 2, 3]) + _EPS))
  return tf.reduce_mean(per_image)


def landmark_loss(gt_landmarks, pred_landmarks, image_width, weights=None):
  """Eq. 16 with Chen20's weights: mean of w_i * squared error.

  As Chen20's weighted_landmark_loss, the mean runs over batch, landmarks and
  both coordinates (Eq. 16's per-landmark squared norm / 2). Pixels are
  rescaled to a 300-px image first.

  Args:
    gt_landmarks, pred_landmarks: [B,68,2] float32 pixels.
    image_width: python number, width of the image the pixels refer to.
    weights: [68] or None (`landmark_weights()`).
  Returns: scalar float32.
  """
  if weights is None:
    weights = landmark_weights()
  scale = LANDMARK_REFERENCE_SIZE / float(image_width)
  err = tf.square((gt_landmarks - pred_landmarks) * scale)
  return tf.reduce_mean(err * tf.constant(weights, tf.float32)[None, :, None])


def identity_loss(features_images, features_renders):
  """Eq. 17: mean squared difference of frozen-VGG fc7 features (Chen20)."""
  return tf.reduce_mean(tf.square(features_images - features_renders))


def coefficient_prior(coeff):
  """Eq. 18 term: mean of squared coefficients (Chen20 reg_loss)."""
  if coeff.shape[-1] == 0:
    return tf.constant(0.0)
  return tf.reduce_mean(tf.square(coeff))


def vertex_loss(pred_vertices, true_vertices):
  """Supervised shape term: mean over batch and vertices of the squared
  distance between predicted and ground-truth meshes, mm^2.

  Both meshes are in the same model space (no pose, no alignment): the
  prediction is the CoarseFace's vertices (model.vertices(identity,
  expression) of the network), the truth the mesh the synthetic face was
  rendered from.

  Args:
    pred_vertices, true_vertices: [B,V,3] float32 mm.
  Returns: scalar float32.
  """
  return tf.reduce_mean(tf.reduce_sum(
      tf.square(pred_vertices - true_vertices), -1))


def composite(render, mask, images):
  """Render over the input (Chen20: render * mask + image * (1 - mask))."""
  return render * mask + images * (1.0 - mask)


def coarse_losses(images, gt_landmarks, skin_mask, face, coeffs, weights,
                  id_features=None, contour_model=None, true_shapes=None):
  """Eq. 14 (and Chen20's contour term): weighted terms and total.

  Args:
    images: [B,H,W,3] float32 in [0,1].
    gt_landmarks: [B,68,2] float32 pixels.
    skin_mask: [B,H,W,1] float32 skin mask of the input (data), or None.
    face: coarse.face_reconstruction.CoarseFace of the prediction.
    coeffs: coarse.coefficients.Coefficients of the prediction.
    weights: dict with 'photo', 'landmark', 'id', 'shape_prior',
      'exp_prior', 'tex_prior' and optionally 'contour_landmark'.
    id_features: None (identity loss off) or a callable images -> features
      (the frozen VGG-16).
    contour_model: None (contour term off), or the bfm.MorphableModel of
      `face` for Chen20's contour term (`contour_landmark_term`; computed
      when weights['contour_landmark'] > 0). Pass it only for landmarks that
      follow the visible outline (dlib's, the synthetic set's).
    true_shapes: None, or [B,V,3] float32 mm ground-truth meshes, compared
      with face.vertices by `vertex_loss` (when weights['vertex'] > 0).
  Returns:
    (total scalar, dict name -> unweighted scalar term).
  """
  mask = face.photo_mask
  if skin_mask is not None:
    mask = mask * skin_mask
  terms = {
      'photo': photo_loss(images, face.image, mask),
      'landmark': landmark_loss(gt_landmarks, face.landmarks2d,
                                int(images.shape[2])),
      'shape_prior': coefficient_prior(coeffs.identity),
      'exp_prior': coefficient_prior(coeffs.expression),
      'tex_prior': coefficient_prior(coeffs.texture),
  }
  if id_features is not None and weights.get('id', 0.0) > 0:
    both = id_features(
        tf.concat([images, composite(face.image, face.mask, images)], 0))
    f_img, f_ren = tf.split(both, 2, axis=0)
    terms['id'] = identity_loss(f_img, f_ren)
  if contour_model is not None and weights.get('contour_landmark', 0.0) > 0:
    terms['contour_landmark'] = contour_landmark_term(
        contour_model, face, gt_landmarks, int(images.shape[2]))
  if weights.get('vertex', 0.0) > 0:
    if true_shapes is None:
      raise ValueError('coarse_losses: the vertex loss (weight %g) needs '
                       'true_shapes' % weights['vertex'])
    terms['vertex'] = vertex_loss(face.vertices, true_shapes)
  total = tf.add_n([weights[k] * v for k, v in terms.items()])
  return total, terms


def weights_from_flags(flag_values):
  """Loss weights dict (DEFAULT_WEIGHTS' keys) from flags/coarse_flags.py."""
  return {k: float(getattr(flag_values, 'coarse_%s_weight' % k))
          for k in DEFAULT_WEIGHTS}
