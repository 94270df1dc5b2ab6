r"""Fetches a public face model into the per-user model folder, as NAME.npz.

  python -m bfm.fetch sfm                    # download (about 3 MB)
  python -m bfm.fetch sfm --from_dir=DIR     # from files you already have
  python -m bfm.fetch ict --from_dir=DIR     # DIR holds ict_face.npz
  python -m bfm.fetch ict                    # says why it is not downloaded

The model goes to bfm.loader.models_dir() (FULLPOSE_DATA_DIR, else
~/.cache/fullpose) or --data_dir, where bfm.load('sfm') and the commands'
--bfm=sfm (or no --bfm: the best model present) find it.

sfm: the five eos share/ files the reader needs (bfm/sfm_reader.py), from
patrikhuber/eos at a pinned commit (SFM_COMMIT, the v1.5.0 release), each
checked against its recorded SHA-256, converted with bfm.sfm_reader into the
project's .npz (bfm/README.md) and stored as sfm.npz. --from_dir takes a
folder holding the files, an eos checkout (its share/ is used) or a folder
holding sfm/ (the shared data layout); the same checksums apply.

ict: ICT-FaceKit (MIT) publishes its model as 154 OBJ files of the whole
26,719-vertex head (about 395 MB at ICT_COMMIT), not as a compact file, and
the project has no extractor for them yet, so `fetch ict` downloads nothing
and says so; --from_dir accepts an extracted ict_face.npz (the layout in
bfm/ict_reader.py), checked by the reader (a user's own extract has no
published checksum; the project's reference extract is recognised by
ICT_REFERENCE_SHA256).

Nothing half-written is left behind: files are downloaded or copied into a
temporary folder inside the destination, hash-checked there, converted, the
.npz written there, read back, and only then renamed onto NAME.npz (an atomic
rename on one file system); the temporary folder is removed on every path.
A checksum mismatch, a missing file or a failed download is one line on
stderr and exit status 1. Command-line options are argparse, as in
bfm/convert.py (a standalone data tool).
"""

import argparse
import hashlib
import http.client
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request

from bfm import loader
from bfm import morphable_model
from bfm import npz_format
from bfm import sfm_reader

SFM_REPO = 'patrikhuber/eos'
SFM_COMMIT = 'd48d903aa61a5a207df2a5d4b16419d83986e320'  # tag v1.5.0
SFM_BASE_URL = 'https://raw.githubusercontent.com/%s/%s/share/' % (SFM_REPO,
                                                                   SFM_COMMIT)
SFM_PAGE = 'https://github.com/%s/tree/%s/share' % (SFM_REPO, SFM_COMMIT)
# (file, size in bytes, SHA-256), as in share/ at SFM_COMMIT (unchanged there
# since 2018).
SFM_FILES = (
    (sfm_reader.SHAPE_FILE, 2784392,
     '43750338ae533e7fb981e924b6f67ebde3d292f15ec4fc886ae5af14308ad980'),
    (sfm_reader.BLENDSHAPES_FILE, 248400,
     'a77c81712fc5e8b08a1be4cd2824d51514e5bde6578109ae5240dfb3489efd43'),
    (sfm_reader.LANDMARKS_FILE, 3166,
     '810810c457184526c7d54305ecbc5da764e2431b5e66025d921a7d424aebfac9'),
    (sfm_reader.CONTOURS_FILE, 679,
     'c9e69bfa995ab19ac6b27abb07729eb0520a00bb192be12426ca6bce76f3fded'),
    (sfm_reader.SYMMETRY_FILE, 3447,
     'd26e02dbb2cf72bfa88bc6bf6f175bf261bae7aff00509cc0ff277675f2fff47'),
)
SFM_LICENCE = (
    'The Surrey Face Model (share/sfm_shape_3448.bin and its blendshapes) is '
    'free for use for non-commercial purposes; for commercial purposes and '
    'other model resolutions see http://www.cvssp.org/facemodel (eos README, '
    '"License"). The eos code itself is Apache-2.0.')

ICT_REPO = 'ICT-VGL/ICT-FaceKit'
ICT_COMMIT = 'da5f95a607f5e6b37755b38d3385d7f2853732e5'
ICT_PAGE = 'https://github.com/%s/tree/%s/FaceXModel' % (ICT_REPO, ICT_COMMIT)
ICT_FILE = 'ict_face.npz'
# The extract in the project's shared data (../shared/data/ict/).
ICT_REFERENCE_SHA256 = (
    '2ba8c5ce05a5ba725ef481ca8dbf00d2691d904ea06464f08d329e3e683b6b1f')
ICT_LICENCE = ('ICT-FaceKit is MIT-licensed (Copyright (c) 2020 USC Institute '
               'for Creative Technologies); keep its licence notice with '
               'copies of the model.')
