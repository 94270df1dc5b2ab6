"""Evaluation-set loaders: which input images exist, their scans and pose split.

None of the sets can be downloaded here; the user arranges each in the layout
below (eval/README.md has the full description). Paths in listings are
relative to the dataset root and use '/'.

Generic layout ('micc', 'esrc', '3dr', '3ds'):
    <root>/images.csv        header `image,subject,yaw_deg[,split]`; one row
                             per input image the paper evaluates
    <root>/images/<image>    the input images (read by the reconstruction
                             step, not by eval/)
    <root>/scans/<subject>.obj                 ground-truth scan, millimetres
    <root>/scans/<subject>.{lnd,txt,pp,npy}    its 7 keypoints (FG 2018 order),
                                               optional 8th row: nose tip
NoW validation (the release's own layout, plus images.csv):
    <root>/imagepathsvalidation.txt   lines `<subject>/<condition>/<name>.jpg`
    <root>/iphone_pictures/<subject>/<condition>/<name>.jpg
    <root>/scans/<subject>/<anything>.obj      one scan per subject
    <root>/scans_lmks_onlypp/<subject>/<anything>.pp   its 7 landmarks
    <root>/images.csv        header `image,yaw_deg[,split]`, image as listed in
                             imagepathsvalidation.txt (rows for the images
                             to evaluate; without it every listed image is
                             evaluated with split 'all')

Pose split of an image: the `split` column ('small' or 'large') when given,
else 'small' if |yaw_deg| < threshold, else 'large'; rows with neither
(empty yaw) get the dataset's default split ('large' for 3dr and 3ds, which
contain only large poses; 'all' otherwise).
"""

import csv
import dataclasses
import glob
import os

DATASETS = ('micc', 'now', 'esrc', '3dr', '3ds')
# Folder of the input photos under the root; `Item.image` is relative to it.
IMAGE_FOLDERS = {'now': 'iphone_pictures'}
GENERIC_IMAGE_FOLDER = 'images'
# One line per layout, for error messages (the full description above).
_GENERIC_LAYOUT = ('<root>/images.csv (header image,subject,yaw_deg[,split]), '
                   '<root>/images/<image>, <root>/scans/<subject>.obj and '
                   '<root>/scans/<subject>.{lnd,txt,pp,npy}')
LAYOUTS = {
    'now': ('<root>/imagepathsvalidation.txt, <root>/iphone_pictures/'
            '<subject>/<condition>/<name>.jpg, <root>/scans/<subject>/*.obj, '
            '<root>/scans_lmks_onlypp/<subject>/*.pp and optionally '
            '<root>/images.csv (header image,yaw_deg[,split])'),
}
DEFAULT_SPLIT = {'3dr': 'large', '3ds': 'large'}
SPLITS = ('small', 'large', 'all')
_LANDMARK_EXTENSIONS = ('.lnd', '.txt', '.pp', '.npy')


class DatasetError(ValueError):
  """The dataset folder does not follow the documented layout."""


@dataclasses.dataclass
class Item:
  """One evaluation pair: an input image and the scan of its subject.

  Attributes:
    dataset: one of DATASETS.
    image: input image path relative to the image root, '/'-separated (also
      the key that finds the prediction: `<predictions>/<image minus
      extension>.obj`).
    subject: subject id.
    split: 'small', 'large' or 'all'.
    yaw_deg: yaw of the input image in degrees, or None if not given.
    scan_path: ground-truth scan .obj.
    scan_landmarks_path: its landmark file.
  """
  dataset: str
  image: str
  subject: str
  split: str
  yaw_deg: object
  scan_path: str
  scan_landmarks_path: str

  @property
  def key(self):
    return os.path.splitext(self.image)[0]


def pose_split(yaw_deg, threshold_deg, explicit=None, default='all',
               where='pose'):
  """'small' / 'large' / default from an explicit label or the yaw."""
  if explicit:
    explicit = explicit.strip().lower()
    if explicit not in SPLITS:
      raise DatasetError(f'{where}: split must be one of {SPLITS}, got '
                         f'{explicit!r}.')
    return explicit
  if yaw_deg is None:
    return default
  return 'small' if abs(yaw_deg) < threshold_deg else 'large'


def _read_csv(path, required):
  if not os.path.isfile(path):
    raise DatasetError(f'{path}: missing (see eval/README.md for the layout).')
  with open(path, newline='', encoding='utf-8') as f:
    rows = list(csv.DictReader(f))
    header = rows[0].keys() if rows else []
  missing = [c for c in required if c not in header]
  if not rows or missing:
    raise DatasetError(f'{path}: needs a header with columns {required} and at '
                       f'least one row (missing {missing}).')
  return rows


def _parse_yaw(text, where):
  text = (text or '').strip()
  if not text:
    return None
  try:
    return float(text)
  except ValueError:
    raise DatasetError(f'{where}: yaw_deg {text!r} is not a number.')


def _only_file(pattern, what):
  found = sorted(glob.glob(pattern))
  if len(found) != 1:
    raise DatasetError(f'{pattern}: expected exactly one {what}, found '
                       f'{len(found)}.')
  return found[0]


def _generic_scan_files(root, subject):
  scan = os.path.join(root, 'scans', subject + '.obj')
  if not os.path.isfile(scan):
    raise DatasetError(f'{scan}: scan of subject {subject!r} not found.')
  for ext in _LANDMARK_EXTENSIONS:
    landmarks = os.path.join(root, 'scans', subject + ext)
    if os.path.isfile(landmarks):
      return scan, landmarks
  raise DatasetError(f'{os.path.join(root, "scans", subject)}'
                     f'{{{",".join(_LANDMARK_EXTENSIONS)}}}: no landmark file '
                     f'for subject {subject!r}.')


