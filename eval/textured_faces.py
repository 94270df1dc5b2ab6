"""Photo-like renders of a face model with known geometry, for benchmarks.

What a fitting benchmark needs that a model's own renders lack: real skin.
A face model without a texture basis (SFM, ICT) renders as one flat colour,
which no landmark detector was trained on. Here:

* `skin_textures`: real photos (the shared sample photos) unwrapped into the
  model's UV layout with the project's own unwrap (reconstruct/outputs.py
  `photo_texture`: texels the photo sees face-on from the photo, hidden or
  grazing ones from their mirror texel, else skin inpainted from the seen
  ones), after a landmark fit of the model to the photo
  (coarse/landmark_fit.py).
* `random_lighting`: second-order SH lighting (renderer/shading.py layout)
  of an ambient term plus one directional light from the camera's side.
* `background_tiles`: backgrounds shuffled from 24-px patches of photos, so
  no whole face (which a detector could pick instead) survives in them.
* `sample_photos`, `skins_from_photos`, `photo_backgrounds`,
  `sample_expression`, `HAIR_COLOURS`: what the benchmarks that render such
  faces share (eval/fit_benchmark.py, eval/synthetic_photos.py).
* `render_textured`: a PERSPECTIVE render (pinhole camera at
  `CAMERA_DISTANCE_MM`, unlike the orthographic camera of the fit, as a real
  photo), texture looked up per pixel at the interpolated UV, Lambertian SH
  shading with per-pixel normals, over a background.

Geometry comes out exactly: callers keep the model-space vertices they
rendered and score reconstructions against them (eval/protocols.py).
"""

import glob
import os

import cv2
import numpy as np
import tensorflow as tf

from coarse import landmark_fit
from bfm import mesh_geometry
from renderer import camera
from renderer import mesh_renderer
from renderer import shading

CAMERA_DISTANCE_MM = 700.0
# Face height (model y extent) as a fraction of the image side.
FACE_FRACTION = 0.55
TILE_PX = 24
BACKGROUND_BLUR_FRACTION = 0.03  # Gaussian sigma / image side (defocus)
# Albedos of the head stand-in (head_ellipsoid): black, dark brown, brown,
# blond, grey hair.
HAIR_COLOURS = ((0.05, 0.04, 0.035), (0.16, 0.1, 0.06), (0.33, 0.21, 0.12),
                (0.6, 0.48, 0.3), (0.5, 0.5, 0.5))


def sample_photos(data_dir=None, who='textured_faces'):
  """(frontal, every): sorted paths of the shared sample photos.

  frontal = <data>/faces/celeba_sample/*.jpg (near-frontal: the skins);
  every = <data>/faces/*/*.jpg (background patches). <data> defaults to
  bfm.default_data_dir() (FULLPOSE_DATA_DIR). `who` names the caller in the
  error raised when there are no frontal photos.
  """
  if data_dir is None:
    import bfm  # pylint: disable=g-import-not-at-top
    data_dir = bfm.default_data_dir()
  folder = os.path.join(data_dir, 'faces')
  frontal = sorted(glob.glob(os.path.join(folder, 'celeba_sample', '*.jpg')))
  every = sorted(glob.glob(os.path.join(folder, '*', '*.jpg')))
  if not frontal:
    raise FileNotFoundError(
        '%s: no photos under %s/celeba_sample (the shared sample photos give '
        'the skin textures; set FULLPOSE_DATA_DIR)' % (who, folder))
  return frontal, every


def sample_expression(model, rng):
  """[K_exp] float32 expression: up to 3 blendshapes at weights in [0, 0.6]
  for blendshape models (named expressions), else N(0, 0.5^2) PCA."""
  out = np.zeros([model.num_exp], np.float32)
  if not model.num_exp:
    return out
  if model.exp_names:
    picks = rng.choice(model.num_exp, min(3, model.num_exp), replace=False)
    out[picks] = rng.uniform(0.0, 0.6, len(picks))
  else:
    out[:] = rng.normal(0.0, 0.5, model.num_exp)
  return out


def photo_backgrounds(rng, photos, size, count=12):
  """`count` defocused [size,size,3] float32 backgrounds shuffled from
  TILE_PX patches of `photos` (list of [H,W,3] float32 in [0,1]; no whole
  face survives in them)."""
  sigma = BACKGROUND_BLUR_FRACTION * size
  return [cv2.GaussianBlur(background_tiles(rng, photos, size), (0, 0), sigma)
          for _ in range(count)]


