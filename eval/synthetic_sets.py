"""Generated data sets of the synthetic full-pose benchmark, cached on disk.

One training set (TFRecords in preprocess/face_records.py's format, so
`python coarse/train.py --data=<dir>/train` reads it) and two test sets,
small pose (|yaw| < 30 deg) and large pose (45 <= |yaw| <= 90 deg), each
image stored with its ground-truth mesh, 2D/3D landmarks, coefficients
(identity, expression, texture, pose, SH lighting) and skin mask. Faces
(SetSpec.faces):
  'textured': photo-like renders of eval/synthetic_photos.py (real skin
    unwrapped from the shared sample photos, a head stand-in, random SH
    lighting, photo-patch backgrounds, perspective camera). The sample
    photos whose skins texture the TEST faces are not used for training
    faces (`photo_material`: every third detected photo is a test skin);
    the background patches come from all sample photos.
  'model': the model's own renders, preprocess/synthetic_data.py (random
    albedo of its texture basis, smooth backgrounds; no download needed).
The sampled yaw is replaced per set.

Layout of one cached setting, <cache_dir>/sets-<key>/:
  settings.json            the SetSpec the folder was generated from, plus
                           'skins': {'train': [photo names], 'test': [...]}
                           for textured faces
  train/train.tfrecord     training crops (image PNG, skin mask, landmarks,
                           ground-truth mesh 'shape' for the supervised
                           vertex loss)
  train_yaw_deg.npy        [N] yaw of each training image, degrees
  test_small.npz, test_large.npz   (arrays below)

Test .npz arrays (N images, V model vertices):
  images [N,S,S,3] uint8; masks [N,S,S] uint8 (skin mask 0/255);
  landmarks [N,68,2] float32 pixels; vertices [N,V,3] float32 mm (ground-
  truth meshes, model space, no pose); landmarks3d [N,68,3] float32 mm;
  identity, expression, texture, pose [N,6], lighting [N,27] float32;
  yaw_deg [N] float32.

The key is a hash of every setting that changes the data, so a different
setting never reuses a stale folder; folders are written to a temporary name
and renamed when complete.
"""

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile

import numpy as np

from preprocess import face_records
from preprocess import synthetic_data

# SetSpec.faces values (module docstring).
FACES = ('textured', 'model')
# Texture side of the unwrapped skins (texels), and their landmark source.
SKIN_TEXTURE_SIZE = 256
SKIN_LANDMARKS = 'facemesh'
# Every TEST_SKIN_EVERY-th detected sample photo (1-based) is a test skin.
TEST_SKIN_EVERY = 3

# Bumped when the generation code changes in a way the settings do not show.
# 2: SFM's jaw landmarks no longer collapse to one vertex per side (issue 17,
# bfm/sfm_reader.py contour candidates). 3: training records carry their
# ground-truth meshes (face_records 'shape').
FORMAT_VERSION = 3
SPLITS = ('small', 'large')
_GENERATE_BATCH = 16


@dataclasses.dataclass(frozen=True)
class SetSpec:
  """Everything that determines the generated sets."""
  model: str
  seed: int
  image_size: int
  train_images: int
  test_images: int
  train_yaw: str
  small_max_yaw: float
  large_yaw: tuple
  faces: str = 'model'

  def key(self):
    text = json.dumps(dict(dataclasses.asdict(self), version=FORMAT_VERSION),
                      sort_keys=True)
    return hashlib.sha1(text.encode('utf-8')).hexdigest()[:12]


def parse_yaw_distribution(text):
  """'celeba' | 'uniform' | 'frontal' | 'LOW:HIGH' -> synthetic_data spec."""
  text = str(text).strip()
  if text in ('celeba', 'uniform', 'frontal'):
    return text
  parts = text.split(':')
  if len(parts) == 2:
    try:
      low, high = float(parts[0]), float(parts[1])
    except ValueError:
      low = high = None
    if low is not None and -90.0 <= low < high <= 90.0:
      return (low, high)
  raise ValueError('--benchmark_train_yaw: expected celeba, uniform, frontal '
                   'or LOW:HIGH degrees with -90 <= LOW < HIGH <= 90, got %r' %
                   (text,))


def symmetric_yaw(low_deg, high_deg):
  """Yaw sampler (rng, n) -> [n] degrees: |yaw| ~ U[low, high), random sign."""
  low_deg, high_deg = float(low_deg), float(high_deg)
  if not 0.0 <= low_deg < high_deg <= 90.0:
    raise ValueError('test-set |yaw| range must satisfy 0 <= low < high <= 90 '
                     'degrees, got [%g, %g]' % (low_deg, high_deg))

  def sample(rng, n):
    magnitude = rng.uniform(low_deg, high_deg, n)
    sign = np.where(rng.uniform(size=n) < 0.5, -1.0, 1.0)
    return sign * magnitude

  return sample


