"""Where a face model's surface carries MediaPipe's 468 FaceMesh points.

FaceMesh (preprocess/mediapipe_landmarks.py) marks 468 fixed surface points
and BlazeFace 6 keypoints (eyes, nose tip, mouth centre, ear tragions). A
face model does not say where those points are on its mesh, and a hand-made
table (the 68 iBUG vertices, coarse/landmark_fit.py) disagrees with where
the detector actually puts them by several millimetres, which a landmark fit
then explains as a change of identity. This module MEASURES the
correspondence once per model:

1. Renders the model's mean face with real skin (photos unwrapped into its
   UV layout, eval/textured_faces.py) from `VIEWS` (yaw -40..40 degrees,
   pitch -15..15) and runs the detector on each render.
2. Back-projects each detected point through the rasterizer: the model-space
   surface position under the point's pixel (renderer interpolation of the
   vertex positions).
3. Keeps, per point, the views in which the surface there faces the camera
   (|cos| > `MIN_FACING`; a point hidden in one view is a guess there) and
   takes the median position, iterated so that the facing test uses the
   current estimate; the root-mean-square scatter of the kept back-projections
   is the point's noise, `scatter_mm`.
4. Snaps the median to the closest point of the mean mesh (libigl), stored
   as a triangle and barycentric coordinates so that it moves with the
   identity and expression.

Tables for the shared models are committed under `correspondence/`
(`facemesh_<model>.npz`); build one for any other model with

  python -m coarse.facemesh_correspondence --bfm=NAME \
      --correspondence_photos='DIR/*.jpg'

(near-frontal photos give the skin; about a minute on 2 cores). Without a
table the fit uses the 68 iBUG vertices (coarse/landmark_fit.fit_landmarks).
"""

import collections
import glob
import hashlib
import os

import numpy as np

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        'correspondence')
NUM_MESH_POINTS = 468
NUM_KEYPOINTS = 6
NUM_POINTS = NUM_MESH_POINTS + NUM_KEYPOINTS
# (pitch, yaw) degrees of the calibration renders.
VIEWS = tuple((p, y) for y in (-40, -20, 0, 20, 40) for p in (-15, 0, 15))
KEYPOINT_VIEWS = tuple((p, y) for y in (-60, -40, -20, 0, 20, 40, 60)
                       for p in (-10, 10))
MIN_FACING = 0.35
RENDER_SIZE = 384
NO_VIEW_SCATTER_MM = 10.0  # scatter of a point no view saw facing the camera

Correspondence = collections.namedtuple(
    'Correspondence', ['triangles', 'barycentrics', 'scatter_mm', 'model',
                       'mesh_digest'])
Correspondence.__doc__ = """Model-side positions of FaceMesh's points.

  triangles: [474,3] int32 model vertex indices: rows 0..467 the FaceMesh
    points, 468..473 BlazeFace's 6 keypoints (preprocess/blazeface.py order).
  barycentrics: [474,3] float32 weights of the three vertices (sum 1).
  scatter_mm: [474] float32 RMS scatter of the detector's point on the
    calibration renders, mm on the face (its noise; see the module docstring).
  model: name of the model it was measured on.
  mesh_digest: mesh_digest() of that model (checked on use).
"""


def mesh_digest(model):
  """Hex digest of the model's vertex count and triangles."""
  h = hashlib.sha1()
  h.update(np.int64(model.mean_shape.shape[0]).tobytes())
  h.update(np.ascontiguousarray(model.triangles, np.int64).tobytes())
  return h.hexdigest()[:16]


def table_path(model_name):
  return os.path.join(DATA_DIR, 'facemesh_%s.npz' % model_name)


def save(path, corr, photos=()):
  os.makedirs(os.path.dirname(os.path.abspath(path)) or '.', exist_ok=True)
  tmp = path + '.tmp.npz'
  np.savez(tmp, triangles=corr.triangles, barycentrics=corr.barycentrics,
           scatter_mm=corr.scatter_mm, model=np.str_(corr.model),
           mesh_digest=np.str_(corr.mesh_digest),
           photos=np.asarray([os.path.basename(p) for p in photos], np.str_))
  os.replace(tmp, path)


