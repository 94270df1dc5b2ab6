"""Reads the Basel Face Model 2009 (.mat) in two layouts.

1. BFM 2009 as distributed after registration (01_MorphableModel.mat,
   https://faces.dmi.unibas.ch/bfm/): shapeMU [3N,1], shapePC [3N,K],
   shapeEV [K,1] (standard deviations), texMU [3N,1] (0..255), texPC [3N,K],
   texEV [K,1], tl [T,3] (1-based triangles). Coordinates are micrometres.
   BFM 2009 has no expression model; pass one as a second .mat with exPC
   [3M,K_exp], exEV [K_exp,1] (standard deviations), optional exMU [3M,1]
   (added to the mean) and, when M < N (e.g. the 3DDFA/Guo expression basis
   on a BFM subset), vertex_indices [M] (1-based BFM vertices it covers; the
   model is cut to them).

2. Chen20's BFM2009_Model.mat (cyj907/unsupervised-detail-layer,
   tools/basis_utils.py load_3dmm_basis and tools/get_uv_ind.py):
   mu_shape, mu_exp, mu_tex [3N,1]; bases_shape, bases_exp, bases_tex
   [3N,K]; sigma_shape, sigma_exp, sigma_tex [1,K]; tri [T,3] 0-based;
   mask_face, mask_wo_eye [1,N] (optionally mask_wo_nose, mask_wo_eyebrow,
   which Chen20 loads from separate .npy files). The mean shape is
   mu_shape + mu_exp; bases are multiplied by their sigmas; shape and texture
   are cut to the first 80 components, as Chen20 does.

Neither layout carries the iBUG-68 landmark vertices (Chen20 hard-codes its
own 86 points): pass them as a file of 68 vertex indices (text, one per line
or whitespace separated, or .npy), or a 'keypoints' key with 68 1-based
entries in the .mat. Units are detected from the face width (BFM 2009 is in
micrometres) unless given. UVs are the cylindrical projection Chen20 uses;
missing masks, contour candidates and symmetry are derived
(bfm.model_builder).
"""

import os

import numpy as np
from scipy import io as sio

from bfm import model_builder
from bfm import morphable_model

BFM2009_KEYS = ('shapeMU', 'shapePC', 'shapeEV', 'texMU', 'texPC', 'texEV',
                'tl')
CHEN20_KEYS = ('mu_shape', 'mu_exp', 'mu_tex', 'bases_shape', 'bases_exp',
               'bases_tex', 'sigma_shape', 'sigma_exp', 'sigma_tex', 'tri',
               'mask_face', 'mask_wo_eye')
CHEN20_NUM_COMPONENTS = 80
UNITS_PER_MM = {'um': 1000.0, 'mm': 1.0, 'cm': 0.1, 'dm': 0.01, 'm': 0.001}
TYPICAL_FACE_WIDTH_MM = 150.0
DOWNLOAD_BFM = ('register and download the Basel Face Model 2009 from '
                'https://faces.dmi.unibas.ch/bfm/ (01_MorphableModel.mat)')


def _fail(path, message):
  raise morphable_model.ModelFormatError('%s: %s' % (path, message))


def _load_mat(path, what):
  if not os.path.isfile(path):
    raise FileNotFoundError('%s file %s not found; %s' %
                            (what, path, DOWNLOAD_BFM))
  try:
    return sio.loadmat(path)
  except NotImplementedError as e:  # MATLAB v7.3 (HDF5)
    _fail(path, 'MATLAB v7.3 (HDF5) .mat files are not supported; re-save '
          'with save(..., \'-v7\') (%s)' % e)
  except Exception as e:  # truncated / not a .mat
    _fail(path, 'not a readable .mat file (%s: %s)' % (type(e).__name__, e))


