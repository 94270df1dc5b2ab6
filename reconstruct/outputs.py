"""Writes the reconstruct command's files for one face (see `write_face`).

Per face NAME, into the output folder:
  NAME_coarse.obj      coarse mesh (model space, mm) with vt UVs (the face
                       model's UV layout) and vn normals; mtllib NAME.mtl.
  NAME_detail.obj      dense displaced mesh (one vertex per UV texel of the
                       face region), vt = the texel centres in the same UV
                       layout, vn normals; mtllib NAME.mtl.
  NAME.mtl             one material whose map_Kd is NAME_texture.png; the
                       displacement map and its scale as comments.
  NAME_texture.png     the photo unwrapped into the UV layout (8-bit RGB).
  NAME_displacement.png  16-bit UV displacement map;
  NAME_displacement.json its decoding: mm = (value / 65535 * 2 - 1) * scale_mm.
  NAME_coefficients.npz  identity, expression, texture, pose, lighting (+ yaw,
                       path, mode, crop transform, model name).
  NAME_landmarks.txt   68 rows: x y (photo pixels, detected) X Y Z (mm, the
                       same landmarks on the coarse mesh, model space).
  NAME_vis.png         top row: crop | landmarks | coarse shading | detailed
                       shading; below: the detailed shading overlaid on the
                       photo at its original size, or reduced to a longer
                       side of PHOTO_MAX_SIDE = 2048 px (the texture is
                       sampled from that copy too: bounded memory on any
                       photo).
  NAME_complete.json   the completion marker, written LAST: the run that
                       wrote the set (run id, pid, time, source photo) and
                       each file's size and SHA-256. A face's outputs are
                       complete exactly when this marker is present and the
                       files match it.
Meshes are in model space (mm, x = subject's left, y up, z towards the
viewer; bfm/README.md), not posed.

Writing is atomic per file and per face:
  1. `claim(out_dir, name, overwrite, skip_complete)` takes the face's lock
     .NAME.lock in the output folder (an exclusive flock: a second process
     that wants the same NAME is refused at once with OutputCollision, never
     waits; the kernel drops the lock when a process dies, so no lock goes
     stale). With the lock held, a complete set of NAME (`complete_marker`:
     the marker lists every file and they match it) is AlreadyComplete when
     `skip_complete` (the command's --resume), and existing outputs of NAME
     are refused (OutputCollision) unless `overwrite`.
  2. `write_face` writes every file under a temporary name in the same
     folder (.NAME_coarse.<token>.tmp.obj, ...). Any error (full disk, a bad
     setting) removes the temporary files and leaves the folder as it was:
     a previous set of NAME stays complete.
  3. Commit, with SIGINT/SIGTERM held back for its few milliseconds: the
     old marker is removed, the files are renamed over their final names
     (os.replace, atomic within a folder), then the marker is written
     (temporary name + rename).
So another process never sees a half-written file, and two processes never
write the same NAME at once. Not a power-loss guarantee (nothing is
fsync'ed). Stray .*.tmp.* files can remain only after a SIGKILL.
"""

import contextlib
import hashlib
import json
import os
import signal
import socket
import threading
import time

import cv2
import numpy as np
import tensorflow as tf

from bfm import mesh_geometry
from bfm import mesh_io
from reconstruct import pipeline as pipeline_lib
from renderer import camera
from renderer import mesh_renderer
from renderer import shading
from renderer import uv as uv_lib

SUFFIXES = ('_coarse.obj', '_detail.obj', '.mtl', '_texture.png',
            '_displacement.png', '_displacement.json', '_coefficients.npz',
            '_landmarks.txt', '_vis.png')
MARKER_SUFFIX = '_complete.json'
LOCK_FORMAT = '.%s.lock'
PHOTO_MAX_SIDE = 2048
UINT16_MAX = 65535
OVERLAY_ALPHA = 0.65
DETECTED_COLOUR = (0.1, 1.0, 0.1)
FITTED_COLOUR = (1.0, 0.15, 0.15)
MESH_UNITS = ('units: mm, model space (x = subject\'s left, y up, z towards '
              'the viewer)')


