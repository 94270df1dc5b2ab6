"""Photo -> detected face -> coarse coefficients -> detailed face, in batches.

The computational part of the reconstruct command (reconstruct/command.py):

  prepare(path): read the photo, detect the largest face and its 68
      landmarks (preprocess/face_landmarks.py: FaceMesh or dlib), square
      crop.
  reconstruct(faces): for a batch of prepared faces, coarse coefficients
      (the coarse network, or `coarse.fitting.fit_coarse` in --fit mode),
      the estimated yaw and path (small / large pose), then the displacement
      map (RI2ITN through DetailReconstructor, or
      `detail.displacement_fitting.fit_displacement`), the coarse and detailed meshes and
      the renders the outputs need.

Modes: 'checkpoint' (trained coarse network + RI2ITN) or 'fit' (analysis by
synthesis, optionally initialised from whichever checkpoints are given).
"""

import collections
import os
import threading
import time

import numpy as np
import tensorflow as tf

from coarse import coarse_model
from coarse import coefficients as coefficients_lib
from preprocess import face_landmarks
from preprocess import face_crop
from preprocess import image_io
from coarse import face_reconstruction
from coarse import facemesh_correspondence
from coarse import fitting
from coarse import silhouette_yaw
from detail import detail_reconstruction
from detail import displacement_fitting

PreparedFace = collections.namedtuple('PreparedFace', [
    'name', 'path', 'image', 'crop', 'landmarks', 'crop_landmarks',
    'transform', 'num_faces', 'detector', 'source', 'converted_from',
    'crop_dense', 'presence'
])
PreparedFace.__doc__ = """One photo ready for the network.

  name: output file stem; path: the photo.
  image: [H,W,3] float32 RGB in [0,1], the original photo.
  crop: [S,S,3] float32 square face crop (S = image_size).
  landmarks: [68,2] float32 detected landmarks, pixels of the photo.
  crop_landmarks: [68,2] float32 the same in crop pixels.
  transform: coarse.face_crop.CropTransform crop -> photo pixels.
  num_faces: faces the detector found (the largest is reconstructed).
  detector: 'facemesh', 'hog' or 'cnn' (which detector found it).
  source: the landmark source ('facemesh' or 'dlib', coarse/landmark_fit.py).
  converted_from: PIL mode the photo was converted from, or None.
  crop_dense: [474,2] float32 FaceMesh's 468 points and BlazeFace's 6
    keypoints in crop pixels ('facemesh'), or None.
  presence: FaceMesh's face-presence score on the face's crop
    ('facemesh'), or None (preprocess/face_landmarks.Face.presence).
"""

FaceResult = collections.namedtuple('FaceResult', [
    'prepared', 'coefficients', 'yaw_deg', 'large_pose', 'path_note',
    'coarse_vertices', 'coarse_screen', 'landmarks2d', 'landmarks3d',
    'coarse_render', 'coarse_mask', 'coarse_shading', 'detail_vertices',
    'detail_screen', 'detail_normals', 'detail_shading', 'detail_mask',
    'displacement_uv_mm'
])
FaceResult.__doc__ = """Everything the writers need for one face (NumPy).

  prepared: the PreparedFace.
  coefficients: Coefficients of this face, each part [1, K].
  yaw_deg: estimated yaw (renderer/camera.py sign: + = turned to image right).
  large_pose: bool, whether the large-pose path ran.
  path_note: one line saying which path ran and why.
  coarse_vertices [N,3] mm model space; coarse_screen [N,3] crop pixels.
  landmarks2d [68,2] crop pixels (reconstruction); landmarks3d [68,3] mm.
  coarse_render [S,S,3] shaded albedo render; coarse_mask [S,S,1].
  coarse_shading, detail_shading [S,S,3]: grey geometry renders.
  detail_vertices [M,3] mm (dense displaced mesh), detail_screen [M,3] crop
    pixels, detail_normals [M,3] model-space unit normals; detail_mask.
  displacement_uv_mm [U,U] float32, applied displacement along model z (mm)
    in the UV layout (zero outside the detail region).
"""