def _get(mat, path, key, rank=2, rows=None, cols=None):
  """A finite float64 array from the .mat with a checked shape."""
  if key not in mat:
    _fail(path, 'missing key %r (has %s)' %
          (key, sorted(k for k in mat if not k.startswith('__'))))
  a = np.asarray(mat[key])
  if a.dtype.kind not in 'fiub':
    _fail(path, 'key %r has dtype %s, expected numbers' % (key, a.dtype))
  a = a.astype(np.float64)
  if a.ndim != rank or (rows is not None and a.shape[0] != rows) or (
      cols is not None and a.shape[1] != cols):
    _fail(path, 'key %r has shape %s, expected [%s, %s]' %
          (key, a.shape, '?' if rows is None else rows,
           '?' if cols is None else cols))
  if not np.all(np.isfinite(a)):
    _fail(path, 'key %r contains %d NaN/Inf values' %
          (key, int(np.sum(~np.isfinite(a)))))
  return a


def _column(mat, path, key, length=None):
  a = _get(mat, path, key)
  if 1 not in a.shape:
    _fail(path, 'key %r has shape %s, expected a vector' % (key, a.shape))
  a = a.reshape(-1)
  if length is not None and a.size != length:
    _fail(path, 'key %r has %d entries, expected %d' % (key, a.size, length))
  return a


def detect_units(mean_shape, units='auto'):
  """Model units per millimetre: given ('um', 'mm', ...) or from face width."""
  if units != 'auto':
    if units not in UNITS_PER_MM:
      raise ValueError('units must be auto or one of %s, got %r' %
                       (sorted(UNITS_PER_MM), units))
    return UNITS_PER_MM[units], units
  width = np.ptp(mean_shape[:, 0])
  name = min(UNITS_PER_MM, key=lambda u: abs(
      np.log(width / UNITS_PER_MM[u] / TYPICAL_FACE_WIDTH_MM)))
  return UNITS_PER_MM[name], name


def read_landmarks(path, one_based=False):
  """68 vertex indices from a text or .npy file (0-based unless one_based)."""
  if not os.path.isfile(path):
    raise FileNotFoundError('landmark file %s not found' % path)
  try:
    if path.endswith('.npy'):
      values = np.load(path, allow_pickle=False)
    else:
      values = np.loadtxt(path, comments='#')
  except Exception as e:
    _fail(path, 'cannot read 68 vertex indices (%s: %s)' %
          (type(e).__name__, e))
  values = np.asarray(values).reshape(-1)
  if values.size != 68 or np.any(values != np.round(values)):
    _fail(path, 'expected 68 integer vertex indices, got %d values' %
          values.size)
  return values.astype(np.int64) - (1 if one_based else 0)


def _flat_basis(columns, sigmas, n, scale):
  """[3N, K] basis times sigma [K] -> [K, N, 3] float32, in mm."""
  return (columns * sigmas[None] / scale).T.reshape(-1, n, 3).astype(
      np.float32)


def _albedo(mu_tex, tex_columns, tex_sigma, n):
  mean = np.clip(mu_tex.reshape(n, 3) / 255.0, 0.0, 1.0)
  basis = (tex_columns * tex_sigma[None] / 255.0).T.reshape(-1, n, 3)
  return mean.astype(np.float32), basis.astype(np.float32)


def _landmarks(mat, path, landmarks, n):
  if landmarks is not None:
    lm = np.asarray(landmarks).reshape(-1)
  elif 'keypoints' in mat and np.asarray(mat['keypoints']).size == 68:
    lm = np.asarray(mat['keypoints']).reshape(-1).astype(np.int64) - 1
  else:
    _fail(path, 'no iBUG-68 landmark vertices: the file has no 68-entry '
          '\'keypoints\' key; pass --landmarks FILE (68 vertex indices)')
  if lm.min() < 0 or lm.max() >= n:
    _fail(path, 'landmark vertex indices outside [0, %d)' % n)
  return lm


def _check_axes(mean_shape, landmarks, path):
  lm = mean_shape[landmarks]
  if not lm[36, 0] < lm[45, 0]:
    _fail(path, 'landmark 36 (right eye outer corner) is not at smaller x '
          'than 45: the landmark order or the model axes differ from the '
          'convention (x towards the subject\'s left)')
  if not lm[27, 1] > lm[8, 1]:
    _fail(path, 'landmark 27 (nose bridge) is not above 8 (chin): y must '
          'point up')


