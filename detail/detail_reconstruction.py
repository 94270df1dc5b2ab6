"""Detail inference for given coarse coefficients and images (Sec. 3.3-3.4).

  images + coarse coefficients
    -> coarse face (coarse/face_reconstruction.py, the one
       coefficients->render path)
    -> unwrap input image and coarse render into UV (renderer/uv.py)
    -> [large pose] replace the self-occluded UV half by the mirrored
       frontal half
    -> network input (Chen20: normalised difference; or both images;
       optionally plus the lighting-aware shading channels)
    -> RI2ITN displacement map (tanh) -> dense displaced mesh -> render.

`DetailReconstructor.__call__` is what detail/train.py optimises and what the
reconstruct command calls.
"""

import collections
import json
import math
import os

import tensorflow as tf

from bfm import mesh_geometry
from coarse import face_reconstruction
from detail import displacement as displacement_lib
from detail import losses
from detail import ri2itn
from detail import symmetric_padding
from renderer import camera
from renderer import shading
from renderer import uv as uv_lib

INPUT_CHANNELS = {'difference': 3, 'concat': 6}
# Channels appended by the lighting-aware input (shading_input=True).
SHADING_CHANNELS = 3
# Model-space directions of the shading input's two slope channels.
_TILTS = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0))
# Written by detail/train.py next to its checkpoints; read by load().
CONFIG_FILE = 'detail_config.json'

DetailOutput = collections.namedtuple(
    'DetailOutput',
    [
        'detailed',  # displacement.DetailedFace
        'coarse',  # coarse.face_reconstruction.CoarseFace
        'displacement_uv',  # [B,S,S,1] network output in (-1, 1)
        'uv_image',  # [B,S,S,3] unwrapped input image (after padding)
        'uv_render',  # [B,S,S,3] unwrapped coarse render (after padding)
        'network_input',  # [B,S,S,3 or 6]
        'padded',  # [B] bool, whether symmetric padding was applied
    ])


def network_input(uv_image, uv_render, mode):
  """Forms the RI2ITN input from the two unwrapped images in [0,1].

  'difference' (default, Chen20 face_model.py: generator((input-127.5)/127.5,
  (render-127.5)/127.5) then input - render): 2 * (uv_image - uv_render),
  [B,S,S,3]. 'concat' (paper Fig. 3-4 feed both): both mapped to [-1,1],
  [B,S,S,6].
  """
  a = uv_image * 2.0 - 1.0
  b = uv_render * 2.0 - 1.0
  if mode == 'difference':
    return a - b
  if mode == 'concat':
    return tf.concat([a, b], -1)
  raise ValueError(
      'network_input: mode must be "difference" or "concat", got %r' % (mode,))


def shading_channels(vertices, albedo, triangles, pose, lighting):
  """Per-vertex lighting-aware input channels of the coarse face.

  A wrinkle shows in the photo as the change of shading its slopes cause,
  and whether a slope darkens or brightens a pixel depends on the light:
  with a lateral SH component of either sign, Chen20's input alone (the
  photo minus the coarse render) cannot tell which way a slope faces. These
  channels give the network the coarse face's shading and its sensitivity to
  a slope, both under the estimated lighting:

    0: 2 g(n) - 1, g = mean over colours of the shaded colour
       (renderer/shading.py sh_shade) at the coarse normal n: the grey coarse
       render before clipping, on the network input's [-1, 1] scale;
    1, 2: 2 dg/de of the unit normal normalize(n + e t) at e = 0, t = model x
       and model y: the change of the grey value per unit surface slope along
       x / y, in the units of the 'difference' input (2 x colour).

  Args:
    vertices: [B,N,3] mm, model space (the coarse face); albedo: [B,N,3];
    triangles: [T,3] int32; pose: [B,6]; lighting: [B,27].
  Returns: [B,N,3] float32.
  """
  vertices = tf.convert_to_tensor(vertices, tf.float32)
  pose = tf.convert_to_tensor(pose, tf.float32)
  normals = mesh_geometry.vertex_normals(vertices, triangles)
  rotation = camera.rotation_matrix(pose[:, :3])
  cam_normals = tf.einsum('bij,bnj->bni', rotation, normals)
  grey = tf.reduce_mean(shading.sh_shade(albedo, cam_normals, lighting), -1,
                        keepdims=True)
  out = [2.0 * grey - 1.0]
  for tilt in _TILTS:
    t = tf.constant(tilt, tf.float32)
    # The change of the unit normal: t's component tangent to the sphere.
    tangent = t - tf.reduce_sum(t * normals, -1, keepdims=True) * normals
    direction = tf.einsum('bij,bnj->bni', rotation, tangent)
    slope = shading.sh_shade_derivative(albedo, cam_normals, lighting,
                                        direction)
    out.append(2.0 * tf.reduce_mean(slope, -1, keepdims=True))
  return tf.concat(out, -1)