def output_paths(out_dir, name):
  """dict suffix -> path of every file written for face `name`."""
  return {s: os.path.join(out_dir, name + s) for s in SUFFIXES}


# --- The output set: locking, temporary names, commit -------------------------
class OutputCollision(Exception):
  """NAME's outputs exist (no --overwrite) or another run is writing them."""


class AlreadyComplete(Exception):
  """NAME's outputs are a complete set (`claim` with skip_complete).

  Attributes:
    marker: the set's completion marker (dict, see read_marker).
  """

  def __init__(self, message, marker):
    super().__init__(message)
    self.marker = marker


def marker_path(out_dir, name):
  return os.path.join(out_dir, name + MARKER_SUFFIX)


def existing_outputs(out_dir, name):
  """Paths of NAME's output files (and marker) already in out_dir."""
  paths = list(output_paths(out_dir, name).values())
  paths.append(marker_path(out_dir, name))
  return [p for p in paths if os.path.lexists(p)]


class FaceLock:
  """The exclusive lock on one face NAME in an output folder (see `claim`)."""

  def __init__(self, path, fd):
    self.path = path
    self._fd = fd

  def release(self):
    """Removes the lock file and unlocks (idempotent)."""
    if self._fd is None:
      return
    try:
      os.unlink(self.path)  # while still locked: the next claim re-checks
    except OSError:
      pass
    os.close(self._fd)  # closing drops the flock
    self._fd = None


def _flock(fd):
  """Non-blocking exclusive lock; False when another process holds it."""
  try:
    import fcntl  # pylint: disable=g-import-not-at-top (POSIX only)
  except ImportError:  # not POSIX: no exclusion between processes
    return True
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return True
  except OSError:
    return False


def claim(out_dir, name, overwrite=False, skip_complete=False):
  """Locks face `name` in out_dir for this process; returns a FaceLock.

  Args:
    out_dir: the output folder (exists).
    name: the face's output name NAME.
    overwrite: let existing outputs of NAME be replaced.
    skip_complete: refuse (AlreadyComplete) a NAME whose set is complete,
      checked with the lock held: its marker is present and every file it
      lists has the size and SHA-256 it records (read_marker). Checked
      before `overwrite` applies: with both, only incomplete sets are
      replaced. See complete_marker.
  Raises:
    AlreadyComplete: skip_complete and NAME's set is complete (the lock is
      released again).
    OutputCollision: another live process holds the lock, or NAME's outputs
      exist and not `overwrite` (the message names the folder and NAME).
    OSError: the lock file cannot be created (unwritable folder).
  """
  path = os.path.join(out_dir, LOCK_FORMAT % name)
  for _ in range(5):
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    if not _flock(fd):
      holder = ''
      try:
        holder = os.read(fd, 200).decode('utf-8', 'replace').strip()
      except OSError:
        pass
      os.close(fd)
      raise OutputCollision(
          '%s: another reconstruct run is writing this face\'s outputs '
          '(lock %s%s); not written' %
          (name, path, ', held by ' + holder if holder else ''))
    try:  # the holder before us may have removed the file: lock the live one
      same = os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
      same = False
    if same:
      break
    os.close(fd)
  else:
    raise OutputCollision('%s: could not lock %s (it keeps being replaced)' %
                          (name, path))
  os.ftruncate(fd, 0)
  os.write(fd, ('pid %d on %s since %s' % (
      os.getpid(), socket.gethostname(),
      time.strftime('%Y-%m-%d %H:%M:%S'))).encode())
  lock = FaceLock(path, fd)
  if skip_complete:
    try:
      marker = complete_marker(out_dir, name)
    except BaseException:  # e.g. an unreadable file: no lock left behind
      lock.release()
      raise
    if marker is not None:
      lock.release()
      raise AlreadyComplete(
          '%s: outputs in %s are complete (written by run %s); skipped' %
          (name, out_dir, marker.get('run_id')), marker)
  if not overwrite:
    found = existing_outputs(out_dir, name)
    if found:
      lock.release()
      raise OutputCollision(
          '%s: outputs already in %s (%s%s); not overwritten (pass '
          '--overwrite to replace them, or --resume to skip faces whose '
          'outputs are complete)' %
          (name, out_dir, os.path.basename(found[0]),
           ' and %d more' % (len(found) - 1) if len(found) > 1 else ''))
  return lock