# Grey material and lighting of the geometry renders ("shading" panels):
# ambient plus light from the front-left-top (Chen20 SH layout, the ambient
# offset of renderer/shading.py comes on top).
SHADING_ALBEDO = 0.78
_SHADING_SH = (1.0, 0.6, -0.25, 0.25, 0.0, 0.0, 0.0, 0.0, 0.0)


class InputError(ValueError):
  """A photo cannot be reconstructed (unreadable, no face); names the file."""


# dlib's detectors (and the detector caches of preprocess/) are not safe to
# call from two threads at once, and the reconstruct command's tf.data input
# pipeline calls prepare() from several: detection runs one photo at a time,
# reading and cropping in parallel.
_DETECTION_LOCK = threading.Lock()


def shading_lighting(batch):
  """[B,27] SH lighting of the grey geometry renders."""
  return np.tile(np.asarray(_SHADING_SH, np.float32), 3)[None].repeat(batch, 0)


def _checkpoint_path(path):
  """Latest checkpoint prefix in a folder, the prefix itself, or None."""
  if path and os.path.isdir(path):
    return tf.train.latest_checkpoint(path)
  if path and tf.io.gfile.exists(path + '.index'):
    return path
  return None


def resolve_detail_checkpoints(path):
  """{'small': prefix, 'large': prefix} for --detail_checkpoint.

  `path` is a checkpoint prefix or folder (used for both paths) or a
  detail/train.py --detail_dir root with small_pose/ and/or large_pose/ (a
  missing one falls back to the other). Raises FileNotFoundError naming
  `path` and what was looked for when nothing is there.
  """
  direct = _checkpoint_path(path)
  if direct:
    return {'small': direct, 'large': direct}
  small = _checkpoint_path(os.path.join(path, 'small_pose'))
  large = _checkpoint_path(os.path.join(path, 'large_pose'))
  if not small and not large:
    raise FileNotFoundError(
        '--detail_checkpoint=%s: no RI2ITN checkpoint there (looked for a '
        'checkpoint prefix, a folder with a checkpoint, or small_pose/ and '
        'large_pose/ subfolders from `python detail/train.py`)' % (path,))
  return {'small': small or large, 'large': large or small}