class DetailReconstructor:
  """Everything of the detail stage that depends on the face model and UV size.

  Args:
    model: bfm.MorphableModel.
    uv_size: UV side S (power of two).
    network: an RI2ITN; default a new one for uv_size with num_passes and
      share_weights.
    input_mode: 'difference' (Chen20) or 'concat'.
    shading_input: append the 3 lighting-aware channels of
      `shading_channels` (unwrapped into UV) to the network input.
    displacement_scale_mm: mm per unit of the tanh output.
    yaw_threshold_deg: for pad='auto', pad images with |yaw| above this.
  """

  def __init__(self,
               model,
               uv_size,
               network=None,
               input_mode='difference',
               displacement_scale_mm=1.0,
               yaw_threshold_deg=30.0,
               num_passes=2,
               share_weights=True,
               shading_input=False):
    if input_mode not in INPUT_CHANNELS:
      raise ValueError(
          'DetailReconstructor: input_mode must be one of %s, got %r' %
          (sorted(INPUT_CHANNELS), input_mode))
    self.model = model
    self.uv_size = int(uv_size)
    self.input_mode = input_mode
    self.shading_input = bool(shading_input)
    self.displacement_scale_mm = float(displacement_scale_mm)
    self.yaw_threshold = math.radians(yaw_threshold_deg)
    self.network = network or ri2itn.RI2ITN(uv_size=self.uv_size,
                                            num_passes=num_passes,
                                            share_weights=share_weights)
    if self.network.uv_size != self.uv_size:
      raise ValueError('DetailReconstructor: network uv_size %d != uv_size %d' %
                       (self.network.uv_size, self.uv_size))
    self.applier = displacement_lib.DisplacementApplier(model, self.uv_size)
    self.padding = symmetric_padding.SymmetricPadding(model, self.uv_size)
    self.uv_face_mask = tf.constant(self.applier.face_uv_mask[..., None],
                                    tf.float32)

  def config(self):
    """The settings a checkpoint of this reconstructor depends on (JSON)."""
    net = self.network
    return {
        'face_model': getattr(self.model, 'name', None),
        'uv_size': self.uv_size,
        'input_mode': self.input_mode,
        'shading_input': self.shading_input,
        'displacement_scale_mm': self.displacement_scale_mm,
        'num_passes': net.num_passes,
        'share_weights': net.share_weights,
        'channels': list(net.channels),
        'stem_channels': net.passes[0].stem_channels,
        'feedback_chains': net.feedback_chains,
    }

  @property
  def input_channels(self):
    """Channels of the network input."""
    return INPUT_CHANNELS[self.input_mode] + (SHADING_CHANNELS if
                                              self.shading_input else 0)

  def build(self):
    """Creates the RI2ITN variables (before restoring or counting them)."""
    self.network(
        tf.zeros([1, self.uv_size, self.uv_size, self.input_channels]))

  def restore(self, checkpoint):
    """Loads RI2ITN weights written by detail/train.py.

    The reconstructor must have the architecture of the checkpoint (see
    load(), which reads it from the checkpoint's detail_config.json).

    Args:
      checkpoint: a checkpoint prefix or a folder (its latest checkpoint), e.g.
        results/detail/large_pose.
    Returns: the checkpoint path used.
    Raises:
      FileNotFoundError: no checkpoint at `checkpoint` (names the path).
      ValueError: the checkpoint's network does not match this one.
    """
    path = find_checkpoint(checkpoint)
    self.build()
    status = tf.train.Checkpoint(network=self.network).restore(path)
    try:
      status.assert_existing_objects_matched().expect_partial()
    except AssertionError as e:
      raise ValueError(
          'DetailReconstructor.restore: %s does not hold this RI2ITN (uv_size '
          '%d, channels %s, %d passes, share_weights %s): %s' %
          (path, self.uv_size, list(self.network.channels),
           self.network.num_passes, self.network.share_weights,
           str(e)[:300])) from e
    return path

  def unwrap(self, images, coarse_face):
    """([B,S,S,3] unwrapped images, [B,S,S,3] unwrapped coarse render)."""
    uv_image, uv_render, _ = self._unwrap(images, coarse_face)
    return uv_image, uv_render

  def _unwrap(self, images, coarse_face):
    """unwrap() plus the [B,S,S,1] visibility of the texels."""
    m = self.model
    uv_image, visibility = uv_lib.unwrap_image(images,
                                               coarse_face.screen_vertices,
                                               m.triangles, m.uv, self.uv_size)
    uv_render, _ = uv_lib.unwrap_image(coarse_face.image,
                                       coarse_face.screen_vertices, m.triangles,
                                       m.uv, self.uv_size)
    return uv_image, uv_render, visibility

  def uv_shading(self, coarse_face, pose, lighting, visibility):
    """[B,S,S,3] `shading_channels` of the coarse face rendered into UV,
    zero where the texel is not visible in the image (as the photo)."""
    m = self.model
    channels = shading_channels(coarse_face.vertices, coarse_face.albedo,
                                m.triangles, pose, lighting)
    uv_map, _ = uv_lib.render_to_uv(channels, m.uv, m.triangles, self.uv_size)
    return uv_map * visibility

  def __call__(self, images, coeffs, pad='auto', training=False):
    """Runs the detail stage.

    Args:
      images: [B,H,W,3] float32 in [0,1] (the images the coefficients fit).
      coeffs: coarse.coefficients.Coefficients for the batch.
      pad: 'always' (large-pose training), 'auto' (|yaw| > threshold,
        inference) or 'never' (small pose).
    Returns: DetailOutput.
    """
    images = tf.convert_to_tensor(images, tf.float32)
    if images.shape.rank != 4 or images.shape[-1] != 3:
      raise ValueError('DetailReconstructor: images must be [B,H,W,3], got %s' %
                       images.shape)
    image_size = (int(images.shape[1]), int(images.shape[2]))
    coarse_face = face_reconstruction.reconstruct(self.model, coeffs,
                                                  image_size)
    return self.from_coarse_face(images,
                                 coarse_face,
                                 coeffs.pose,
                                 coeffs.lighting,
                                 pad=pad,
                                 training=training)

  def from_coarse_face(self,
                       images,
                       coarse_face,
                       pose,
                       lighting,
                       pad='auto',
                       training=False):
    """The detail stage given an already reconstructed coarse face.

    Args:
      images: [B,H,W,3] float32 in [0,1].
      coarse_face: needs .vertices [B,N,3] mm, .screen_vertices [B,N,3] px,
        .albedo [B,N,3], .image [B,H,W,3] (coarse render), as CoarseFace.
      pose: [B,6]; lighting: [B,27] (the coarse coefficients).
      pad, training: as in __call__.
    Returns: DetailOutput.
    """
    image_size = (int(images.shape[1]), int(images.shape[2]))
    uv_image, uv_render, visibility = self._unwrap(images, coarse_face)
    yaw = pose[:, 1]
    if pad == 'always':
      side = symmetric_padding.occluded_side(yaw)
    elif pad == 'auto':
      side = symmetric_padding.occluded_side(yaw) * tf.cast(
          tf.abs(yaw) > self.yaw_threshold, tf.float32)
    elif pad == 'never':
      side = tf.zeros_like(yaw)
    else:
      raise ValueError(
          'DetailReconstructor: pad must be always/auto/never, got %r' % (pad,))
    uv_image = symmetric_padding.pad_occluded_half(uv_image, self.padding.sides,
                                                   self.padding.mirror_coords,
                                                   side)
    uv_render = symmetric_padding.pad_occluded_half(uv_render,
                                                    self.padding.sides,
                                                    self.padding.mirror_coords,
                                                    side)
    net_in = network_input(uv_image, uv_render, self.input_mode)
    if self.shading_input:
      uv_shade = self.uv_shading(coarse_face, pose, lighting, visibility)
      # A mirrored texel shows the mirrored face: its x slope reverses.
      padded = symmetric_padding.pad_occluded_half(
          uv_shade, self.padding.sides, self.padding.mirror_coords, side,
          mirror_scale=(1.0, -1.0, 1.0))
      net_in = tf.concat([net_in, padded], -1)
    disp_uv = self.network(net_in, training=training)
    detailed = self.applier.render(coarse_face.vertices, coarse_face.albedo,
                                   pose, lighting, disp_uv, image_size,
                                   self.displacement_scale_mm)
    return DetailOutput(detailed, coarse_face, disp_uv, uv_image, uv_render,
                        net_in, padded=tf.not_equal(side, 0.0))

  def loss(self, images, output, weights, skin_mask=None):
    """Eq. 12 for a DetailOutput; returns (total, dict of terms).

    Args:
      images: [B,H,W,3] float32 in [0,1].
      output: DetailOutput of these images.
      weights: dict of detail loss weights (detail/losses.py).
      skin_mask: None or [B,H,W,1] float32 skin pixels of the images
        (training data's masks); the photometric term counts only those.
    """
    det = output.detailed
    mesh = self.applier.mesh
    delta_n = mesh.to_uv(det.normals - det.coarse_normals)
    delta_z = mesh.to_uv(det.displacement)
    return losses.total_loss(images, det.image, det.photo_mask, delta_n,
                             delta_z, self.uv_face_mask, weights,
                             skin_mask=skin_mask)


