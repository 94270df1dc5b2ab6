"""Applying a UV displacement map to the coarse face (Chen20-style dense mesh).

As in Chen20 (face_model.py `build_model`, is_fine_model branch, and
tools/uv_utils.py `TopoUV2Ver(..., 'dense')`): every UV texel inside the face
mask becomes a vertex of a dense mesh, two triangles per grid cell; its
position, albedo and masks are the coarse face's per-vertex attributes
rasterised into UV (renderer.uv.render_to_uv) and read at the texel. The displacement is added to
the model-space depth (z, millimetres) and multiplied by the 'detail' mask
(face minus eyes, nose and eyebrows; bfm.masks), then the dense mesh is shaded
with the coarse lighting and rendered with the coarse pose.
"""

import collections

import numpy as np
import tensorflow as tf

from bfm import mesh_geometry
from detail import dense_uv_mesh
from renderer import shaded_render
from renderer import uv as uv_lib

DetailedFace = collections.namedtuple(
    'DetailedFace',
    [
        'vertices',  # [B,M,3] mm, model space, displaced dense mesh
        'coarse_vertices',  # [B,M,3] mm, dense mesh before displacement
        'normals',  # [B,M,3] unit, model space, of the displaced mesh
        'coarse_normals',  # [B,M,3] unit, model space, of the undisplaced mesh
        'albedo',  # [B,M,3] in [0,1]
        'displacement',  # [B,M,1] mm applied along model z (already masked)
        'screen_vertices',  # [B,M,3] px
        'image',  # [B,H,W,3] render of the displaced mesh in [0,1]
        'mask',  # [B,H,W,1] float32 coverage of that render
        'photo_mask',  # [B,H,W,1] coverage times the rendered 'wo_eyes' mask
    ])

DenseFace = collections.namedtuple(
    'DenseFace',
    [
        'vertices',  # [B,M,3] mm, model space, dense mesh before displacement
        'albedo',  # [B,M,3] in [0,1]
        'normals',  # [B,M,3] unit, model space, of the undisplaced dense mesh
    ])