def load(path, model=None):
  """Reads a table; checks it against `model` when given.

  Raises:
    ValueError: naming `path`, when the file is malformed or was measured on
      a different mesh.
  """
  try:
    with np.load(path) as data:
      corr = Correspondence(
          triangles=np.asarray(data['triangles'], np.int32),
          barycentrics=np.asarray(data['barycentrics'], np.float32),
          scatter_mm=np.asarray(data['scatter_mm'], np.float32),
          model=str(data['model']), mesh_digest=str(data['mesh_digest']))
  except (OSError, KeyError, ValueError) as e:
    raise ValueError('%s: not a FaceMesh correspondence table (%s)' %
                     (path, e)) from e
  if (corr.triangles.shape != (NUM_POINTS, 3) or
      corr.barycentrics.shape != (NUM_POINTS, 3) or
      corr.scatter_mm.shape != (NUM_POINTS,)):
    raise ValueError('%s: expected %d points, got triangles %s' %
                     (path, NUM_POINTS, corr.triangles.shape))
  if model is not None and corr.mesh_digest != mesh_digest(model):
    raise ValueError(
        '%s: measured on a different mesh than model %r (digest %s, model %s);'
        ' rebuild it with python -m coarse.facemesh_correspondence' %
        (path, model.name, corr.mesh_digest, mesh_digest(model)))
  return corr


def for_model(model):
  """The committed/built table of `model`, or None when there is none."""
  path = table_path(model.name)
  if not os.path.exists(path):
    return None
  return load(path, model)


def points(corr, vertices):
  """[..., 474, 3] positions of the points on meshes [..., N, 3]."""
  vertices = np.asarray(vertices)
  return np.einsum('lj,...ljc->...lc', corr.barycentrics,
                   vertices[..., corr.triangles, :])


def _backproject(pixels, positions, mask):
  """[P,3] model-space positions under pixels [P,2] (NaN off the face)."""
  import cv2  # pylint: disable=g-import-not-at-top
  map_x = (np.asarray(pixels[:, 0], np.float32) - 0.5)[None]
  map_y = (np.asarray(pixels[:, 1], np.float32) - 0.5)[None]
  pos = cv2.remap(positions.astype(np.float32), map_x, map_y,
                  cv2.INTER_LINEAR)[0]
  cover = cv2.remap(mask.astype(np.float32), map_x, map_y,
                    cv2.INTER_LINEAR)[0]
  pos[cover < 0.99] = np.nan
  return pos


def _aggregate(samples, mean, normals):
  """Robust per-point median over views where the surface faces the camera.

  Args:
    samples: list of ([P,3] back-projected positions, [3,3] rotation).
    mean: [N,3] mean shape; normals: [N,3] its unit vertex normals.
  Returns:
    ([P,3] positions, [P] RMS scatter in mm, NaN where no view qualified).
  """
  from scipy import spatial  # pylint: disable=g-import-not-at-top
  tree = spatial.cKDTree(mean)
  stack = np.stack([s for s, _ in samples])  # [V,P,3]
  rotations = np.stack([r for _, r in samples])  # [V,3,3]
  estimate = np.nanmedian(stack, 0)
  scatter = np.full([stack.shape[1]], np.nan)
  for _ in range(3):
    _, nearest = tree.query(np.nan_to_num(estimate))
    facing = np.einsum('vj,pj->vp', rotations[:, 2], normals[nearest])
    keep = (facing > MIN_FACING) & np.isfinite(stack[..., 0])
    for k in range(stack.shape[1]):
      values = stack[keep[:, k], k]
      if len(values):
        estimate[k] = np.median(values, 0)
        scatter[k] = np.sqrt(np.mean(np.sum((values - estimate[k])**2, 1)))
  return estimate, scatter


