"""The self-augment mechanism (SAM), paper Sec. 3.2 Eq. 1-5.

For a batch of B input images X:
  1. (Eq. 1) the network predicts coefficients of X;
  2. (Eq. 3) the predicted face (identity + expression) is rotated to each of
     the K poses of the config (coarse/sam_poses.py) and rendered with the
     predicted albedo and lighting: B*K images, ONE batched rasterizer call;
  3. (Eq. 4) the inputs and all renders are concatenated along the batch
     axis, B*(1+K) images, and the network runs once on that batch;
  4. each image's 1 + K predictions combine into one coefficient set;
  5. (Eq. 5) the final face is built and rendered at the input's pose.

Combination (step 4): Eq. 4-5 combine the identity and expression
coefficients (summed as printed, or averaged with --sam_reduce=mean). Pose,
texture and lighting are taken from the input image's own prediction in the
combined pass: the renders' poses are the config's, not the input's, so
summing poses would not describe the input, and Eq. 5 builds V from alpha_id
and alpha_exp only.

Renders are treated as data by default (no gradient into step 1); with
render_gradients=True the loss also back-propagates through the renders.
The SAM renders use an absolute pose: the config's angles and log-scale
offset sth (0) and, with translation='recentre', a screen shift that puts
each rotated face's bounding box at the image centre (the role the paper's
translations play for Chen20's BFM, whose origin lies behind the face);
translation='paper' applies the printed translations instead. 'recentre' is
the default because every face model here has its origin at the mean shape's
bounding-box centre, where the printed translations move the rotated face
off-centre and partly out of the frame (26 of 26 our_star renders cross the
border at 64 px; tests/test_coarse_sam.py SamTranslationTest, README).
"""

import collections

import tensorflow as tf

from coarse import coefficients as coefficients_lib
from coarse import face_reconstruction
from coarse import sam_poses
from renderer import camera

SamOutput = collections.namedtuple('SamOutput', [
    'coefficients', 'face', 'renders', 'network_batch_size', 'first'
])
SamOutput.__doc__ = """Result of SelfAugment.forward.

  coefficients: Coefficients of the final face (combined, Eq. 4).
  face: face_reconstruction.CoarseFace of the final face (Eq. 5).
  renders: [B*K,H,W,3] the SAM renders, image-major (b0 pose0, b0 pose1, ...).
  network_batch_size: int32 scalar, images in the combined VGG pass B(1+K).
  first: Coefficients predicted for X alone (Eq. 1).
"""

COMBINED_FIELDS = ('identity', 'expression')


def combine(model, first, augmented, reduce='sum'):
  """Combines each image's 1 + K coefficient vectors (Eq. 4).

  Args:
    model: bfm.MorphableModel (field sizes).
    first: [B, D] predictions for the inputs.
    augmented: [B, K, D] predictions for each image's K renders.
    reduce: 'sum' (Eq. 4 as printed) or 'mean'.
  Returns:
    Coefficients: identity and expression reduced over the 1 + K views;
    texture, pose and lighting from `first`.
  """
  if reduce not in ('sum', 'mean'):
    raise ValueError('sam.combine: reduce must be sum or mean, got %r' %
                     (reduce,))
  first_c = coefficients_lib.Coefficients.from_vector(model, first)
  k = augmented.shape[1]
  if not k:
    return first_c
  total = first + tf.reduce_sum(augmented, axis=1)
  if reduce == 'mean':
    total = total / float(1 + k)
  total_c = coefficients_lib.Coefficients.from_vector(model, total)
  return first_c._replace(**{f: getattr(total_c, f) for f in COMBINED_FIELDS})


