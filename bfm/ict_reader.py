"""Reads ICT-FaceKit's face model from the extracted ict_face.npz.

ict_face.npz (see ../shared/data/README.md; ICT-FaceKit, MIT licence,
https://github.com/ICT-VGL/ICT-FaceKit) holds the face region of the kit's
model: mean [9409, 3] cm, id_basis [100, 9409, 3] identity PCA deltas
(coefficients ~ N(0, 1)), exp_basis [53, 9409, 3] ARKit-style blendshape
deltas (weights in [0, 1]), exp_names [53], tris [18460, 3], uv [9409, 2],
lm68 [68] iBUG vertex indices.

Conversion: centimetres -> millimetres; by default the model is cut to the
"narrow face", the first 6,706 vertices, which form one seamless UV chart
(the remaining vertices are the neck, ears and back of the head, whose UVs lie
in other charts and would overlap in the UV-space detail stage); triangles
with any vertex outside the cut are dropped (13,120 remain). Masks, contour
candidates and the symmetry map are derived (bfm.model_builder).
"""

import os
import zipfile

import numpy as np

from bfm import model_builder
from bfm import morphable_model

NARROW_FACE_VERTICES = 6706
CM_TO_MM = 10.0
DOWNLOAD = ('ICT-FaceKit (https://github.com/ICT-VGL/ICT-FaceKit, MIT): '
            'extract the face region of FaceXModel into ict_face.npz with '
            'keys mean, id_basis, exp_basis, exp_names, tris, uv, lm68 '
            '(see ../shared/data/README.md)')
KEYS = ('mean', 'id_basis', 'exp_basis', 'tris', 'uv', 'lm68')


def read_ict(path, narrow_face=True):
  """ict_face.npz -> MorphableModel 'ict' (see module docstring).

  Args:
    path: the .npz file.
    narrow_face: cut to the first 6,706 vertices (one UV chart).
  Raises:
    FileNotFoundError: with what to download; ModelFormatError: bad file.
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(
        'ICT-FaceKit model %s not found. Get it from %s, put it at that path '
        '(or point FULLPOSE_DATA_DIR / --data_dir at the folder holding '
        'ict/), then bfm.load(\'ict\') reads it directly; `python -m '
        'bfm.convert ict --ict_npz FILE --out ict.npz` writes a converted '
        'copy.' % (path, DOWNLOAD))
  fail = morphable_model.ModelFormatError
  try:
    archive = np.load(path, allow_pickle=False)
  except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
    raise fail('%s: not a readable .npz (%s: %s)' %
               (path, type(e).__name__, e)) from e
  arrays = {}
  with archive:
    for key in KEYS + ('exp_names',):
      if key not in archive.files:
        if key == 'exp_names':
          continue
        raise fail('%s: missing key %r (has %s)' %
                   (path, key, sorted(archive.files)))
      try:
        arrays[key] = archive[key]
      except Exception as e:  # damaged member
        raise fail('%s: cannot read key %r (%s: %s)' %
                   (path, key, type(e).__name__, e)) from e
  mean = arrays['mean']
  if mean.ndim != 2 or mean.shape[1] != 3:
    raise fail('%s: key \'mean\' has shape %s, expected [N, 3]' %
               (path, mean.shape))
  n = mean.shape[0]
  for key in ('id_basis', 'exp_basis'):
    if arrays[key].ndim != 3 or arrays[key].shape[1:] != (n, 3):
      raise fail('%s: key %r has shape %s, expected [K, %d, 3]' %
                 (path, key, arrays[key].shape, n))
  if arrays['uv'].shape != (n, 2):
    raise fail('%s: key \'uv\' has shape %s, expected [%d, 2]' %
               (path, arrays['uv'].shape, n))
  if arrays['lm68'].shape != (68,):
    raise fail('%s: key \'lm68\' has shape %s, expected [68]' %
               (path, arrays['lm68'].shape))
  tris = arrays['tris']
  if tris.ndim != 2 or tris.shape[1] != 3:
    raise fail('%s: key \'tris\' has shape %s, expected [T, 3]' %
               (path, tris.shape))
  for key in ('mean', 'id_basis', 'exp_basis', 'uv'):
    if not np.all(np.isfinite(arrays[key])):
      raise fail('%s: key %r contains NaN/Inf values' % (path, key))
  keep = NARROW_FACE_VERTICES if narrow_face and n > NARROW_FACE_VERTICES \
      else n
  lm = arrays['lm68'].astype(np.int64)
  if lm.min() < 0 or lm.max() >= keep:
    raise fail('%s: key \'lm68\' has indices outside [0, %d)' % (path, keep))
  tris = tris[np.all(tris < keep, axis=1)]
  names = [str(s) for s in arrays.get('exp_names', [])]
  if names and len(names) != arrays['exp_basis'].shape[0]:
    raise fail('%s: key \'exp_names\' has %d names for %d blendshapes' %
               (path, len(names), arrays['exp_basis'].shape[0]))
  return model_builder.build_model(
      name='ict',
      mean_shape=mean[:keep] * CM_TO_MM,
      triangles=tris,
      landmarks68=lm,
      id_basis=(arrays['id_basis'][:, :keep] * CM_TO_MM).astype(np.float32),
      exp_basis=(arrays['exp_basis'][:, :keep] * CM_TO_MM).astype(np.float32),
      uv=np.clip(arrays['uv'][:keep], 0.0, 1.0),
      exp_names=names,
      source='ICT-FaceKit face (%s, %s, cm -> mm)' %
      (path, 'narrow face, first %d vertices' % keep if keep < n else
       'all vertices'))