def build(model, textures, seed=0):
  """Measures the correspondence of `model` (module docstring).

  Args:
    model: bfm.MorphableModel.
    textures: list of [S,S,3] float32 skin textures in the model's UV layout
      (eval/textured_faces.skin_textures).
    seed: lighting and texture choice per view.
  Returns:
    Correspondence.
  Raises:
    RuntimeError: the detector found no face in too many renders.
  """
  import igl  # pylint: disable=g-import-not-at-top
  from eval import textured_faces  # pylint: disable=g-import-not-at-top
  from preprocess import mediapipe_landmarks  # pylint: disable=g-import-not-at-top
  rng = np.random.RandomState(seed)
  detector = mediapipe_landmarks.get_detector()
  mean = np.asarray(model.mean_shape, np.float32)
  normals = np.asarray(model.vertex_normals(mean[None]), np.float64)[0]
  background = np.full([RENDER_SIZE, RENDER_SIZE, 3], 0.4, np.float32)
  mesh_samples, key_samples = [], []
  views = sorted(set(VIEWS) | set(KEYPOINT_VIEWS))
  for pitch, yaw in views:
    angles = np.deg2rad([pitch, yaw, 0.0])
    image, positions, mask, rotation = textured_faces.render_with_positions(
        model, mean, textures[rng.randint(len(textures))], angles,
        textured_faces.random_lighting(rng), RENDER_SIZE, background)
    faces = detector.detect(image)
    if not faces:
      continue
    face = faces[0]
    if (pitch, yaw) in VIEWS:
      mesh_samples.append((_backproject(face.landmarks468[:, :2], positions,
                                        mask), rotation))
    if (pitch, yaw) in KEYPOINT_VIEWS:
      key_samples.append((_backproject(face.keypoints6, positions, mask),
                          rotation))
  if len(mesh_samples) < len(VIEWS) // 2 or len(key_samples) < 4:
    raise RuntimeError(
        'facemesh_correspondence: the detector found the %r mean face in only'
        ' %d of %d calibration renders; give near-frontal skin photos' %
        (model.name, len(mesh_samples), len(VIEWS)))
  mesh_pos, mesh_scatter = _aggregate(mesh_samples, mean, normals)
  key_pos, key_scatter = _aggregate(key_samples, mean, normals)
  estimate = np.concatenate([mesh_pos, key_pos])
  scatter = np.concatenate([mesh_scatter, key_scatter])
  scatter = np.where(np.isfinite(scatter), scatter, NO_VIEW_SCATTER_MM)
  faces = np.asarray(model.triangles, np.int64)
  _, face_index, closest = igl.point_mesh_squared_distance(
      np.nan_to_num(estimate), mean.astype(np.float64), faces)
  tris = faces[face_index]
  corners = [mean[tris[:, j]].astype(np.float64) for j in range(3)]
  bary = igl.barycentric_coordinates(closest, *corners)
  return Correspondence(triangles=tris.astype(np.int32),
                        barycentrics=bary.astype(np.float32),
                        scatter_mm=scatter.astype(np.float32),
                        model=model.name, mesh_digest=mesh_digest(model))


def main(argv):
  del argv
  from absl import flags  # pylint: disable=g-import-not-at-top
  import bfm  # pylint: disable=g-import-not-at-top
  from eval import textured_faces  # pylint: disable=g-import-not-at-top
  from preprocess import face_landmarks  # pylint: disable=g-import-not-at-top
  from preprocess import image_io  # pylint: disable=g-import-not-at-top
  flags_ = flags.FLAGS
  photos = sorted({p for pattern in flags_.correspondence_photos
                   for p in glob.glob(pattern)})
  if not photos:
    raise SystemExit('facemesh_correspondence: no photos match %r' %
                     flags_.correspondence_photos)
  model = bfm.load(flags_.bfm)
  images, landmarks, used = [], [], []
  for path in photos:
    image = image_io.read_image(path)
    found = face_landmarks.detect_faces(image, 'facemesh')
    if found:
      images.append(image)
      landmarks.append(found[0].landmarks)
      used.append(path)
  textures = textured_faces.skin_textures(model, images, landmarks)
  corr = build(model, textures, flags_.correspondence_seed)
  out = flags_.correspondence_out or table_path(model.name)
  save(out, corr, used)
  print('wrote %s: %d points, median scatter %.2f mm (from %d photos)' % (
      out, NUM_POINTS, float(np.median(corr.scatter_mm)), len(used)))


def define_flags():
  """--bfm (flags/common_flags.py) and this command's own flags."""
  from flags import common_flags  # pylint: disable=g-import-not-at-top
  common_flags.define_flags()
  common_flags.define_once(
      'list', 'correspondence_photos', None,
      'Comma-separated globs of near-frontal photos whose skin the '
      'calibration renders wear (e.g. '
      '"../shared/data/faces/celeba_sample/*.jpg").')
  common_flags.define_once(
      'string', 'correspondence_out', None,
      'Output .npz (default: coarse/correspondence/facemesh_<model>.npz, '
      'the table reconstruct uses).')
  common_flags.define_once('integer', 'correspondence_seed', 0,
                           'Seed of the per-view lighting and skin choice.')


if __name__ == '__main__':
  from absl import app  # pylint: disable=g-import-not-at-top
  define_flags()
  app.run(main)