def skins_from_photos(model, paths, source, size=512, limit=None):
  """Skin textures of `model` from the photos at `paths` in which `source`
  (preprocess/face_landmarks.py) finds a face.

  Args:
    model: bfm.MorphableModel.
    paths: photo file paths, read in order.
    source: landmark source ('facemesh' or 'dlib').
    size: texture side in texels.
    limit: at most this many textures (None: one per detected photo).
  Returns:
    (list of [size,size,3] float32 textures, list of the paths they came
    from).
  """
  from preprocess import face_landmarks  # pylint: disable=g-import-not-at-top
  from preprocess import image_io  # pylint: disable=g-import-not-at-top
  images, landmarks, used = [], [], []
  for path in paths:
    if limit is not None and len(images) == limit:
      break
    image = image_io.read_image(path)
    faces = face_landmarks.detect_faces(image, source)
    if faces:
      images.append(image)
      landmarks.append(faces[0].landmarks)
      used.append(path)
  return skin_textures(model, images, landmarks, size, source), used


def skin_textures(model, photos, landmarks, size=256, source='facemesh'):
  """Real photos unwrapped into `model`'s UV layout.

  Args:
    model: bfm.MorphableModel.
    photos: list of [H,W,3] float32 RGB photos in [0,1] (near-frontal).
    landmarks: list of [68,2] float32 detected landmarks (pixels).
    size: texture side in texels.
    source: landmark source of `landmarks` (coarse/landmark_fit.py).
  Returns:
    list of [size,size,3] float32 textures.
  """
  from reconstruct import outputs  # pylint: disable=g-import-not-at-top
  textures = []
  for photo, lms in zip(photos, landmarks):
    shape = photo.shape[:2]
    coeffs = landmark_fit.fit_landmarks(model, np.asarray(lms)[None], shape,
                                        source)
    vertices = model.vertices(coeffs.identity, coeffs.expression)
    screen = camera.orthographic_project(vertices, coeffs.pose, shape)
    albedo = np.asarray(model.albedo(None))[0]
    textures.append(
        outputs.photo_texture(model, photo, screen[0].numpy(), albedo,
                              size).astype(np.float32))
  return textures


def random_lighting(rng):
  """[27] float32 SH lighting: ambient 0.55-0.85 plus 0.2-0.5 of a light
  within 60 degrees of the viewing direction, slightly tinted per channel."""
  c0 = np.sqrt(1.0 / (4 * np.pi))
  c1 = np.sqrt(3.0 / (4 * np.pi))
  ambient = rng.uniform(0.55, 0.85)
  strength = rng.uniform(0.2, 0.5)
  theta = np.deg2rad(rng.uniform(0.0, 60.0))
  phi = rng.uniform(0.0, 2 * np.pi)
  d = np.array([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi),
                np.cos(theta)])
  out = np.zeros([3, 9])
  for c in range(3):
    tint = rng.uniform(0.93, 1.07)
    out[c, 0] = ambient * tint / c0
    out[c, 1:4] = strength * tint * np.array([d[2], d[0], d[1]]) / c1
  out -= np.asarray(shading.AMBIENT_OFFSET)[None]
  return out.reshape(27).astype(np.float32)