def test_yaw_ranges(spec):
  """{'small': (0, max), 'large': (low, high)} |yaw| ranges in degrees."""
  return {'small': (0.0, float(spec.small_max_yaw)),
          'large': (float(spec.large_yaw[0]), float(spec.large_yaw[1]))}


def _to_uint8(images):
  return np.clip(np.round(np.asarray(images) * 255.0), 0, 255).astype(np.uint8)


@dataclasses.dataclass
class PhotoMaterial:
  """What textured faces are made of (eval/synthetic_photos.py).

  train_skins, test_skins: lists of [T,T,3] float32 skin textures in the
    model's UV layout, from disjoint sample photos.
  train_names, test_names: the file names of those photos.
  background_photos: list of [H,W,3] float32 photos in [0,1].
  """
  train_skins: list
  test_skins: list
  train_names: list
  test_names: list
  background_photos: list


def photo_material(model, log=print):
  """PhotoMaterial of `model` from the shared sample photos.

  Skins: every celeba_sample photo in which SKIN_LANDMARKS finds a face,
  unwrapped into the model's UV (textured_faces.skins_from_photos); the
  TEST_SKIN_EVERY-th, 2*TEST_SKIN_EVERY-th, ... of them texture test faces
  only, the others training faces only. Backgrounds: every sample photo.

  Raises:
    FileNotFoundError: no sample photos (textured_faces.sample_photos).
    ValueError: fewer than 2 photos with a detected face.
  """
  from eval import textured_faces  # pylint: disable=g-import-not-at-top
  from preprocess import image_io  # pylint: disable=g-import-not-at-top
  frontal, every = textured_faces.sample_photos(who='synthetic_sets')
  log('Unwrapping skins of the %r model from %d sample photos' %
      (model.name, len(frontal)))
  skins, used = textured_faces.skins_from_photos(
      model, frontal, SKIN_LANDMARKS, SKIN_TEXTURE_SIZE)
  if len(skins) < 2:
    raise ValueError('synthetic_sets: faces found in %d of the %d sample '
                     'photos; textured faces need 2 (one training and one '
                     'test skin)' % (len(skins), len(frontal)))
  is_test = [(i + 1) % TEST_SKIN_EVERY == 0 for i in range(len(skins))]
  if not any(is_test):
    is_test[-1] = True
  pick = lambda want, items: [x for x, t in zip(items, is_test) if t == want]
  names = [os.path.basename(p) for p in used]
  return PhotoMaterial(
      train_skins=pick(False, skins), test_skins=pick(True, skins),
      train_names=pick(False, names), test_names=pick(True, names),
      background_photos=[image_io.read_image(p) for p in every])


def _batches(model, faces, seed, count, image_size, yaw, skins, material):
  """SyntheticBatch iterator of `faces` ('textured' uses `skins` and the
  backgrounds of `material`)."""
  if faces == 'model':
    return synthetic_data.generate(model, seed, count, image_size, yaw,
                                   _GENERATE_BATCH)
  if faces == 'textured':
    from eval import synthetic_photos  # pylint: disable=g-import-not-at-top
    return synthetic_photos.generate(model, seed, count, image_size, yaw,
                                     skins, material.background_photos,
                                     _GENERATE_BATCH)
  raise ValueError('faces must be one of %s, got %r' % (FACES, faces))


def _write_train(model, spec, folder, material=None):
  """Writes train/train.tfrecord and train_yaw_deg.npy; returns the yaws."""
  import tensorflow as tf  # only needed while writing
  os.makedirs(os.path.join(folder, 'train'))
  yaws = []
  path = os.path.join(folder, 'train', 'train.tfrecord')
  with tf.io.TFRecordWriter(path) as writer:
    index = 0
    for batch in _batches(
        model, spec.faces, spec.seed, spec.train_images, spec.image_size,
        parse_yaw_distribution(spec.train_yaw),
        material.train_skins if material else None, material):
      images = _to_uint8(batch.images)
      masks = _to_uint8(batch.skin_masks[..., 0])
      for i in range(images.shape[0]):
        writer.write(face_records.serialize(
            images[i], batch.landmarks[i], masks[i], 'synthetic_%06d' % index,
            landmark_source=synthetic_data.LANDMARK_SOURCE,
            shape=batch.vertices[i]))
        index += 1
      yaws.append(batch.yaw_deg)
  yaws = np.concatenate(yaws).astype(np.float32)
  np.save(os.path.join(folder, 'train_yaw_deg.npy'), yaws)
  return yaws