def find_checkpoint(checkpoint):
  """A detail/train.py checkpoint prefix from a prefix or a folder.

  Raises FileNotFoundError naming `checkpoint` when it holds none.
  """
  path = checkpoint
  if checkpoint and tf.io.gfile.isdir(checkpoint):
    path = tf.train.latest_checkpoint(checkpoint)
  if not path or not tf.io.gfile.exists(path + '.index'):
    raise FileNotFoundError(
        'detail checkpoint: no RI2ITN checkpoint at %r (train one with '
        '`python detail/train.py [--large_pose]`; pass its folder, e.g. '
        'results/detail/large_pose, or a prefix such as .../ckpt-5000)' %
        (checkpoint,))
  return path


def save_config(reconstructor, folder):
  """Writes reconstructor.config() to <folder>/detail_config.json."""
  tf.io.gfile.makedirs(folder)
  with tf.io.gfile.GFile(os.path.join(folder, CONFIG_FILE), 'w') as f:
    json.dump(reconstructor.config(), f, indent=1)


def load(checkpoint, model, **overrides):
  """A DetailReconstructor restored from a detail/train.py checkpoint.

  The architecture (uv_size, channels, passes, input mode, displacement
  scale) comes from detail_config.json next to the checkpoint.

  Args:
    checkpoint: checkpoint folder or prefix.
    model: the bfm.MorphableModel the checkpoint was trained with.
    **overrides: DetailReconstructor arguments, e.g. yaw_threshold_deg.
  Returns: (DetailReconstructor, checkpoint path used).
  Raises:
    FileNotFoundError: no checkpoint, or no detail_config.json beside it.
    ValueError: the config names another face model.
  """
  path = find_checkpoint(checkpoint)
  cfg_path = os.path.join(os.path.dirname(path), CONFIG_FILE)
  if not tf.io.gfile.exists(cfg_path):
    raise FileNotFoundError(
        'detail checkpoint %s: no %s beside it (written by detail/train.py); '
        'build DetailReconstructor yourself and call restore()' %
        (path, CONFIG_FILE))
  with tf.io.gfile.GFile(cfg_path) as f:
    cfg = json.load(f)
  name = getattr(model, 'name', None)
  if cfg.get('face_model') and name and cfg['face_model'] != name:
    raise ValueError('%s: trained with face model %r, got %r' %
                     (cfg_path, cfg['face_model'], name))
  network = ri2itn.RI2ITN(uv_size=cfg['uv_size'],
                          num_passes=cfg['num_passes'],
                          share_weights=cfg['share_weights'],
                          channels=cfg['channels'],
                          stem_channels=cfg['stem_channels'],
                          # Configs written before the option: per pair.
                          feedback_chains=cfg.get('feedback_chains',
                                                  'per_pair'))
  kwargs = dict(input_mode=cfg['input_mode'],
                # Configs written before the option: Chen20's input only.
                shading_input=cfg.get('shading_input', False),
                displacement_scale_mm=cfg['displacement_scale_mm'])
  kwargs.update(overrides)
  rec = DetailReconstructor(model, cfg['uv_size'], network=network, **kwargs)
  rec.restore(path)
  return rec, path