@contextlib.contextmanager
def deferred_sigint():
  """Holds back SIGINT (Ctrl-C) and SIGTERM until the block ends, then
  raises KeyboardInterrupt."""
  if threading.current_thread() is not threading.main_thread():
    yield
    return
  received = []
  held = (signal.SIGINT, signal.SIGTERM)
  previous = [signal.signal(s, lambda *a: received.append(a)) for s in held]
  try:
    yield
  finally:
    for s, handler in zip(held, previous):
      signal.signal(s, handler)
    if received:
      raise KeyboardInterrupt()


def _sha256(path):
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()


class _Staging:
  """Temporary names next to the final ones; commit() renames them over."""

  def __init__(self, out_dir, name, run_id):
    self.out_dir = out_dir
    self.name = name
    self.run_id = run_id
    token = '%d-%s' % (os.getpid(), os.urandom(3).hex())
    self.final = output_paths(out_dir, name)
    self.temp = {}
    for suffix, path in self.final.items():
      stem, ext = os.path.splitext(os.path.basename(path))
      # Same extension last: cv2.imwrite and np.savez go by it.
      self.temp[suffix] = os.path.join(out_dir,
                                       '.%s.%s.tmp%s' % (stem, token, ext))
    self.marker_temp = os.path.join(out_dir, '.%s%s.%s.tmp' %
                                    (name, MARKER_SUFFIX, token))

  def discard(self):
    for path in list(self.temp.values()) + [self.marker_temp]:
      try:
        os.unlink(path)
      except FileNotFoundError:
        pass

  def commit(self, source):
    """Renames the files over their final names, then writes the marker."""
    files = {}
    for suffix, path in self.temp.items():
      files[os.path.basename(self.final[suffix])] = {
          'bytes': os.path.getsize(path), 'sha256': _sha256(path)}
    marker = {'name': self.name, 'run_id': self.run_id, 'pid': os.getpid(),
              'host': socket.gethostname(),
              'time': time.strftime('%Y-%m-%dT%H:%M:%S%z'),
              'source': source, 'files': files}
    with open(self.marker_temp, 'w', encoding='utf-8') as f:
      json.dump(marker, f, indent=1)
    with deferred_sigint():
      try:
        os.unlink(marker_path(self.out_dir, self.name))
      except FileNotFoundError:
        pass
      for suffix, path in self.temp.items():
        os.replace(path, self.final[suffix])
      os.replace(self.marker_temp, marker_path(self.out_dir, self.name))
    return marker


def read_marker(out_dir, name, verify=True):
  """NAME's completion marker (dict), or None when the set is incomplete.

  verify: also check every listed file's size and SHA-256.
  A marker that is not the JSON object write_face writes counts as absent.
  """
  try:
    with open(marker_path(out_dir, name), encoding='utf-8') as f:
      marker = json.load(f)
  except (OSError, ValueError):
    return None
  if not isinstance(marker, dict) or not isinstance(marker.get('files', {}),
                                                    dict):
    return None
  if verify:
    for base, info in marker.get('files', {}).items():
      path = os.path.join(out_dir, base)
      try:
        size, digest = info['bytes'], info['sha256']
      except (KeyError, TypeError):
        return None
      if (not os.path.isfile(path) or os.path.getsize(path) != size
          or _sha256(path) != digest):
        return None
  return marker