class DisplacementApplier:
  """Dense UV mesh of one face model and the code that displaces and renders it.

  Args:
    model: bfm.MorphableModel (needs uv, triangles, masks 'face', 'detail',
      'wo_eyes').
    uv_size: S, UV map side in texels.
  """

  def __init__(self, model, uv_size):
    self.model = model
    self.uv_size = int(uv_size)
    for key in ('face', 'detail', 'wo_eyes'):
      if key not in model.masks:
        raise ValueError('DisplacementApplier: model %r has no %r mask' %
                         (model.name, key))
    face_uv = np.asarray(
        uv_lib.uv_mask(model.uv, model.triangles, model.masks['face'],
                       self.uv_size))
    self.face_uv_mask = (face_uv[..., 0] > 0.5)
    self.mesh = dense_uv_mesh.DenseUVMesh(self.face_uv_mask)
    self.triangles = self.mesh.triangles
    masks = np.stack(
        [model.masks[k].astype(np.float32) for k in ('detail', 'wo_eyes')],
        -1)[None]
    masks_uv, _ = uv_lib.render_to_uv(tf.constant(masks), model.uv,
                                      model.triangles, self.uv_size)
    dense_masks = self.mesh.sample(masks_uv)[0]  # [M,2], soft at borders
    self.detail_mask = tf.clip_by_value(dense_masks[:, 0:1], 0.0, 1.0)
    self.wo_eyes_mask = tf.clip_by_value(dense_masks[:, 1:2], 0.0, 1.0)
    self._fix_winding()

  def _fix_winding(self):
    """Flips the triangles if the model's UV layout is mirrored (so the dense
    normals point out of the face like the model's own normals)."""
    verts = tf.constant(self.model.mean_shape[None], tf.float32)
    normals = mesh_geometry.vertex_normals(verts, self.model.triangles)
    dense_pos, _ = self.dense_attributes(verts)
    sampled_normals, _ = self.dense_attributes(normals)
    mine = mesh_geometry.vertex_normals(dense_pos, self.triangles)
    agree = tf.reduce_mean(tf.reduce_sum(mine * sampled_normals, -1))
    if float(agree) < 0:
      self.triangles = self.triangles[:, ::-1].copy()
      self.mesh.triangles = self.triangles

  def dense_attributes(self, vertex_attributes):
    """Per-vertex attributes of the model mesh -> dense mesh vertices.

    Args: vertex_attributes [B,N,C] float32.
    Returns: ([B,M,C] values at the dense vertices, the [B,S,S,C] UV map).
    """
    uv_map, _ = uv_lib.render_to_uv(vertex_attributes, self.model.uv,
                                    self.model.triangles, self.uv_size)
    return self.mesh.sample(uv_map), uv_map

  def apply(self, coarse_vertices, displacement_uv, displacement_scale_mm=1.0):
    """Displaces the dense mesh along model-space depth.

    Args:
      coarse_vertices: [B,N,3] mm, the coarse face in model space.
      displacement_uv: [B,S,S,1] float32 displacement map (RI2ITN output).
      displacement_scale_mm: mm per unit of displacement_uv.
    Returns: (dense coarse vertices [B,M,3], displaced [B,M,3], applied
      displacement [B,M,1] mm).
    """
    dense, _ = self.dense_attributes(coarse_vertices)
    displaced, disp = self._displace(dense, displacement_uv,
                                     displacement_scale_mm)
    return dense, displaced, disp

  def _displace(self, dense, displacement_uv, displacement_scale_mm):
    """(displaced [B,M,3], applied displacement [B,M,1] mm) of dense [B,M,3]."""
    if displacement_uv.shape[1] != self.uv_size or displacement_uv.shape[
        -1] != 1:
      raise ValueError('DisplacementApplier.apply: displacement_uv must be '
                       '[B,%d,%d,1], got %s' %
                       (self.uv_size, self.uv_size, displacement_uv.shape))
    disp = self.mesh.sample(displacement_uv) * displacement_scale_mm
    disp = disp * self.detail_mask[None]
    displaced = dense + tf.concat(
        [tf.zeros_like(disp), tf.zeros_like(disp), disp], -1)
    return displaced, disp

  def dense_face(self, coarse_vertices, albedo):
    """The parts of a render that do not depend on the displacement.

    Computing them once lets a displacement fit render many maps of the same
    coarse face without rasterising the coarse mesh into UV at every step.

    Args:
      coarse_vertices: [B,N,3] mm, model space; albedo: [B,N,3] in [0,1].
    Returns: DenseFace ([B,M,3] dense vertices (mm), albedo and unit normals
      of the undisplaced dense mesh).
    """
    dense, _ = self.dense_attributes(coarse_vertices)
    dense_albedo, _ = self.dense_attributes(albedo)
    return DenseFace(vertices=dense,
                     albedo=dense_albedo,
                     normals=mesh_geometry.vertex_normals(dense,
                                                          self.triangles))

  def render(self,
             coarse_vertices,
             albedo,
             pose,
             lighting,
             displacement_uv,
             image_size,
             displacement_scale_mm=1.0):
    """Displaces, shades (coarse SH lighting) and renders with the coarse pose.

    Args:
      coarse_vertices: [B,N,3] mm; albedo: [B,N,3] in [0,1];
      pose: [B,6] (renderer.camera convention); lighting: [B,27];
      displacement_uv: [B,S,S,1]; image_size: (H, W) ints.
    Returns: DetailedFace.
    """
    return self.render_dense(self.dense_face(coarse_vertices, albedo), pose,
                             lighting, displacement_uv, image_size,
                             displacement_scale_mm)

  def render_dense(self,
                   dense_face,
                   pose,
                   lighting,
                   displacement_uv,
                   image_size,
                   displacement_scale_mm=1.0):
    """`render` from a precomputed `dense_face(coarse_vertices, albedo)`.

    Args:
      dense_face: DenseFace of the coarse face.
      pose, lighting, displacement_uv, image_size, displacement_scale_mm: as
        in `render`.
    Returns: DetailedFace (the same values as `render`).
    """
    displaced, disp = self._displace(dense_face.vertices, displacement_uv,
                                     displacement_scale_mm)
    tris = self.triangles
    normals = mesh_geometry.vertex_normals(displaced, tris)
    batch = tf.shape(displaced)[0]
    eyes = tf.tile(self.wo_eyes_mask[None], [batch, 1, 1])
    # The coarse render's path (coarse/face_reconstruction.render_faces), so
    # zero displacement reproduces the coarse render.
    out = shaded_render.render_shaded(displaced, normals, dense_face.albedo,
                                      pose, lighting, tris, image_size,
                                      extra=eyes)
    photo_mask = out.mask * tf.cast(out.extra > 0.5, tf.float32)
    return DetailedFace(vertices=displaced,
                        coarse_vertices=dense_face.vertices,
                        normals=normals,
                        coarse_normals=dense_face.normals,
                        albedo=dense_face.albedo,
                        displacement=disp,
                        screen_vertices=out.screen_vertices,
                        image=out.image,
                        mask=out.mask,
                        photo_mask=photo_mask)
