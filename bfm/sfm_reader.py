"""Reads the Surrey Face Model (SFM) from eos's files, without eos.

Files (eos repository, share/; https://github.com/patrikhuber/eos):
  sfm_shape_3448.bin               shape model (cereal binary archive)
  expression_blendshapes_3448.bin  6 expression blendshapes (cereal binary)
  ibug_to_sfm.txt                  iBUG-68 -> SFM vertex mapping (TOML)
  sfm_model_contours.json          right/left jaw-contour vertex lists
  sfm_reference_symmetry.txt       mirror vertex of each of the 845
                                   reference vertices (1-based)

The cereal layout read here (little endian), as written by eos's
MorphableModel/PcaModel/Blendshape serialisation:
  model file: uint32 class version; shape PcaModel; colour PcaModel;
    vector<array<double, 2>> texture coordinates.
  PcaModel: mean, orthonormal basis, eigenvalues as Eigen matrices, then
    vector<array<int32, 3>> triangles.
  Eigen matrix: int32 rows, int32 cols, rows*cols float32 (column-major).
  vector: uint64 count, then the elements; std::string: uint64 length, bytes.
  blendshape file: vector<Blendshape>, Blendshape = (string name, Eigen
    column vector deformation).
Every read is bounds-checked so a truncated or foreign file raises
ModelFormatError naming the file and the field.

SFM conventions converted to the project's: vertices are in millimetres
with x towards the subject's left, y up, z forward (checked on the data);
eos's texture v grows downwards (image rows), so v = 1 - v_eos. Identity
basis = orthonormal basis * sqrt(eigenvalue) (coefficients ~ N(0, 1));
expression basis = the 6 blendshapes (weight 1 = full expression). There is
no colour model: constant mean albedo, empty texture basis. eos's contour
lists place the fixed jaw landmarks 0-7 and 9-16; the sliding candidates of
each jaw landmark are the derived horizontal band at its height, as for every
model (bfm/face_regions.py contour_candidates).
"""

import json
import os
import re
import struct

import numpy as np

from bfm import model_builder
from bfm import morphable_model
from bfm import symmetry as symmetry_lib

SHAPE_FILE = 'sfm_shape_3448.bin'
BLENDSHAPES_FILE = 'expression_blendshapes_3448.bin'
LANDMARKS_FILE = 'ibug_to_sfm.txt'
CONTOURS_FILE = 'sfm_model_contours.json'
SYMMETRY_FILE = 'sfm_reference_symmetry.txt'
FILES = (SHAPE_FILE, BLENDSHAPES_FILE, LANDMARKS_FILE, CONTOURS_FILE,
         SYMMETRY_FILE)
DOWNLOAD = ('https://github.com/patrikhuber/eos/tree/master/share (files %s)'
            % ', '.join(FILES))


class _Reader:
  """Bounds-checked little-endian reader over a file's bytes."""

  def __init__(self, path):
    self.path = path
    with open(path, 'rb') as f:
      self.data = f.read()
    self.pos = 0

  def take(self, count, what):
    if count < 0 or self.pos + count > len(self.data):
      raise morphable_model.ModelFormatError(
          '%s: truncated or not an eos cereal file: %r needs %d bytes at '
          'offset %d, file has %d' %
          (self.path, what, count, self.pos, len(self.data)))
    out = self.data[self.pos:self.pos + count]
    self.pos += count
    return out

  def scalar(self, fmt, what):
    return struct.unpack('<' + fmt, self.take(struct.calcsize(fmt), what))[0]

  def matrix(self, what, max_elements=10**8):
    rows = self.scalar('i', what + '.rows')
    cols = self.scalar('i', what + '.cols')
    if rows < 0 or cols < 0 or rows * cols > max_elements:
      raise morphable_model.ModelFormatError(
          '%s: %r has implausible size %d x %d (not an eos cereal file?)' %
          (self.path, what, rows, cols))
    data = np.frombuffer(self.take(4 * rows * cols, what), '<f4')
    return data.reshape(cols, rows).T.copy()  # column-major

  def count(self, what, max_count=10**8):
    n = self.scalar('Q', what + '.size')
    if n > max_count:
      raise morphable_model.ModelFormatError(
          '%s: %r has implausible length %d (not an eos cereal file?)' %
          (self.path, what, n))
    return n

  def string(self, what):
    n = self.count(what, 10**6)
    return self.take(n, what).decode('utf-8', 'replace')

  def pca_model(self, what):
    mean = self.matrix(what + '.mean')
    basis = self.matrix(what + '.orthonormal_basis')
    eigenvalues = self.matrix(what + '.eigenvalues')
    n = self.count(what + '.triangles')
    tris = np.frombuffer(self.take(12 * n, what + '.triangles'), '<i4')
    return mean[:, 0] if mean.size else mean.reshape(0), basis, (
        eigenvalues[:, 0] if eigenvalues.size else eigenvalues.reshape(0)), (
            tris.reshape(n, 3).copy())

  def finish(self):
    if self.pos != len(self.data):
      raise morphable_model.ModelFormatError(
          '%s: %d unexpected trailing bytes after the last field' %
          (self.path, len(self.data) - self.pos))