def background_tiles(rng, photos, size):
  """[size,size,3] float32 background of shuffled TILE_PX patches of photos."""
  n = -(-size // TILE_PX)
  out = np.zeros([n * TILE_PX, n * TILE_PX, 3], np.float32)
  for i in range(n):
    for j in range(n):
      photo = photos[rng.randint(len(photos))]
      h, w = photo.shape[:2]
      y, x = rng.randint(h - TILE_PX), rng.randint(w - TILE_PX)
      out[i * TILE_PX:(i + 1) * TILE_PX, j * TILE_PX:(j + 1) *
          TILE_PX] = photo[y:y + TILE_PX, x:x + TILE_PX]
  return cv2.GaussianBlur(out[:size, :size], (0, 0), 1.5)


def head_ellipsoid(vertices, rows=24, cols=48):
  """A closed ellipsoid standing in for the skull and hair behind a face.

  Face models cover the face only; seen from the side such a mask looks
  like no head a face detector was trained on. The ellipsoid spans the
  face's width and height (a head ~1.5 face widths long) and sits behind
  the face, so only its back and top show around the face.

  Args:
    vertices: [N,3] model-space face vertices (mm).
  Returns:
    (vertices [M,3] float32, triangles [T,3] int32, counter-clockwise seen
    from outside).
  """
  lo, hi = vertices.min(0), vertices.max(0)
  width, height, depth = hi - lo
  radii = np.array([0.5 * width, 0.56 * height, 0.5 * width])
  # Its front pole 30% of the face's depth in front of the face's rearmost
  # point: behind the forehead, cheeks and chin, around the face's rim.
  centre = np.array([0.5 * (lo[0] + hi[0]), 0.5 * (lo[1] + hi[1]) +
                     0.08 * height, lo[2] + 0.3 * depth - radii[2]])
  theta = np.linspace(0.0, np.pi, rows + 1)[1:-1]  # rings, top (+y) down
  phi = np.linspace(0.0, 2 * np.pi, cols, endpoint=False)
  t, p = np.meshgrid(theta, phi, indexing='ij')
  rings = np.stack([np.sin(t) * np.sin(p), np.cos(t), np.sin(t) * np.cos(p)],
                   -1).reshape(-1, 3)
  unit = np.concatenate([[[0.0, 1.0, 0.0]], rings, [[0.0, -1.0, 0.0]]])
  top, bottom = 0, len(unit) - 1

  def ring(i, j):  # vertex j of ring i (0 = the ring below the top pole)
    return 1 + i * cols + j % cols

  tris = []
  for j in range(cols):
    tris.append([top, ring(0, j), ring(0, j + 1)])
    tris.append([ring(rows - 2, j), bottom, ring(rows - 2, j + 1)])
    for i in range(rows - 2):
      a, b = ring(i, j), ring(i, j + 1)
      c, d = ring(i + 1, j), ring(i + 1, j + 1)
      tris += [[a, c, b], [b, c, d]]
  tris = np.asarray(tris, np.int32)
  return (centre + unit * radii).astype(np.float32), tris


def _camera_setup(vertices, size, offset_px):
  """(centred points [N,3] mm, focal px, translation [1,3] mm) of the render
  camera: the face's height fills FACE_FRACTION of the image."""
  vertices = np.asarray(vertices, np.float32)
  centre = 0.5 * (vertices.min(0) + vertices.max(0))
  height_mm = float(vertices[:, 1].max() - vertices[:, 1].min())
  focal = FACE_FRACTION * size * CAMERA_DISTANCE_MM / height_mm
  translation = np.array([[offset_px[0] * CAMERA_DISTANCE_MM / focal,
                           -offset_px[1] * CAMERA_DISTANCE_MM / focal,
                           -CAMERA_DISTANCE_MM]], np.float32)
  return vertices - centre, focal, translation


def project(vertices, angles, size, offset_px=(0.0, 0.0)):
  """Screen positions of `vertices` under render_textured's camera.

  Args:
    vertices: [N,3] float32 model-space vertices, mm (those rendered).
    angles: (pitch, yaw, roll) radians.
    size: image side in pixels.
    offset_px: as render_textured.
  Returns:
    [N,3] float32: x, y pixels (origin top-left, y down) and camera-space
    z in mm (larger = closer), renderer/camera.py perspective_project.
  """
  points, focal, translation = _camera_setup(vertices, size, offset_px)
  angles = tf.constant(np.asarray(angles, np.float32)[None])
  return camera.perspective_project(tf.constant(points[None]), angles,
                                    translation, focal,
                                    (size, size))[0].numpy()


def render_with_positions(model, vertices, texture, angles, lighting, size,
                          background):
  """`render_textured` (with a head) plus what lies under each pixel.

  Args: as render_textured (no offset).
  Returns:
    image: [size,size,3] float32 photo-like render.
    positions: [size,size,3] float32 model-space surface position (mm, the
      frame of `vertices`) under each pixel of the face.
    mask: [size,size] float32, 1 on the face model's pixels.
    rotation: [3,3] float64 model-to-camera rotation (row 2 = towards the
      camera, renderer/camera.py convention).
  """
  image, mask = render_textured(model, vertices, texture, angles, lighting,
                                size, background, hair_colour=(0.2, 0.15,
                                                               0.1))
  points, focal, translation = _camera_setup(vertices, size, (0.0, 0.0))
  angles = tf.constant(np.asarray(angles, np.float32)[None])
  clip = camera.perspective_clip(tf.constant(points[None]), angles,
                                 translation, focal, (size, size))
  out = mesh_renderer.render_clip(
      clip, np.asarray(model.triangles, np.int32),
      tf.constant(np.asarray(vertices, np.float32)[None]), (size, size))
  rotation = camera.rotation_matrix(angles)[0].numpy().astype(np.float64)
  return image, out.image[0].numpy(), mask, rotation


def render_textured(model, vertices, texture, angles, lighting, size,
                    background, offset_px=(0.0, 0.0), hair_colour=None):
  """Perspective render of one textured, SH-lit face over a background.

  Args:
    model: bfm.MorphableModel (triangles, UVs).
    vertices: [N,3] float32 model-space vertices, mm.
    texture: [S,S,3] float32 texture in the model's UV layout (v up).
    angles: (pitch, yaw, roll) radians, renderer/camera.py convention.
    lighting: [27] float32 SH lighting (renderer/shading.py layout).
    size: image side in pixels.
    background: [size,size,3] float32.
    offset_px: (dx, dy) shift of the face centre from the image centre.
    hair_colour: None (face only) or an RGB albedo in [0,1] for a
      `head_ellipsoid` rendered with the face (depth-tested together).
  Returns:
    (image [size,size,3] float32 in [0,1], mask [size,size] float32 of the
    face model's pixels).
  """
  points, focal, translation = _camera_setup(vertices, size, offset_px)
  triangles = np.asarray(model.triangles, np.int32)
  normals = np.asarray(model.vertex_normals(tf.constant(points[None])))[0]
  uv = np.asarray(model.uv, np.float32)
  is_head = np.zeros([len(points), 1], np.float32)
  if hair_colour is not None:
    head, head_tris = head_ellipsoid(points)
    head_normals = np.asarray(mesh_geometry.vertex_normals(
        tf.constant(head[None]), head_tris))[0]
    triangles = np.concatenate([triangles, head_tris + len(points)])
    points = np.concatenate([points, head])
    normals = np.concatenate([normals, head_normals])
    uv = np.concatenate([uv, np.zeros([len(head), 2], np.float32)])
    is_head = np.concatenate([is_head, np.ones([len(head), 1], np.float32)])
  angles = tf.constant(np.asarray(angles, np.float32)[None])
  clip = camera.perspective_clip(tf.constant(points[None]), angles,
                                 translation, focal, (size, size))
  rotation = camera.rotation_matrix(angles)
  normals = tf.einsum('bij,bnj->bni', rotation, tf.constant(normals[None]))
  attributes = tf.concat([uv[None], normals, is_head[None]], -1)
  out = mesh_renderer.render_clip(clip, triangles, attributes, (size, size))
  attrs = out.image[0].numpy()
  head_px = attrs[..., 5] > 0.5
  mask = out.mask[0, ..., 0].numpy() * (~head_px)
  tex_size = texture.shape[0]
  map_x = (attrs[..., 0] * tex_size - 0.5).astype(np.float32)
  map_y = ((1.0 - attrs[..., 1]) * tex_size - 0.5).astype(np.float32)
  albedo = cv2.remap(texture.astype(np.float32), map_x, map_y,
                     cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
  if hair_colour is not None:
    albedo[head_px] = np.asarray(hair_colour, np.float32)
  pixel_normals = attrs[..., 2:5]
  pixel_normals /= np.maximum(
      np.linalg.norm(pixel_normals, axis=-1, keepdims=True), 1e-6)
  shaded = shading.sh_shade(albedo.reshape(1, -1, 3),
                            pixel_normals.reshape(1, -1, 3),
                            np.asarray(lighting, np.float32)[None])
  shaded = np.clip(shaded.numpy().reshape(size, size, 3), 0.0, 1.0)
  # Soften the silhouette by one pixel, as a camera would.
  alpha = cv2.GaussianBlur(out.mask[0, ..., 0].numpy(), (3, 3), 0.6)[..., None]
  image = alpha * shaded + (1.0 - alpha) * background
  return np.clip(image, 0.0, 1.0).astype(np.float32), mask