ICT_NOT_DOWNLOADED = (
    'ICT-FaceKit is not downloaded: the kit publishes its model as 154 OBJ '
    'files of the whole 26,719-vertex head (about 2.5 MB each, about 395 MB '
    'in %s at %s), not as a compact file, and this project has no extractor '
    'for them yet. Extract the face (vertices 0-9408 of the neutral mesh, '
    'the 100 identity and 53 expression shapes as deltas, the triangulated '
    'quads, UVs and the 68 landmark indices listed in the kit\'s README) '
    'into ict_face.npz with keys mean, id_basis, exp_basis, exp_names, tris, '
    'uv, lm68 (centimetres; bfm/ict_reader.py), then run `python -m '
    'bfm.fetch ict --from_dir=DIR` with DIR holding it.' %
    (ICT_PAGE, ICT_COMMIT[:7]))

MODELS = ('sfm', 'ict')
CHUNK = 1 << 20


class FetchError(Exception):
  """A fetch failed; str() is one line for the user. Nothing was written."""


def _sha256(path):
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(CHUNK), b''):
      digest.update(block)
  return digest.hexdigest()


def _download(url, path, timeout):
  """Streams `url` into `path` (a new file in the staging folder)."""
  try:
    with urllib.request.urlopen(url, timeout=timeout) as response, open(
        path, 'wb') as f:
      shutil.copyfileobj(response, f, CHUNK)
  except (urllib.error.URLError, http.client.HTTPException, OSError,
          ValueError) as e:
    reason = getattr(e, 'reason', None) or e
    raise FetchError('could not download %s (%s); nothing was written' %
                     (url, reason)) from e


def _sfm_source_dir(from_dir):
  """from_dir itself, its share/ (an eos checkout) or its sfm/ (shared data
  layout): the first that holds the shape model; else from_dir."""
  for sub in ('', 'share', 'sfm'):
    folder = os.path.join(from_dir, sub)
    if os.path.isfile(os.path.join(folder, sfm_reader.SHAPE_FILE)):
      return folder
  return from_dir


def _stage_sfm(staging, from_dir, base_url, timeout, say):
  """Puts the eos files into `staging`, each hash-checked; returns lines."""
  lines = []
  if from_dir:
    folder = _sfm_source_dir(from_dir)
    missing = [f for f, _, _ in SFM_FILES
               if not os.path.isfile(os.path.join(folder, f))]
    if missing:
      raise FetchError(
          'sfm: %s missing in %s (--from_dir needs %s from eos share/); '
          'nothing was written' %
          (', '.join(missing), folder, ', '.join(f for f, _, _ in SFM_FILES)))
  for name, size, expected in SFM_FILES:
    target = os.path.join(staging, name)
    if from_dir:
      origin = os.path.join(folder, name)
      shutil.copyfile(origin, target)
    else:
      origin = base_url + name
      say('  downloading %s (%d bytes)' % (origin, size))
      _download(origin, target, timeout)
    got = _sha256(target)
    if got != expected:
      raise FetchError(
          'sfm: %s: SHA-256 mismatch (got %s, expected %s, eos %s share/); '
          'nothing was written' % (origin, got, expected, SFM_COMMIT[:7]))
    lines.append('  %s  %d bytes  SHA-256 %s ok' %
                 (name, os.path.getsize(target), got[:16]))
  return lines


def _find_ict_file(from_dir):
  if os.path.isfile(from_dir):
    return from_dir
  for sub in ('', 'ict'):
    path = os.path.join(from_dir, sub, ICT_FILE)
    if os.path.isfile(path):
      return path
  raise FetchError('ict: no %s in %s or %s/ict (--from_dir needs the face '
                   'extracted from ICT-FaceKit; `python -m bfm.fetch ict` '
                   'says how); nothing was written' %
                   (ICT_FILE, from_dir, from_dir))