def read_shape_model(path):
  """SFM shape model -> dict(mean [N,3], basis [3N,K] orthonormal,
  eigenvalues [K], triangles [T,3] int32, uv [N,2] eos convention)."""
  r = _Reader(path)
  r.scalar('I', 'version')
  mean, basis, eigenvalues, triangles = r.pca_model('shape_model')
  r.pca_model('color_model')
  n_uv = r.count('texture_coordinates')
  uv = np.frombuffer(r.take(16 * n_uv, 'texture_coordinates'),
                     '<f8').reshape(n_uv, 2)
  r.finish()
  if mean.size % 3 or mean.size == 0:
    raise morphable_model.ModelFormatError(
        '%s: shape_model.mean has %d values, not a positive multiple of 3' %
        (path, mean.size))
  n = mean.size // 3
  if basis.shape[0] != 3 * n or basis.shape[1] != eigenvalues.size:
    raise morphable_model.ModelFormatError(
        '%s: shape_model.orthonormal_basis is %s, expected [%d, %d]' %
        (path, basis.shape, 3 * n, eigenvalues.size))
  if n_uv not in (0, n):
    raise morphable_model.ModelFormatError(
        '%s: texture_coordinates has %d entries for %d vertices' %
        (path, n_uv, n))
  if triangles.size and (triangles.min() < 0 or triangles.max() >= n):
    raise morphable_model.ModelFormatError(
        '%s: shape_model.triangles index outside [0, %d)' % (path, n))
  for key, value in (('mean', mean), ('orthonormal_basis', basis),
                     ('eigenvalues', eigenvalues), ('uv', uv)):
    if not np.all(np.isfinite(value)):
      raise morphable_model.ModelFormatError(
          '%s: shape_model.%s contains NaN/Inf values' % (path, key))
  if np.any(eigenvalues < 0):
    raise morphable_model.ModelFormatError(
        '%s: shape_model.eigenvalues has negative values' % path)
  return dict(mean=mean.reshape(n, 3), basis=basis, eigenvalues=eigenvalues,
              triangles=triangles.astype(np.int32), uv=uv)


def read_blendshapes(path):
  """eos blendshapes -> (names list, deltas [K, N, 3])."""
  r = _Reader(path)
  k = r.count('blendshapes', 10**4)
  names, deltas = [], []
  for i in range(k):
    names.append(r.string('blendshapes[%d].name' % i))
    d = r.matrix('blendshapes[%d].deformation' % i)
    if d.shape[1] != 1 or d.shape[0] % 3:
      raise morphable_model.ModelFormatError(
          '%s: blendshapes[%d].deformation is %s, expected [3N, 1]' %
          (path, i, d.shape))
    deltas.append(d[:, 0].reshape(-1, 3))
  r.finish()
  if len({d.shape for d in deltas}) > 1:
    raise morphable_model.ModelFormatError(
        '%s: blendshapes have different vertex counts' % path)
  deltas = np.stack(deltas) if deltas else np.zeros([0, 0, 3], np.float32)
  if not np.all(np.isfinite(deltas)):
    raise morphable_model.ModelFormatError(
        '%s: blendshape deformations contain NaN/Inf values' % path)
  return names, deltas


