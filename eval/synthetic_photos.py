"""Photo-like faces of a statistical face model, for the synthetic benchmark.

The benchmark's training and test faces when --benchmark_faces=textured:
random identity and expression of the model (identity N(0, 1) per
coefficient; expression textured_faces.sample_expression: up to 3
blendshapes of a blendshape model, N(0, 0.5^2) PCA otherwise), pose from
preprocess/synthetic_data.py's sampler (pitch, roll and the requested yaw
distribution), rendered by eval/textured_faces.py render_textured: real skin
(shared sample photos unwrapped into the model's UV), a head stand-in of a
random hair colour, random SH lighting and defocused photo-patch
backgrounds, perspective camera. Landmarks are the exact projections of the
model's 68 landmark vertices under that camera, jaw on the silhouette
(coarse/face_reconstruction.py sliding contour, LANDMARK_SOURCE = 'dlib', as
the model-rendered faces of preprocess/synthetic_data.py).

`generate` yields preprocess/synthetic_data.SyntheticBatch objects, so
eval/synthetic_sets.py stores both kinds of faces the same way. Fields that
differ from the model renders: skin_masks = the face model's rendered pixels
(no eye cut-out); coefficients.texture = [B, num_tex] zeros (the skin is a
photo); coefficients.lighting = textured_faces.random_lighting;
coefficients.pose = (pitch, yaw, roll) exactly, (tx, ty) = the face centre's
offset in pixels of a 224-px image (tx right, ty up) and log_scale = 0
(unused: the perspective camera puts the face's height at
textured_faces.FACE_FRACTION of the image); screen_vertices = [B,N,3]
perspective screen positions (x, y pixels, z camera-space mm).
"""

import numpy as np

from coarse import face_reconstruction
from eval import textured_faces
from preprocess import synthetic_data

LANDMARK_SOURCE = synthetic_data.LANDMARK_SOURCE
# Backgrounds drawn per generate() call; each face takes one at random.
BACKGROUNDS_PER_SET = 24
_REFERENCE_PX = 224.0  # pose tx, ty units (renderer/camera.py)


def sample_batch(model, batch_size, image_size, rng, yaw_distribution,
                 skins, backgrounds):
  """One SyntheticBatch of textured faces (module docstring).

  Args:
    model: bfm.MorphableModel (with UVs).
    batch_size: B.
    image_size: python int, image side in pixels.
    rng: np.random.RandomState.
    yaw_distribution: preprocess/synthetic_data.py yaw distribution.
    skins: list of [T,T,3] float32 textures in the model's UV layout.
    backgrounds: list of [image_size, image_size, 3] float32 in [0,1].
  """
  if not skins or not backgrounds:
    raise ValueError('synthetic_photos.sample_batch: need at least one skin '
                     'and one background, got %d and %d' %
                     (len(skins), len(backgrounds)))
  b, size = int(batch_size), int(image_size)
  coeffs = synthetic_data.sample_coefficients(model, b, rng, yaw_distribution)
  expression = np.stack([textured_faces.sample_expression(model, rng)
                         for _ in range(b)]).reshape(b, model.num_exp)
  vertices = np.asarray(model.vertices(coeffs.identity, expression),
                        np.float32)
  pose = np.array(coeffs.pose, np.float32)
  pose[:, 5] = 0.0
  images = np.zeros([b, size, size, 3], np.float32)
  masks = np.zeros([b, size, size, 1], np.float32)
  screens = np.zeros(vertices.shape, np.float32)
  lighting = np.zeros([b, 27], np.float32)
  for i in range(b):
    angles = pose[i, :3]
    offset = (pose[i, 3] * size / _REFERENCE_PX,
              -pose[i, 4] * size / _REFERENCE_PX)
    lighting[i] = textured_faces.random_lighting(rng)
    skin = skins[rng.randint(len(skins))]
    background = backgrounds[rng.randint(len(backgrounds))]
    hair = textured_faces.HAIR_COLOURS[
        rng.randint(len(textured_faces.HAIR_COLOURS))]
    images[i], masks[i, ..., 0] = textured_faces.render_textured(
        model, vertices[i], skin, angles, lighting[i], size, background,
        offset_px=offset, hair_colour=hair)
    screens[i] = textured_faces.project(vertices[i], angles, size, offset)
  landmarks = face_reconstruction.landmarks2d(
      model, screens, LANDMARK_SOURCE).numpy()
  coefficients = coeffs._replace(
      expression=expression.astype(np.float32),
      texture=np.zeros([b, model.num_tex], np.float32),
      pose=pose, lighting=lighting)
  return synthetic_data.SyntheticBatch(
      images=images, landmarks=landmarks.astype(np.float32),
      skin_masks=masks, coefficients=coefficients, vertices=vertices,
      screen_vertices=screens, yaw_deg=np.rad2deg(pose[:, 1]))


def generate(model, seed, count, image_size, yaw_distribution, skins,
             background_photos, batch_size=16):
  """Yields SyntheticBatch objects of textured faces, `count` in all.

  Deterministic for a given seed and arguments: BACKGROUNDS_PER_SET
  backgrounds are cut from `background_photos` (list of [H,W,3] float32
  photos in [0,1]) first, then the faces are drawn batch by batch.
  """
  if int(count) < 0 or int(batch_size) <= 0:
    raise ValueError('synthetic_photos.generate: need count >= 0 and '
                     'batch_size > 0, got %r, %r' % (count, batch_size))
  rng = np.random.RandomState(seed)
  backgrounds = textured_faces.photo_backgrounds(
      rng, background_photos, int(image_size), BACKGROUNDS_PER_SET)
  left = int(count)
  while left > 0:
    n = min(left, int(batch_size))
    yield sample_batch(model, n, image_size, rng, yaw_distribution, skins,
                       backgrounds)
    left -= n