def _load_generic(name, root, threshold_deg):
  csv_path = os.path.join(root, 'images.csv')
  rows = _read_csv(csv_path, ['image', 'subject', 'yaw_deg'])
  items = []
  for line, row in enumerate(rows, start=2):
    where = f'{csv_path}:{line}'
    image, subject = row['image'].strip(), row['subject'].strip()
    if not image or not subject:
      raise DatasetError(f'{where}: empty image or subject.')
    yaw = _parse_yaw(row['yaw_deg'], where)
    split = pose_split(yaw, threshold_deg, row.get('split'),
                       DEFAULT_SPLIT.get(name, 'all'), where)
    scan, landmarks = _generic_scan_files(root, subject)
    items.append(Item(name, image.replace(os.sep, '/'), subject, split, yaw,
                      scan, landmarks))
  return items


def _load_now(root, threshold_deg):
  list_path = os.path.join(root, 'imagepathsvalidation.txt')
  if not os.path.isfile(list_path):
    raise DatasetError(f'{list_path}: missing (NoW validation image list).')
  with open(list_path, encoding='utf-8') as f:
    listed = [l.strip().replace('\\', '/') for l in f if l.strip()]
  poses = {}
  csv_path = os.path.join(root, 'images.csv')
  if os.path.isfile(csv_path):
    for line, row in enumerate(_read_csv(csv_path, ['image', 'yaw_deg']), 2):
      where = f'{csv_path}:{line}'
      image = row['image'].strip().replace('\\', '/')
      if image not in listed:
        raise DatasetError(f'{where}: {image!r} is not in {list_path}.')
      poses[image] = pose_split(
          _parse_yaw(row['yaw_deg'], where), threshold_deg, row.get('split'),
          'all', where), _parse_yaw(row['yaw_deg'], where)
    selected = [image for image in listed if image in poses]
  else:
    selected = listed
  items = []
  for image in selected:
    subject = image.split('/')[0]
    scan = _only_file(os.path.join(root, 'scans', subject, '*.obj'),
                      f'scan .obj of subject {subject}')
    landmarks = _only_file(
        os.path.join(root, 'scans_lmks_onlypp', subject, '*.pp'),
        f'landmark .pp of subject {subject}')
    split, yaw = poses.get(image, ('all', None))
    items.append(Item('now', image, subject, split, yaw, scan, landmarks))
  return items


def load(name, root, yaw_threshold_deg=30.0):
  """Lists a dataset's evaluation items.

  Args:
    name: one of DATASETS.
    root: the dataset folder (layout in the module docstring).
    yaw_threshold_deg: |yaw| below it is 'small' pose.

  Returns:
    list of Item, in file order.

  Raises:
    DatasetError: unknown dataset or a layout problem (names the path).
  """
  if name not in DATASETS:
    raise DatasetError(f'unknown dataset {name!r}; one of {DATASETS}.')
  if not os.path.isdir(root):
    raise DatasetError(f'{root}: dataset folder not found (expected the '
                       f'{name} layout: {expected_layout(name)}).')
  if name == 'now':
    items = _load_now(root, yaw_threshold_deg)
  else:
    items = _load_generic(name, root, yaw_threshold_deg)
  if not items:
    raise DatasetError(f'{root}: no items to evaluate.')
  return items


def expected_layout(name):
  """One line describing dataset `name`'s layout (for error messages)."""
  return LAYOUTS.get(name, _GENERIC_LAYOUT)


def image_path(item, root):
  """The input photo of `item` in dataset folder `root`:
  <root>/images/<image> (generic layouts) or <root>/iphone_pictures/<image>
  (NoW)."""
  folder = IMAGE_FOLDERS.get(item.dataset, GENERIC_IMAGE_FOLDER)
  return os.path.join(root, folder, *item.image.split('/'))


def prediction_files(item, predictions_dir, stage='coarse'):
  """(mesh .obj path, landmark path) of an item's prediction.

  Layout: `<predictions_dir>/<item.key>.obj` and next to it the landmarks
  `<item.key>.npy` or `<item.key>.txt` (7 keypoints in FG 2018 order, 8 = 7 +
  nose tip, or 68 iBUG points), in the mesh's frame. The reconstruct
  command's names are accepted too: `<item.key>_coarse.obj` (or
  `_detail.obj` for stage 'detail') and `<item.key>_landmarks.txt`.

  Raises:
    DatasetError: a file is missing (names the expected paths).
  """
  base = os.path.join(predictions_dir, *item.key.split('/'))
  meshes = (base + '.obj', f'{base}_{stage}.obj')
  mesh = next((m for m in meshes if os.path.isfile(m)), None)
  if mesh is None:
    raise DatasetError(f'{meshes[0]} (or {os.path.basename(meshes[1])}): '
                       f'predicted mesh for image {item.image!r} not found.')
  for name in (base + '.npy', base + '.txt', base + '_landmarks.txt'):
    if os.path.isfile(name):
      return mesh, name
  raise DatasetError(f'{base}.npy / {base}.txt / {base}_landmarks.txt: '
                     'landmarks of the predicted mesh for image '
                     f'{item.image!r} not found.')