class FacePipeline:
  """Detection, coarse and detail stages for one configuration.

  Args:
    model: bfm.MorphableModel.
    image_size: side of the square face crops.
    fit: True for --fit mode (analysis by synthesis).
    coarse_checkpoint, detail_checkpoint: paths or None (see the flags).
      Without --fit both are required. The RI2ITN architecture and
      displacement scale come from the detail checkpoint's
      detail_config.json (detail_reconstruction.load).
    fit_uv_size: UV side of the fitted displacement map (--fit without a
      detail checkpoint).
    fit_displacement_scale_mm: mm per unit of the fitted map (same case).
    yaw_threshold_deg: large-pose threshold.
    fit_steps: Adam steps of the coarse fit.
    fit_silhouette_yaw_deg: faces fitted at least this many degrees turned
      get the profile yaw search (coarse/silhouette_yaw.py); None or > 90
      turns it off.
    fit_detail_steps: most Adam steps of the displacement fit.
    fit_detail_learning_rate: its Adam learning rate (pre-tanh map).
    fit_detail_tolerance: its convergence stop
      (detail.displacement_fitting.converged); 0 runs all fit_detail_steps.
    landmarks: landmark source, 'facemesh' or 'dlib'
      (preprocess/face_landmarks.py).
    landmark_model: dlib predictor path or None.
  """

  def __init__(self,
               model,
               image_size=224,
               fit=False,
               coarse_checkpoint=None,
               detail_checkpoint=None,
               fit_uv_size=128,
               fit_displacement_scale_mm=1.0,
               yaw_threshold_deg=30.0,
               fit_steps=fitting.DEFAULT_STEPS,
               fit_photo_weight=fitting.DEFAULT_PHOTO_WEIGHT,
               fit_objective='map',
               fit_silhouette_yaw_deg=silhouette_yaw.MIN_YAW_DEG,
               fit_detail_steps=displacement_fitting.DEFAULT_STEPS,
               fit_detail_learning_rate=(
                   displacement_fitting.DEFAULT_LEARNING_RATE),
               fit_detail_tolerance=displacement_fitting.DEFAULT_TOLERANCE,
               landmarks='facemesh',
               landmark_model=None):
    if not fit and not (coarse_checkpoint and detail_checkpoint):
      missing = [n for n, v in (('--coarse_checkpoint', coarse_checkpoint),
                                ('--detail_checkpoint', detail_checkpoint))
                 if not v]
      raise ValueError(
          'reconstruct: no trained networks: %s not given. Pass both '
          '--coarse_checkpoint (from `python coarse/train.py`) and '
          '--detail_checkpoint (from `python detail/train.py`), or pass --fit '
          'to fit each photo directly (analysis by synthesis, no checkpoint '
          'needed).' % ' and '.join(missing))
    self.model = model
    self.image_size = int(image_size)
    self.fit = bool(fit)
    self.yaw_threshold_deg = float(yaw_threshold_deg)
    self.fit_steps = int(fit_steps)
    self.fit_photo_weight = float(fit_photo_weight)
    self.fit_objective = fit_objective
    self.fit_silhouette_yaw_deg = (None if fit_silhouette_yaw_deg is None
                                   else float(fit_silhouette_yaw_deg))
    self.fit_detail_steps = int(fit_detail_steps)
    self.fit_detail_learning_rate = float(fit_detail_learning_rate)
    self.fit_detail_tolerance = float(fit_detail_tolerance)
    self.landmark_source = face_landmarks.check_source(landmarks)
    self.landmark_model = landmark_model
    # FaceMesh's measured correspondence on this model, when one is committed
    # or was built (coarse/facemesh_correspondence.py); else the 68 points.
    self.correspondence = (facemesh_correspondence.for_model(model)
                           if self.landmark_source == 'facemesh' else None)
    self.coarse_net = None
    self.coarse_checkpoint = None
    if coarse_checkpoint:
      self.coarse_checkpoint = _checkpoint_path(coarse_checkpoint)
      self.coarse_net = coarse_model.load(coarse_checkpoint, model)
    self.detail_checkpoints = None
    if detail_checkpoint:
      self.detail_checkpoints = resolve_detail_checkpoints(detail_checkpoint)
      self.detail = {}
      for key in ('small', 'large'):
        path = self.detail_checkpoints[key]
        if key == 'large' and path == self.detail_checkpoints['small']:
          self.detail['large'] = self.detail['small']
          continue
        self.detail[key], _ = detail_reconstruction.load(
            path, model, yaw_threshold_deg=yaw_threshold_deg)
      sizes = {k: (r.uv_size, r.displacement_scale_mm)
               for k, r in self.detail.items()}
      if sizes['small'] != sizes['large']:
        raise ValueError(
            '--detail_checkpoint: the small- and large-pose RI2ITN differ in '
            'UV size / displacement scale (%s: %s, %s: %s)' %
            (self.detail_checkpoints['small'], sizes['small'],
             self.detail_checkpoints['large'], sizes['large']))
    else:
      recon = detail_reconstruction.DetailReconstructor(
          model, int(fit_uv_size),
          displacement_scale_mm=fit_displacement_scale_mm,
          yaw_threshold_deg=yaw_threshold_deg)
      self.detail = {'small': recon, 'large': recon}
    self.uv_size = self.detail['small'].uv_size
    self.displacement_scale_mm = self.detail['small'].displacement_scale_mm

  # --- Description ------------------------------------------------------------
  def describe(self):
    """Lines saying which mode runs and with what."""
    if self.fit:
      init = []
      if self.coarse_checkpoint:
        init.append('coarse fit starts from %s' % self.coarse_checkpoint)
      if self.detail_checkpoints:
        init.append('displacement fit starts from the RI2ITN output')
      if self.fit_detail_tolerance > 0:
        detail_steps = ('up to %d (stopped at convergence, tolerance %g)' %
                        (self.fit_detail_steps, self.fit_detail_tolerance))
      else:
        detail_steps = '%d' % self.fit_detail_steps
      return [
          'mode: --fit (analysis by synthesis per batch, no trained network '
          'needed): %d Adam steps on the coarse coefficients (landmark, '
          'photometric and prior losses), then %s on a %dx%d displacement '
          'map (detail losses, learning rate %g)%s.' %
          (self.fit_steps, detail_steps, self.uv_size, self.uv_size,
           self.fit_detail_learning_rate,
           '; ' + '; '.join(init) if init else ''),
          '  coarse start: %s' % (
              'closed-form fit of FaceMesh\'s 468 points and BlazeFace\'s 6 '
              'keypoints on the measured correspondence %s' %
              facemesh_correspondence.table_path(self.model.name)
              if self.correspondence else
              'closed-form fit of the 68 %s landmarks' % self.landmark_source)
      ]
    lines = ['mode: checkpoint (trained networks)',
             '  coarse network: %s' % self.coarse_checkpoint]
    small, large = (self.detail_checkpoints['small'],
                    self.detail_checkpoints['large'])
    if small == large:
      lines.append('  RI2ITN (both paths): %s' % small)
    else:
      lines.append('  RI2ITN small pose: %s' % small)
      lines.append('  RI2ITN large pose: %s' % large)
    return lines

  # --- Stage 0: reading and detection -----------------------------------------
  def prepare(self, path, name):
    """PreparedFace for the photo at `path`; InputError naming it if not.

    Safe to call from several threads (detection takes _DETECTION_LOCK).
    """
    try:
      loaded = image_io.load_image(path)
    except ValueError as e:
      raise InputError(str(e)) from e
    try:
      with _DETECTION_LOCK:
        faces = face_landmarks.detect_faces(loaded.image,
                                            self.landmark_source,
                                            self.landmark_model)
    except ValueError as e:
      raise InputError('%s: %s' % (path, e)) from e
    if not faces:
      h, w = loaded.image.shape[:2]
      raise InputError(
          '%s: no face found (%s detector, %dx%d photo); the reconstruct '
          'command needs a visible face of at least ~40 px' %
          (path, self.landmark_source, w, h))
    face = faces[0]
    crop, crop_landmarks, transform = face_crop.crop_face(
        loaded.image, face.landmarks, self.image_size)
    return PreparedFace(name=name,
                        path=path,
                        image=loaded.image,
                        crop=crop,
                        landmarks=np.asarray(face.landmarks, np.float32),
                        crop_landmarks=crop_landmarks,
                        transform=transform,
                        num_faces=len(faces),
                        detector=face.detector,
                        source=face.source,
                        converted_from=loaded.converted_from,
                        crop_dense=(None if face.dense is None else
                                    transform.to_crop(face.dense)),
                        presence=face.presence)

  # --- Stage 1: coarse --------------------------------------------------------
  def coarse(self, crops, crop_landmarks, crop_dense=None, presence=None):
    """Coefficients (NumPy) of a batch of crops [B,S,S,3] (crop_dense:
    [B,474,2] or None, PreparedFace.crop_dense; presence: [B] or None,
    PreparedFace.presence)."""
    initial = None
    if self.coarse_net is not None:
      initial = coefficients_lib.Coefficients(*[
          np.asarray(p) for p in self.coarse_net.coefficients(
              tf.constant(crops))
      ])
      if not self.fit:
        return initial
    return fitting.fit_coarse(self.model, crops, crop_landmarks,
                              source=self.landmark_source,
                              steps=self.fit_steps, initial=initial,
                              photo_weight=self.fit_photo_weight,
                              objective=self.fit_objective,
                              silhouette_yaw_deg=self.fit_silhouette_yaw_deg,
                              dense_landmarks=(crop_dense if
                                               self.correspondence else None),
                              dense_presence=presence,
                              correspondence=self.correspondence
                              ).coefficients

  # --- Stage 2: detail --------------------------------------------------------
  def detail_maps(self, crops, coeffs, large):
    """[B,U,U,1] displacement maps in (-1, 1) for a batch."""
    batch = crops.shape[0]
    maps = np.zeros([batch, self.uv_size, self.uv_size, 1], np.float32)
    for key, select in (('small', ~large), ('large', large)):
      idx = np.flatnonzero(select)
      if not idx.size:
        continue
      sub = coefficients_lib.Coefficients(*[p[idx] for p in coeffs])
      recon = self.detail[key]
      initial = None
      if self.detail_checkpoints:
        out = recon(tf.constant(crops[idx]), sub,
                    pad='always' if key == 'large' else 'never')
        initial = out.displacement_uv.numpy()
        if not self.fit:
          maps[idx] = initial
          continue
      fitted = displacement_fitting.fit_displacement(
          recon, crops[idx], sub, steps=self.fit_detail_steps,
          learning_rate=self.fit_detail_learning_rate,
          tolerance=self.fit_detail_tolerance, large_pose=large[idx],
          initial=initial)
      maps[idx] = fitted.displacement_uv
    return maps

  # --- Whole batch ------------------------------------------------------------
  def reconstruct(self, faces, timings=None):
    """List of FaceResult for a list of PreparedFace (one batch).

    timings: optional dict; 'coarse' and 'detail' seconds are added to it.
    """
    crops = np.stack([f.crop for f in faces]).astype(np.float32)
    crop_lms = np.stack([f.crop_landmarks for f in faces]).astype(np.float32)
    size = (self.image_size, self.image_size)
    t0 = time.time()
    dense = None
    presence = None
    if all(f.crop_dense is not None for f in faces):
      dense = np.stack([f.crop_dense for f in faces]).astype(np.float32)
      presence = np.array([f.presence for f in faces], np.float32)
    coeffs = self.coarse(crops, crop_lms, dense, presence)
    t1 = time.time()
    yaw_deg = np.rad2deg(coeffs.pose[:, 1])
    large = np.abs(yaw_deg) > self.yaw_threshold_deg
    maps = self.detail_maps(crops, coeffs, large)
    recon = self.detail['small']
    coarse = face_reconstruction.reconstruct(self.model, coeffs, size)
    detailed = recon.applier.render(coarse.vertices, coarse.albedo,
                                    coeffs.pose, coeffs.lighting,
                                    tf.constant(maps), size,
                                    self.displacement_scale_mm)
    batch = len(faces)
    grey = tf.fill([batch, self.model.num_vertices, 3], SHADING_ALBEDO)
    light = shading_lighting(batch)
    coarse_grey = face_reconstruction.render_faces(self.model, coarse.vertices,
                                                   grey, coeffs.pose, light,
                                                   size)
    detail_grey = recon.applier.render(coarse.vertices, grey, coeffs.pose,
                                       light, tf.constant(maps), size,
                                       self.displacement_scale_mm)
    disp_uv = recon.applier.mesh.to_uv(detailed.displacement).numpy()[..., 0]
    landmarks3d = tf.gather(
        coarse.vertices,
        face_reconstruction.landmark_indices(self.model,
                                             coarse.screen_vertices),
        axis=1, batch_dims=1).numpy()
    t2 = time.time()
    if timings is not None:
      timings['coarse'] = timings.get('coarse', 0.0) + (t1 - t0)
      timings['detail'] = timings.get('detail', 0.0) + (t2 - t1)
    results = []
    for i, face in enumerate(faces):
      side = 'large-pose' if large[i] else 'small-pose'
      rule = '>' if large[i] else '<='
      what = ('symmetric UV padding of the self-occluded half'
              if large[i] else 'no padding')
      results.append(
          FaceResult(
              prepared=face,
              coefficients=coefficients_lib.Coefficients(
                  *[np.asarray(p[i:i + 1]) for p in coeffs]),
              yaw_deg=float(yaw_deg[i]),
              large_pose=bool(large[i]),
              path_note='%s path: estimated yaw %+.1f deg (|yaw| %s %g deg '
              'threshold; %s)' % (side, yaw_deg[i], rule,
                                  self.yaw_threshold_deg, what),
              coarse_vertices=coarse.vertices[i].numpy(),
              coarse_screen=coarse.screen_vertices[i].numpy(),
              landmarks2d=coarse.landmarks2d[i].numpy(),
              landmarks3d=landmarks3d[i],
              coarse_render=coarse.image[i].numpy(),
              coarse_mask=coarse.mask[i].numpy(),
              coarse_shading=coarse_grey.image[i].numpy(),
              detail_vertices=detailed.vertices[i].numpy(),
              detail_screen=detailed.screen_vertices[i].numpy(),
              detail_normals=detailed.normals[i].numpy(),
              detail_shading=np.clip(detail_grey.image[i].numpy(), 0, 1),
              detail_mask=detail_grey.mask[i].numpy(),
              displacement_uv_mm=disp_uv[i]))
    return results