class SelfAugment:
  """SAM for one network, face model, config and image size.

  Args:
    model: bfm.MorphableModel.
    network: callable images [N,H,W,3] -> [N, D] coefficient vectors.
    config: name in coarse/sam_poses.py ('our_star', 'our', 'none', ...).
    image_size: python int, side of the square images.
    reduce: 'sum' or 'mean' (see `combine`).
    render_gradients: back-propagate through the renders.
    translation: 'recentre' or 'paper' (module docstring).
    landmark_source: jaw convention of the final face's landmarks2d, the
      one the training landmarks were marked with: 'dlib' (sliding
      silhouette; also the synthetic data's) or 'facemesh' (fixed
      vertices); coarse/face_reconstruction.py `landmarks2d`. The SAM
      renders have no landmarks.
  """

  def __init__(self, model, network, config, image_size, reduce='sum',
               render_gradients=False, translation='recentre',
               landmark_source='dlib'):
    if translation not in ('recentre', 'paper'):
      raise ValueError('SelfAugment: translation must be recentre or paper, '
                       'got %r' % (translation,))
    self.landmark_source = face_reconstruction.check_landmark_source(
        landmark_source)
    self.model = model
    self.network = network
    self.config = config
    self.image_size = int(image_size)
    self.reduce = reduce
    self.render_gradients = bool(render_gradients)
    self.translation = translation
    self.poses = sam_poses.pose_vectors(
        config, self.image_size,
        'paper' if translation == 'paper' else 'none')  # [K, 6] float32
    self.num_poses = int(self.poses.shape[0])
    self.function = tf.function(self.forward)

  def render_poses(self, batch_size):
    """[B*K, 6] render poses, image-major (before re-centring)."""
    return tf.tile(tf.constant(self.poses), [batch_size, 1])

  def recentre(self, vertices, poses):
    """Adds the tx, ty that centre each face's projected bounding box."""
    size = (self.image_size, self.image_size)
    screen = camera.orthographic_project(vertices, poses, size)
    lo = tf.reduce_min(screen[..., :2], axis=1)
    hi = tf.reduce_max(screen[..., :2], axis=1)
    centre = tf.stop_gradient(0.5 * (lo + hi))  # [B*K, 2] pixels
    ref = camera.REFERENCE_SIZE / self.image_size
    half = self.image_size / 2.0
    dtx = -(centre[:, 0] - half) * ref
    dty = (centre[:, 1] - half) * ref  # screen y is down, ty is up
    zeros = tf.zeros_like(dtx)
    return poses + tf.stack([zeros, zeros, zeros, dtx, dty, zeros], 1)

  def render(self, coeffs):
    """SAM renders [B*K,H,W,3] of Coefficients `coeffs` (Eq. 3)."""
    m = self.model
    k = self.num_poses
    vertices = m.vertices(coeffs.identity, coeffs.expression)
    batch = tf.shape(vertices)[0]
    if m.num_tex:
      albedo = m.albedo(coeffs.texture)
    else:
      albedo = tf.tile(m.albedo(None), [batch, 1, 1])
    # Normals once per shape (rotation is applied per pose in render_faces),
    # then every per-face tensor repeated K times, image-major.
    normals = tf.repeat(m.vertex_normals(vertices), k, axis=0)
    vertices = tf.repeat(vertices, k, axis=0)
    albedo = tf.repeat(albedo, k, axis=0)
    lighting = tf.repeat(coeffs.lighting, k, axis=0)
    poses = self.render_poses(batch)
    if self.translation == 'recentre':
      poses = self.recentre(vertices, poses)
    face = face_reconstruction.render_faces(m, vertices, albedo, poses,
                                            lighting, self.image_size,
                                            model_normals=normals)
    return face.image

  def forward(self, images, training=True):
    """SAM on images [B,H,W,3] in [0,1] -> SamOutput."""
    images = tf.convert_to_tensor(images, tf.float32)
    batch = tf.shape(images)[0]
    k = self.num_poses
    if k == 0:
      vec = self.network(images, training=training)
      coeffs = coefficients_lib.Coefficients.from_vector(self.model, vec)
      face = face_reconstruction.reconstruct(self.model, coeffs,
                                             self.image_size,
                                             self.landmark_source)
      empty = tf.zeros([0, self.image_size, self.image_size, 3])
      return SamOutput(coeffs, face, empty, batch, coeffs)
    first_vec = self.network(images, training=training)
    if not self.render_gradients:
      first_vec = tf.stop_gradient(first_vec)
    first = coefficients_lib.Coefficients.from_vector(self.model, first_vec)
    renders = self.render(first)
    if not self.render_gradients:
      renders = tf.stop_gradient(renders)
    everything = tf.concat([images, renders], axis=0)  # [B(1+K),H,W,3]
    out = self.network(everything, training=training)
    dim = out.shape[-1]
    combined = combine(self.model, out[:batch],
                       tf.reshape(out[batch:], [batch, k, dim]), self.reduce)
    face = face_reconstruction.reconstruct(self.model, combined,
                                           self.image_size,
                                           self.landmark_source)
    return SamOutput(combined, face, renders, tf.shape(everything)[0], first)