def _per_vertex(mat, path, key):
  """The flat [3N] per-vertex column `key` and N; fails unless 3 divides it."""
  column = _column(mat, path, key)
  if column.size % 3:
    _fail(path, 'key %r has %d entries, not a multiple of 3' %
          (key, column.size))
  return column, column.size // 3


def read_bfm2009(path, landmarks=None, expression_path=None, num_id=80,
                 num_tex=80, units='auto'):
  """01_MorphableModel.mat (+ optional expression .mat) -> MorphableModel.

  Args:
    path: 01_MorphableModel.mat.
    landmarks: [68] 0-based vertex indices (full BFM numbering) or None
      (then the .mat must have a 68-entry 1-based 'keypoints' key).
    expression_path: optional expression .mat (see module docstring).
    num_id, num_tex: components kept (Chen20: 80).
    units: 'auto' or one of UNITS_PER_MM (BFM 2009: 'um').
  """
  mat = _load_mat(path, 'BFM 2009 model')
  mu, n = _per_vertex(mat, path, 'shapeMU')
  pc = _get(mat, path, 'shapePC', rows=3 * n)
  ev = _column(mat, path, 'shapeEV', pc.shape[1])
  tmu = _column(mat, path, 'texMU', 3 * n)
  tpc = _get(mat, path, 'texPC', rows=3 * n)
  tev = _column(mat, path, 'texEV', tpc.shape[1])
  tl = _get(mat, path, 'tl', cols=3)
  if tl.size == 0 or tl.min() != 1 or tl.max() > n:
    _fail(path, 'key \'tl\' must hold 1-based vertex indices in [1, %d], got '
          '[%d, %d]' % (n, tl.min(), tl.max()))
  triangles = tl.astype(np.int64) - 1
  lm = _landmarks(mat, path, landmarks, n)
  mean = mu.reshape(n, 3)
  exp_basis = np.zeros([0, n, 3], np.float32)
  keep = np.arange(n)
  scale, unit_name = detect_units(mean, units)
  if expression_path is not None:
    emat = _load_mat(expression_path, 'expression basis')
    epc = _get(emat, expression_path, 'exPC')
    eev = _column(emat, expression_path, 'exEV', epc.shape[1])
    if epc.shape[0] % 3:
      _fail(expression_path, 'key \'exPC\' has %d rows, not a multiple of 3'
            % epc.shape[0])
    m = epc.shape[0] // 3
    if m != n:
      if 'vertex_indices' not in emat:
        _fail(expression_path, 'key \'exPC\' covers %d vertices, the model %d;'
              ' add a \'vertex_indices\' key (1-based) listing them' % (m, n))
      keep = _column(emat, expression_path, 'vertex_indices', m).astype(
          np.int64) - 1
      if keep.min() < 0 or keep.max() >= n or len(np.unique(keep)) != m:
        _fail(expression_path, 'key \'vertex_indices\' must be %d distinct '
              '1-based indices in [1, %d]' % (m, n))
    if 'exMU' in emat:
      mean = mean.copy()
      mean[keep] += _column(emat, expression_path, 'exMU', 3 * m).reshape(m, 3)
    exp_basis = _flat_basis(epc, eev, m, scale)
  id_basis = _flat_basis(pc[:, :num_id], ev[:num_id], n, scale)
  mean_albedo, tex_basis = _albedo(tmu, tpc[:, :num_tex], tev[:num_tex], n)
  if len(keep) != n:
    mean, id_basis = mean[keep], id_basis[:, keep]
    mean_albedo, tex_basis = mean_albedo[keep], tex_basis[:, keep]
    remap = np.full(n, -1)
    remap[keep] = np.arange(len(keep))
    triangles = remap[triangles]
    triangles = triangles[np.all(triangles >= 0, axis=1)]
    if np.any(remap[lm] < 0):
      _fail(expression_path, 'the expression basis does not cover landmark '
            'vertices %s' % lm[remap[lm] < 0].tolist())
    lm = remap[lm]
  mean_mm = mean / scale
  _check_axes(mean_mm, lm, path)
  source = 'BFM 2009 (%s%s; units %s)' % (
      path, ', expressions ' + expression_path if expression_path else '',
      unit_name)
  return model_builder.build_model('bfm2009', mean_mm, triangles, lm, id_basis,
                                   exp_basis, mean_albedo, tex_basis,
                                   source=source)