def read_landmark_mapping(path):
  """ibug_to_sfm.txt -> {ibug 1-based: sfm vertex 0-based}, contour lists."""
  mapping, section = {}, None
  with open(path) as f:
    for line in f:
      line = line.split('#', 1)[0].strip()
      if not line:
        continue
      if line.startswith('['):
        section = line.strip('[]')
        continue
      m = re.match(r'^(\d+)\s*=\s*(\d+)$', line)
      if section == 'landmark_mappings' and m:
        mapping[int(m.group(1))] = int(m.group(2))
  if not mapping:
    raise morphable_model.ModelFormatError(
        '%s: no [landmark_mappings] entries "ibug = vertex" found' % path)
  return mapping


def read_contours(path):
  """sfm_model_contours.json -> (right vertices, left vertices) 0-based."""
  try:
    with open(path) as f:
      data = json.load(f)
    contour = data['model_contour']
    return (np.asarray(contour['right_contour'], np.int32),
            np.asarray(contour['left_contour'], np.int32))
  except (ValueError, KeyError, TypeError) as e:
    raise morphable_model.ModelFormatError(
        '%s: expected {"model_contour": {"right_contour": [...], '
        '"left_contour": [...]}} (%s: %s)' % (path, type(e).__name__, e))


def read_symmetry_list(path):
  """sfm_reference_symmetry.txt -> [M] int 0-based mirror indices."""
  values = []
  with open(path) as f:
    for number, line in enumerate(f, 1):
      token = line.split('#', 1)[0].strip()
      if not token:
        continue
      try:
        values.append(int(token) - 1)
      except ValueError:
        raise morphable_model.ModelFormatError(
            '%s: line %d is not a vertex index: %r' % (path, number, line))
  return np.asarray(values, np.int32)


def _contour_landmarks(mean, right, left, chin):
  """Default vertices for landmarks 0..7 and 9..16 along the contour lists.

  eos picks the contour vertex per landmark at fitting time; for the fixed
  default landmarks68 we place landmarks 0..8 at equal arc-length steps of
  the frontal (x, y) polyline running from the contour's top to the chin.
  """
  out = {}
  for ks, contour in ((range(0, 8), right), (range(16, 8, -1), left)):
    pts = mean[contour][:, :2]
    if pts[0, 1] < pts[-1, 1]:  # make it run top -> bottom
      contour, pts = contour[::-1], pts[::-1]
    line = np.concatenate([pts, mean[[chin]][:, :2]])
    arc = np.concatenate([[0], np.cumsum(np.linalg.norm(np.diff(line, axis=0),
                                                       axis=1))])
    for step, k in enumerate(ks):
      target = arc[-1] * step / 8.0
      out[k] = int(contour[np.argmin(np.abs(arc[:-1] - target))])
  return out