def generate_test_set(model, seed, count, image_size, low_deg, high_deg,
                      material=None):
  """dict of test arrays (module docstring) for |yaw| in [low, high):
  model renders, or textured faces with material.test_skins when a
  PhotoMaterial is given."""
  parts = list(_batches(model, 'textured' if material else 'model', seed,
                        count, image_size, symmetric_yaw(low_deg, high_deg),
                        material.test_skins if material else None, material))
  cat = lambda f: np.concatenate([f(p) for p in parts])
  vertices = cat(lambda p: p.vertices).astype(np.float32)
  out = {
      'images': _to_uint8(cat(lambda p: p.images)),
      'masks': _to_uint8(cat(lambda p: p.skin_masks[..., 0])),
      'landmarks': cat(lambda p: p.landmarks).astype(np.float32),
      'vertices': vertices,
      'landmarks3d': np.asarray(model.landmarks(vertices), np.float32),
      'yaw_deg': cat(lambda p: p.yaw_deg).astype(np.float32),
  }
  for field in ('identity', 'expression', 'texture', 'pose', 'lighting'):
    out[field] = cat(lambda p, f=field: getattr(p.coefficients, f)).astype(
        np.float32)
  return out


def set_folder(cache_dir, spec):
  return os.path.join(cache_dir, 'sets-' + spec.key())


def ensure_sets(model, spec, cache_dir, log=print):
  """Generates the sets for `spec` unless cached; returns their folder."""
  folder = set_folder(cache_dir, spec)
  if os.path.exists(os.path.join(folder, 'settings.json')):
    log('Reusing cached sets %s' % folder)
    return folder
  os.makedirs(cache_dir, exist_ok=True)
  if spec.faces not in FACES:
    raise ValueError('--benchmark_faces must be one of %s, got %r' %
                     (FACES, spec.faces))
  material = photo_material(model, log) if spec.faces == 'textured' else None
  tmp = tempfile.mkdtemp(prefix='.partial-', dir=cache_dir)
  try:
    log('Generating %d training images (%d px, yaw %s, %s faces) into %s' %
        (spec.train_images, spec.image_size, spec.train_yaw, spec.faces,
         folder))
    _write_train(model, spec, tmp, material)
    for offset, split in enumerate(SPLITS, start=1):
      low, high = test_yaw_ranges(spec)[split]
      log('Generating the %s-pose test set: %d images, |yaw| in [%g, %g) deg' %
          (split, spec.test_images, low, high))
      arrays = generate_test_set(model, spec.seed + offset, spec.test_images,
                                 spec.image_size, low, high, material)
      np.savez(os.path.join(tmp, 'test_%s.npz' % split), **arrays)
    record = dict(dataclasses.asdict(spec), version=FORMAT_VERSION)
    if material:
      record['skins'] = {'train': material.train_names,
                         'test': material.test_names}
    with open(os.path.join(tmp, 'settings.json'), 'w') as f:
      json.dump(record, f, indent=1)
    if os.path.exists(folder):  # an incomplete older attempt
      shutil.rmtree(folder)
    os.rename(tmp, folder)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  return folder


def train_data(folder):
  """The --data argument of coarse/train.py for a set folder."""
  return os.path.join(folder, 'train')


def load_settings(folder):
  """The settings.json record of a set folder (SetSpec fields, version,
  'skins' for textured faces)."""
  with open(os.path.join(folder, 'settings.json')) as f:
    return json.load(f)


def load_train_yaw(folder):
  path = os.path.join(folder, 'train_yaw_deg.npy')
  if not os.path.exists(path):
    raise FileNotFoundError('%s: missing; delete %s to regenerate the sets' %
                            (path, folder))
  return np.load(path)


def load_test_set(folder, split):
  """dict of the test arrays of `split` ('small' or 'large')."""
  if split not in SPLITS:
    raise ValueError('split must be one of %s, got %r' % (SPLITS, split))
  path = os.path.join(folder, 'test_%s.npz' % split)
  if not os.path.exists(path):
    raise FileNotFoundError('%s: missing; delete %s to regenerate the sets' %
                            (path, folder))
  with np.load(path) as data:
    return {k: data[k] for k in data.files}


def yaw_histogram(yaw_deg, edges=(0, 15, 30, 45, 60, 75, 90.0001)):
  """[(low, high, count, fraction)] of |yaw| in the bins given by edges."""
  magnitude = np.abs(np.asarray(yaw_deg, np.float64))
  counts, _ = np.histogram(magnitude, bins=np.asarray(edges, np.float64))
  total = max(int(magnitude.size), 1)
  return [(float(edges[i]), float(min(edges[i + 1], 90.0)), int(c),
           float(c) / total) for i, c in enumerate(counts)]


def format_histogram(yaw_deg):
  """One printable line per |yaw| bin."""
  lines = []
  for low, high, count, fraction in yaw_histogram(yaw_deg):
    lines.append('  |yaw| %2.0f-%2.0f deg: %5d (%5.1f%%) %s' %
                 (low, high, count, 100 * fraction, '#' * int(round(
                     50 * fraction))))
  return '\n'.join(lines)