def read_chen20(path, landmarks=None, num_id=CHEN20_NUM_COMPONENTS,
                num_tex=CHEN20_NUM_COMPONENTS, units='auto'):
  """Chen20's BFM2009_Model.mat -> MorphableModel (see module docstring)."""
  mat = _load_mat(path, 'Chen20 BFM2009_Model')
  mu_shape, n = _per_vertex(mat, path, 'mu_shape')
  mu_exp = _column(mat, path, 'mu_exp', 3 * n)
  mu_tex = _column(mat, path, 'mu_tex', 3 * n)
  bases = {}
  for part in ('shape', 'exp', 'tex'):
    b = _get(mat, path, 'bases_' + part, rows=3 * n)
    s = _column(mat, path, 'sigma_' + part, b.shape[1])
    bases[part] = (b, s)
  tri = _get(mat, path, 'tri', cols=3)
  if tri.size == 0 or tri.min() < 0 or tri.max() >= n:
    _fail(path, 'key \'tri\' must hold 0-based vertex indices in [0, %d), '
          'got [%d, %d]' % (n, tri.min(), tri.max()))
  masks = {}
  for key, ours in (('mask_face', 'face'), ('mask_wo_eye', 'wo_eyes'),
                    ('mask_wo_nose', 'wo_nose'),
                    ('mask_wo_eyebrow', 'wo_eyebrows')):
    if key in mat or key in CHEN20_KEYS:
      masks[ours] = _column(mat, path, key, n) > 0.5
  if all(k in masks for k in ('face', 'wo_eyes', 'wo_nose', 'wo_eyebrows')):
    masks['detail'] = (masks['face'] & masks['wo_eyes'] & masks['wo_nose'] &
                       masks['wo_eyebrows'])
  lm = _landmarks(mat, path, landmarks, n)
  mean = (mu_shape + mu_exp).reshape(n, 3)
  scale, unit_name = detect_units(mean, units)
  mean_mm = mean / scale
  _check_axes(mean_mm, lm, path)
  b, s = bases['shape']
  id_basis = _flat_basis(b[:, :num_id], s[:num_id], n, scale)
  b, s = bases['exp']
  exp_basis = _flat_basis(b, s, n, scale)
  b, s = bases['tex']
  mean_albedo, tex_basis = _albedo(mu_tex, b[:, :num_tex], s[:num_tex], n)
  if 'detail' not in masks:
    # Derive the missing Chen20 masks (those it loads from separate files),
    # then recombine 'detail' from whatever the file provided.
    from bfm import face_regions  # pylint: disable=g-import-not-at-top
    from bfm import mesh_geometry  # pylint: disable=g-import-not-at-top
    centred = mean_mm - 0.5 * (mean_mm.min(0) + mean_mm.max(0))
    tris, _ = mesh_geometry.orient_outward(centred, tri.astype(np.int64))
    derived = face_regions.region_masks(centred, tris, lm)
    for key in ('face', 'wo_eyes', 'wo_nose', 'wo_eyebrows'):
      masks.setdefault(key, derived[key])
    masks['detail'] = (masks['face'] & masks['wo_eyes'] & masks['wo_nose'] &
                       masks['wo_eyebrows'])
  source = 'Chen20 BFM2009_Model.mat (%s; units %s)' % (path, unit_name)
  return model_builder.build_model('chen20_bfm2009', mean_mm,
                                   tri.astype(np.int64), lm, id_basis,
                                   exp_basis, mean_albedo, tex_basis,
                                   masks=masks, source=source)