def read_sfm(folder):
  """Reads the SFM files in `folder` into a MorphableModel (see module doc).

  Raises:
    FileNotFoundError: a file is missing (says where to download it).
    ModelFormatError: a file is malformed.
  """
  missing = [f for f in FILES if not os.path.isfile(os.path.join(folder, f))]
  if missing:
    raise FileNotFoundError(
        'Surrey Face Model files missing in %s: %s. Download them from %s '
        'into that folder (or point FULLPOSE_DATA_DIR / --data_dir at the '
        'folder holding sfm/), then bfm.load(\'sfm\') reads them directly; '
        '`python -m bfm.convert sfm --sfm_dir DIR --out sfm.npz` writes a '
        'converted copy.' % (folder, ', '.join(missing), DOWNLOAD))
  join = lambda f: os.path.join(folder, f)
  shape = read_shape_model(join(SHAPE_FILE))
  n = shape['mean'].shape[0]
  names, blend = read_blendshapes(join(BLENDSHAPES_FILE))
  if blend.shape[1] != n:
    raise morphable_model.ModelFormatError(
        '%s: blendshapes have %d vertices, the shape model %d' %
        (join(BLENDSHAPES_FILE), blend.shape[1], n))
  mapping = read_landmark_mapping(join(LANDMARKS_FILE))
  right, left = read_contours(join(CONTOURS_FILE))
  for key, arr in (('right_contour', right), ('left_contour', left)):
    if arr.size == 0 or arr.min() < 0 or arr.max() >= n:
      raise morphable_model.ModelFormatError(
          '%s: %r must be vertex indices in [0, %d)' %
          (join(CONTOURS_FILE), key, n))
  mean = shape['mean'].astype(np.float64)
  chin = mapping.get(9)
  if chin is None:
    raise morphable_model.ModelFormatError(
        '%s: no mapping for ibug landmark 9 (chin)' % join(LANDMARKS_FILE))
  # Landmarks not in the mapping (contour 1-8/10-17; inner mouth corners
  # 61 and 65, which the mapping leaves undefined) get defaults.
  contour = _contour_landmarks(mean, right, left, chin)
  landmarks = np.zeros(68, np.int32)
  for k in range(68):
    if k + 1 in mapping:
      landmarks[k] = mapping[k + 1]
    elif k in contour:
      landmarks[k] = contour[k]
  # Inner mouth corners (ibug 61, 65): the outer mouth corners 49, 55.
  landmarks[60] = mapping[49]
  landmarks[64] = mapping[55]
  if landmarks.max() >= n:
    raise morphable_model.ModelFormatError(
        '%s: landmark vertex index %d >= %d vertices' %
        (join(LANDMARKS_FILE), landmarks.max(), n))
  sym = _symmetry(mean, read_symmetry_list(join(SYMMETRY_FILE)),
                  join(SYMMETRY_FILE))
  uv = shape['uv'].astype(np.float64)
  uv = np.stack([uv[:, 0], 1.0 - uv[:, 1]], 1) if len(uv) else None
  id_basis = (shape['basis'] * np.sqrt(shape['eigenvalues'])[None]).T
  return model_builder.build_model(
      name='sfm',
      mean_shape=mean,
      triangles=shape['triangles'],
      landmarks68=landmarks,
      id_basis=id_basis.reshape(-1, n, 3).astype(np.float32),
      exp_basis=blend.astype(np.float32),
      uv=uv,
      symmetry=sym,
      # Derived bands (bfm/face_regions.py contour_candidates), one per jaw
      # landmark at its height. Not eos's contour lists: landmark marching
      # takes the extreme screen x among a landmark's candidates, so giving
      # every landmark of a side the whole list put landmarks 0-7 (9-16) on
      # one vertex (issue 17).
      contour_candidates=None,
      exp_names=names,
      source='Surrey Face Model 3448 (eos share/, %s)' % folder)


def _symmetry(mean, reference, path):
  """SFM symmetry: the reference list for its vertices, nearest mirrored
  neighbour (bfm.symmetry) for the higher-resolution vertices beyond it."""
  n = len(mean)
  m = len(reference)
  if m > n or (m and (reference.min() < 0 or reference.max() >= m)):
    raise morphable_model.ModelFormatError(
        '%s: %d entries with indices outside [0, %d)' % (path, m, m))
  if not np.array_equal(reference[reference], np.arange(m)):
    raise morphable_model.ModelFormatError(
        '%s: the symmetry list is not an involution' % path)
  sym = np.arange(n, dtype=np.int32)
  sym[:m] = reference
  if m < n:
    rest, _, _ = symmetry_lib.mirror_map(mean[m:] - [
        0.5 * (mean[:, 0].min() + mean[:, 0].max()), 0, 0])
    sym[m:] = rest + m
  return sym