def complete_marker(out_dir, name):
  """NAME's verified marker (read_marker) when it lists every file that
  write_face writes (output_paths), else None: the test of --resume."""
  marker = read_marker(out_dir, name, verify=True)
  if marker is None:
    return None
  expected = {os.path.basename(p) for p in output_paths(out_dir, name).values()}
  return marker if expected <= set(marker['files']) else None


def photo_size(image_shape):
  """(height, width) of the photo copy the outputs use (PHOTO_MAX_SIDE)."""
  h, w = int(image_shape[0]), int(image_shape[1])
  if max(h, w) <= PHOTO_MAX_SIDE:
    return h, w
  scale = PHOTO_MAX_SIDE / float(max(h, w))
  return max(1, int(round(h * scale))), max(1, int(round(w * scale)))


def output_photo(image):
  """(the photo reduced to photo_size, (sx, sy) photo -> copy pixels)."""
  h, w = image.shape[:2]
  new_h, new_w = photo_size(image.shape)
  if (new_h, new_w) == (h, w):
    return image, (1.0, 1.0)
  small = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)
  return small, (new_w / float(w), new_h / float(h))


def vis_size(crop_size, image_shape):
  """(height, width) of NAME_vis.png for a crop side and the photo's shape."""
  h, w = photo_size(image_shape)
  return crop_size + h, max(4 * crop_size, w)


# --- OBJ / MTL ----------------------------------------------------------------
def _write_mtl(path, texture_name, displacement_name, scale_mm):
  with open(path, 'w', encoding='utf-8') as f:
    f.write('# Material of the reconstruct command\'s meshes.\n')
    f.write('# Displacement map: %s (16-bit grey, UV layout of the texture;\n'
            '#   mm along model +z = (value / 65535 * 2 - 1) * %.6g,\n'
            '#   displacement scale_mm = %.6g; Blender: midlevel 0.5,\n'
            '#   strength %.6g mm). It is already applied in the _detail.obj '
            'mesh.\n' % (displacement_name, scale_mm, scale_mm, 2 * scale_mm))
    f.write('newmtl face\n')
    f.write('Ka 1.000 1.000 1.000\nKd 1.000 1.000 1.000\nKs 0.000 0.000 0.000\n'
            'Ns 1.0\nillum 1\n')
    f.write('map_Kd %s\n' % texture_name)


# --- Images -------------------------------------------------------------------
def _to_uint8(image):
  return np.clip(np.round(np.asarray(image) * 255.0), 0, 255).astype(np.uint8)


def _write_png(path, rgb_float):
  if not cv2.imwrite(path, cv2.cvtColor(_to_uint8(rgb_float),
                                        cv2.COLOR_RGB2BGR)):
    raise OSError('%s: could not write PNG' % path)


def _draw_points(image, points, colour, radius):
  out = image
  h, w = out.shape[:2]
  for x, y in np.asarray(points):
    c, r = int(np.floor(x)), int(np.floor(y))
    out[max(r - radius, 0):min(r + radius + 1, h),
        max(c - radius, 0):min(c + radius + 1, w)] = colour
  return out


def to_photo(screen, transform, photo_scale=(1.0, 1.0)):
  """Crop-pixel screen vertices [N,3] -> photo pixels (depth scaled too).

  photo_scale: (sx, sy) from the photo to a resized copy (output_photo).
  """
  screen = np.asarray(screen, np.float32)
  sx, sy = photo_scale
  xy = transform.to_original(screen[:, :2]) * np.asarray([sx, sy], np.float32)
  depth = screen[:, 2:] * transform.scale * (sx + sy) / 2.0
  return np.concatenate([xy, depth], 1).astype(np.float32)


_LAYOUTS = {}


def _uv_layout(model, size):
  """Cached per model and size: UV triangle ids [S,S], barycentrics [S,S,3]
  and mirror texel coordinates [S,S,2] (NumPy)."""
  key = (id(model), int(size))
  if key not in _LAYOUTS or _LAYOUTS[key][0] is not model:
    ids, bary = uv_lib.rasterize_uv(model.uv, model.triangles, int(size))
    mirror = uv_lib.uv_mirror_coordinates(model.uv, model.triangles,
                                          model.symmetry, int(size))
    _LAYOUTS[key] = (model, (ids.numpy(), bary.numpy(), np.asarray(mirror)))
  return _LAYOUTS[key][1]