def fetch(name, data_dir=None, from_dir=None, base_url=None, timeout=60.0,
          force=False, say=print):
  """Fetches model `name` into <data_dir>/NAME.npz.

  Args:
    name: 'sfm' or 'ict'.
    data_dir: destination folder (default bfm.loader.models_dir()).
    from_dir: take the source files from this folder instead of the network.
    base_url: sfm only; where the eos share/ files are (default
      SFM_BASE_URL, the pinned commit); any urllib URL, e.g. file://.
    timeout: seconds per network operation.
    force: fetch again even when NAME.npz is already there.
    say: called with each line of the report (licence, source, checksums).
  Returns:
    The path of NAME.npz.
  Raises:
    FetchError: one line (checksum mismatch, missing file, download error,
      malformed file, `ict` without from_dir); nothing was written.
    ValueError: unknown name.
  """
  if name not in MODELS:
    raise ValueError('bfm.fetch: unknown model %r; use one of %s' %
                     (name, list(MODELS)))
  if name == 'ict' and not from_dir:
    raise FetchError(ICT_NOT_DOWNLOADED)
  from_dir = from_dir and os.path.expanduser(from_dir)
  data_dir = data_dir and os.path.expanduser(data_dir)
  base_url = base_url or SFM_BASE_URL
  if not base_url.endswith('/'):
    base_url += '/'
  if from_dir and not os.path.exists(from_dir):
    raise FetchError('%s: --from_dir %s does not exist; nothing was written' %
                     (name, from_dir))
  dest = os.path.abspath(data_dir or loader.models_dir())
  final = os.path.join(dest, name + '.npz')
  if os.path.isfile(final) and not force:
    say('%s is already present: %s (--force fetches it again)' % (name, final))
    return final
  try:
    os.makedirs(dest, exist_ok=True)
    staging = tempfile.mkdtemp(prefix='.fetch-%s-' % name, dir=dest)
  except OSError as e:
    raise FetchError('%s: cannot write to %s (%s)' % (name, dest, e)) from e
  try:
    if name == 'sfm':
      say('Surrey Face Model (sfm) from %s, checked against eos v1.5.0 '
          '(%s@%s):' % (from_dir or SFM_PAGE, SFM_REPO, SFM_COMMIT))
      lines = _stage_sfm(staging, from_dir, base_url, timeout, say)
      licence = SFM_LICENCE
      try:
        model = sfm_reader.read_sfm(staging)
      except (morphable_model.ModelFormatError, ValueError) as e:
        raise FetchError('sfm: %s; nothing was written' %
                         str(e).replace(staging, from_dir or SFM_PAGE)) from e
      model.source = ('Surrey Face Model 3448, eos share/ at %s@%s (v1.5.0): '
                      '%s; free for non-commercial use' %
                      (SFM_REPO, SFM_COMMIT, ', '.join(
                          '%s sha256:%s' % (f, h) for f, _, h in SFM_FILES)))
    else:
      origin = _find_ict_file(from_dir)
      say('ICT-FaceKit face (ict) from %s (extracted from %s):' %
          (origin, ICT_REPO))
      target = os.path.join(staging, ICT_FILE)
      shutil.copyfile(origin, target)
      got = _sha256(target)
      lines = ['  %s  %d bytes  SHA-256 %s %s' % (
          ICT_FILE, os.path.getsize(target), got[:16],
          'ok (the project\'s reference extract)'
          if got == ICT_REFERENCE_SHA256 else
          '(not the reference extract; checked by the reader)')]
      licence = ICT_LICENCE
      from bfm import ict_reader  # pylint: disable=g-import-not-at-top
      try:
        model = ict_reader.read_ict(target)
      except (morphable_model.ModelFormatError, ValueError) as e:
        raise FetchError('ict: %s; nothing was written' %
                         str(e).replace(target, origin)) from e
      model.source = ('ICT-FaceKit face (%s, MIT), narrow face cut, from %s '
                      'sha256:%s%s' % (
                          ICT_REPO, ICT_FILE, got,
                          ' (the project\'s reference extract of %s)' %
                          ICT_COMMIT[:7] if got == ICT_REFERENCE_SHA256
                          else ''))
    staged = os.path.join(staging, name + '.npz')
    model.save(staged)
    npz_format.read(staged)  # what bfm.load will read
    os.replace(staged, final)
  except OSError as e:  # a copy, the .npz write or the rename
    raise FetchError('%s: %s; nothing was written' % (name, e)) from e
  finally:
    shutil.rmtree(staging, ignore_errors=True)
  for line in lines:
    say(line)
  say('Licence: %s' % licence)
  say('wrote %s: %r' % (final, model))
  say('bfm.load(%r) and --bfm=%s now find it; with no --bfm, `reconstruct` '
      'uses the best model present.' % (name, name))
  return final


def build_parser():
  parser = argparse.ArgumentParser(
      prog='python -m bfm.fetch',
      description='Fetch a public face model into the per-user model folder '
      '(%s).' % loader.models_dir())
  parser.add_argument('model', choices=MODELS,
                      help='sfm: Surrey Face Model (eos, free for '
                      'non-commercial research); ict: ICT-FaceKit (MIT, '
                      'needs --from_dir)')
  parser.add_argument('--from_dir', default=None,
                      help='take the files from this folder (sfm: the eos '
                      'share/ files, an eos checkout or a folder holding '
                      'sfm/; ict: a folder holding ict_face.npz) instead of '
                      'downloading')
  parser.add_argument('--data_dir', default=None,
                      help='destination folder (default: FULLPOSE_DATA_DIR, '
                      'else ~/.cache/fullpose)')
  parser.add_argument('--base_url', default=None,
                      help='sfm: a mirror of eos share/ at commit %s '
                      '(default %s)' % (SFM_COMMIT[:7], SFM_BASE_URL))
  parser.add_argument('--timeout', type=float, default=60.0,
                      help='seconds per network operation')
  parser.add_argument('--force', action='store_true',
                      help='fetch again even if the model is present')
  return parser


def main(argv=None):
  args = build_parser().parse_args(argv)
  try:
    fetch(args.model, data_dir=args.data_dir, from_dir=args.from_dir,
          base_url=args.base_url, timeout=args.timeout, force=args.force)
  except FetchError as e:
    print('bfm.fetch: error: %s' % e, file=sys.stderr)
    return 1
  return 0


if __name__ == '__main__':
  sys.exit(main())