# photo_texture: a texel the photo sees at a grazing angle is a few photo
# pixels stretched over many texels (hair, background and the face's edge
# smeared over the temples, cheeks and jaw of a frontal photo, which a
# turned render of the texture then shows face-on). Its weight from the
# photo is 0 below TEXTURE_GRAZING_COS (view cosine of its triangle, about
# 78 deg from the viewing direction), 1 above TEXTURE_FACING_COS (about 63
# deg), linear between.
TEXTURE_GRAZING_COS = 0.2
TEXTURE_FACING_COS = 0.45
TEXTURE_INPAINT_RADIUS = 5  # texels, cv2.inpaint's neighbourhood


def photo_texture(model, photo, screen_photo, albedo, size):
  """The photo unwrapped into the model UV layout, [size,size,3] in [0,1].

  Each texel comes from the photo as far as the photo sees it face-on
  (weight 0 where hidden or grazing, 1 where facing; TEXTURE_GRAZING_COS,
  TEXTURE_FACING_COS), the rest from its mirror texel as far as the photo
  sees that one (face symmetry), and what neither covers from skin
  inpainted from the covered texels (cv2.inpaint, Telea); from the model
  albedo when the photo covers no texel at all.

  Args:
    model: bfm.MorphableModel (triangles, uv, symmetry).
    photo: [H,W,3] float RGB in [0,1].
    screen_photo: [N,3] float screen vertices in the photo (x, y, z pixels,
      camera.orthographic_project).
    albedo: [N,3] float per-vertex albedo in [0,1].
    size: python int, the texture side in texels.
  """
  screen = tf.constant(np.asarray(screen_photo)[None], tf.float32)
  tex, vis = uv_lib.unwrap_image(tf.constant(photo[None], tf.float32), screen,
                                 model.triangles, model.uv, size)
  ids, bary, mirror = _uv_layout(model, size)
  cosine = uv_lib.triangle_view_cosine(screen, model.triangles)[0].numpy()
  facing = np.clip((cosine[np.maximum(ids, 0)] - TEXTURE_GRAZING_COS) /
                   (TEXTURE_FACING_COS - TEXTURE_GRAZING_COS), 0.0, 1.0)
  weight = vis[0, ..., 0].numpy() * facing * (ids >= 0)
  both = np.concatenate([tex[0].numpy(), weight[..., None]], -1)
  # Bilinear lookup at the mirror texels (texel centres at +0.5).
  mirrored = cv2.remap(both, mirror[..., 0] - 0.5, mirror[..., 1] - 0.5,
                       cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
  own = weight[..., None]
  from_mirror = (1.0 - own) * mirrored[..., 3:]
  covered = own + from_mirror
  colour = own * both[..., :3] + from_mirror * mirrored[..., :3]
  known = covered[..., 0] >= 0.5
  if known.any():
    source = np.where(known[..., None],
                      colour / np.maximum(covered, 1e-6), 0.0)
    fill = cv2.inpaint(np.round(np.clip(source, 0, 1) * 255).astype(np.uint8),
                       (~known).astype(np.uint8), TEXTURE_INPAINT_RADIUS,
                       cv2.INPAINT_TELEA).astype(np.float32) / 255.0
  else:
    corners = np.asarray(model.triangles)[np.maximum(ids, 0)]  # [S,S,3]
    fill = np.einsum('ijk,ijkc->ijc', bary, np.asarray(albedo)[corners])
  out = colour + (1.0 - covered) * fill
  return np.clip(out * (ids >= 0)[..., None], 0.0, 1.0)


def photo_overlay(result, triangles, lighting, photo=None,
                  photo_scale=(1.0, 1.0)):
  """Grey detailed-geometry render blended onto the photo.

  photo, photo_scale: a resized copy and its scale (output_photo); default
  the original photo.
  """
  face = result.prepared
  if photo is None:
    photo = face.image
  h, w = photo.shape[:2]
  screen = to_photo(result.detail_screen, face.transform, photo_scale)
  pose = result.coefficients.pose
  rotation = camera.rotation_matrix(tf.constant(pose[:, :3], tf.float32))
  normals = tf.einsum('bij,bnj->bni', rotation,
                      tf.constant(result.detail_normals[None], tf.float32))
  grey = tf.fill(tf.shape(normals), pipeline_lib.SHADING_ALBEDO)
  colours = shading.sh_shade(grey, normals, lighting)
  out = mesh_renderer.render(tf.constant(screen[None]), triangles, colours,
                             (h, w))
  mask = out.mask[0].numpy() * OVERLAY_ALPHA
  render = np.clip(out.image[0].numpy(), 0.0, 1.0)
  return photo * (1 - mask) + render * mask


def vis_grid(result, overlay):
  """NAME_vis.png contents, [crop + H, max(4 crop, W), 3] float in [0,1]."""
  face = result.prepared
  size = face.crop.shape[0]
  lms = _draw_points(np.array(face.crop), face.crop_landmarks, DETECTED_COLOUR,
                     1)
  lms = _draw_points(lms, result.landmarks2d, FITTED_COLOUR, 1)
  top = np.concatenate(
      [face.crop, lms, result.coarse_shading, result.detail_shading], 1)
  height, width = vis_size(size, face.image.shape)
  grid = np.zeros([height, width, 3], np.float32)
  grid[:size, :4 * size] = top
  grid[size:, :overlay.shape[1]] = overlay
  return grid


# --- Everything for one face --------------------------------------------------
def write_face(out_dir, result, model, detail_mesh, uv_size,
               displacement_scale_mm, mode, texture_size, lighting,
               run_id=None):
  """Writes all files of one FaceResult atomically; returns output_paths(...).

  The caller holds the face's lock (`claim`). Files are written under
  temporary names and renamed over the final ones only when all are
  written, then the marker NAME_complete.json (module docstring); on any
  error the temporary files are removed and the folder is as before.

  Args:
    out_dir: output folder (exists).
    result: reconstruct.pipeline.FaceResult.
    model: bfm.MorphableModel.
    detail_mesh: the DenseUVMesh of the detailed mesh (texels, triangles);
      `detail_triangles` are taken from its `triangles`.
    uv_size: side of the displacement map.
    displacement_scale_mm: mm per unit of the displacement map.
    mode: 'checkpoint' or 'fit' (stored in the npz).
    texture_size: side of NAME_texture.png.
    lighting: [1,27] SH lighting of the overlay shading.
    run_id: identifies the writing run in the marker.
  Raises:
    ValueError: a setting the writers reject (e.g. texture_size < 1).
    OSError: a file cannot be written (full disk, permissions).
  """
  if int(texture_size) < 1:
    raise ValueError('--texture_size must be >= 1, got %d' % texture_size)
  staging = _Staging(out_dir, result.prepared.name, run_id)
  try:
    _write_files(staging.temp, staging.final, result, model, detail_mesh,
                 uv_size, displacement_scale_mm, mode, texture_size, lighting)
    staging.commit(result.prepared.path)
  except BaseException:
    staging.discard()
    raise
  return staging.final


def _write_files(paths, final, result, model, detail_mesh, uv_size,
                 displacement_scale_mm, mode, texture_size, lighting):
  """Writes the files of one face to `paths` (suffix -> temporary path);
  references between files use the `final` names."""
  face = result.prepared
  base = lambda s: os.path.basename(final[s])

  # Meshes and material.
  coarse_normals = mesh_geometry.vertex_normals(
      tf.constant(result.coarse_vertices[None]), model.triangles)[0].numpy()
  mesh_io.write_obj(
      paths['_coarse.obj'], result.coarse_vertices, model.triangles,
      uvs=model.uv, normals=coarse_normals, mtllib=base('.mtl'),
      material='face', precision=5,
      comments=('coarse face of %s (%s mode, model %s)' %
                (face.path, mode, model.name), MESH_UNITS))
  mesh_io.write_obj(
      paths['_detail.obj'], result.detail_vertices, detail_mesh.triangles,
      uvs=detail_mesh.uv, normals=result.detail_normals, mtllib=base('.mtl'),
      material='face', precision=5,
      comments=('detailed face of %s (%s mode, model %s, %dx%d displacement '
                'map)' % (face.path, mode, model.name, uv_size, uv_size),
                MESH_UNITS))
  _write_mtl(paths['.mtl'], base('_texture.png'), base('_displacement.png'),
             displacement_scale_mm)

  # Texture: the photo unwrapped into UV.
  albedo = model.albedo(tf.constant(result.coefficients.texture)
                        ) if model.num_tex else model.albedo(None)
  albedo = np.asarray(albedo)[0]
  photo, photo_scale = output_photo(face.image)
  texture = photo_texture(model, photo,
                          to_photo(result.coarse_screen, face.transform,
                                   photo_scale),
                          albedo, texture_size)
  _write_png(paths['_texture.png'], texture)

  # Displacement: 16-bit PNG and its scale.
  disp = np.asarray(result.displacement_uv_mm, np.float64)
  scale = float(displacement_scale_mm)
  code = np.round((np.clip(disp / scale, -1, 1) * 0.5 + 0.5) * UINT16_MAX)
  if not cv2.imwrite(paths['_displacement.png'], code.astype(np.uint16)):
    raise OSError('%s: could not write PNG' % paths['_displacement.png'])
  with open(paths['_displacement.json'], 'w', encoding='utf-8') as f:
    json.dump({
        'file': base('_displacement.png'),
        'uv_size': int(uv_size),
        'bit_depth': 16,
        'scale_mm': scale,
        'decode': 'mm = (value / 65535 * 2 - 1) * scale_mm',
        'direction': 'model-space +z (towards the viewer), already applied '
                     'in %s' % base('_detail.obj'),
        'region': 'face without eyes, nose and eyebrows (0 mm elsewhere)',
        'blender': {'midlevel': 0.5, 'strength_mm': 2 * scale},
        'min_mm': float(disp.min()),
        'max_mm': float(disp.max()),
        'mode': mode,
    }, f, indent=2)

  # Coefficients.
  c = result.coefficients
  t = face.transform
  np.savez(paths['_coefficients.npz'],
           identity=c.identity[0], expression=c.expression[0],
           texture=c.texture[0], pose=c.pose[0], lighting=c.lighting[0],
           yaw_deg=np.float32(result.yaw_deg),
           large_pose=np.bool_(result.large_pose), mode=np.str_(mode),
           model=np.str_(model.name), image_size=np.int32(face.crop.shape[0]),
           crop_transform=np.asarray([t.left, t.top, t.scale], np.float64),
           source=np.str_(face.path))

  # Landmarks.
  rows = np.concatenate([face.landmarks, result.landmarks3d], 1)
  with open(paths['_landmarks.txt'], 'w', encoding='utf-8') as f:
    f.write('# 68 iBUG landmarks of %s, one per row: x y = detected (%s) '
            'in photo pixels (origin top-left corner, y down); X Y Z = the '
            'same landmarks on NAME_coarse.obj, mm, model space (jaw points '
            '%s).\n' % (face.path, face.source,
                         'on the silhouette' if face.source == 'dlib' else
                         'fixed surface points'))
    np.savetxt(f, rows, fmt='%.3f')

  # Visualisation grid.
  overlay = photo_overlay(result, detail_mesh.triangles, lighting, photo,
                          photo_scale)
  _write_png(paths['_vis.png'], vis_grid(result, overlay))
