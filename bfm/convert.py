"""Converts a face model into the project's .npz format (bfm/README.md).

  python -m bfm.convert synthetic --out synthetic.npz
  python -m bfm.convert sfm --sfm_dir ../shared/data/sfm --out sfm.npz
  python -m bfm.convert ict --ict_npz ../shared/data/ict/ict_face.npz \
      --out ict.npz [--full_ict]
  python -m bfm.convert bfm2009 --mat 01_MorphableModel.mat \
      --landmarks ibug68.txt [--landmarks_one_based] \
      [--expression exp.mat] --out bfm2009.npz
  python -m bfm.convert chen20 --mat BFM2009_Model.mat \
      --landmarks ibug68.txt --out chen20.npz

Then bfm.load('bfm2009.npz'). The command prints the model's sizes and the
symmetry map's worst mismatch. (Command-line options are argparse here: the
converter is a standalone data tool outside the absl-flag training/eval
binaries in flags/.)
"""

import argparse
import os
import sys

from bfm import bfm2009_reader
from bfm import ict_reader
from bfm import loader
from bfm import sfm_reader
from bfm import synthetic_face


def _data(sub):
  return os.path.join(loader.default_data_dir(), sub)


def build_parser():
  parser = argparse.ArgumentParser(
      prog='python -m bfm.convert',
      description='Convert a face model into the project .npz format.')
  sub = parser.add_subparsers(dest='source', required=True)

  def add(name, help_text):
    p = sub.add_parser(name, help=help_text)
    p.add_argument('--out', required=True, help='output .npz path')
    return p

  add('synthetic', 'the built-in procedural face (no input files)')
  p = add('sfm', 'Surrey Face Model from eos share/ files')
  p.add_argument('--sfm_dir', default=_data('sfm'),
                 help='folder with %s' % ', '.join(sfm_reader.FILES))
  p = add('ict', 'ICT-FaceKit face from ict_face.npz')
  p.add_argument('--ict_npz', default=_data(os.path.join('ict',
                                                         'ict_face.npz')),
                 help='the extracted ICT-FaceKit face .npz')
  p.add_argument('--full_ict', action='store_true',
                 help='keep all vertices, not only the 6,706-vertex narrow '
                 'face (its UVs then overlap across charts)')
  for name, text in (('bfm2009', 'BFM 2009 01_MorphableModel.mat'),
                     ('chen20', "Chen20's BFM2009_Model.mat")):
    p = add(name, text)
    p.add_argument('--mat', required=True, help=text)
    p.add_argument('--landmarks', default=None,
                   help='68 iBUG landmark vertex indices (text or .npy); '
                   'default: the .mat\'s 68-entry 1-based \'keypoints\' key')
    p.add_argument('--landmarks_one_based', action='store_true',
                   help='the --landmarks file is 1-based (MATLAB)')
    p.add_argument('--units', default='auto',
                   choices=['auto'] + sorted(bfm2009_reader.UNITS_PER_MM),
                   help='model units (auto: from the face width; BFM 2009 '
                   'is in micrometres)')
    p.add_argument('--num_id', type=int, default=80,
                   help='identity components kept (Chen20: 80)')
    p.add_argument('--num_tex', type=int, default=80,
                   help='texture components kept (Chen20: 80)')
    if name == 'bfm2009':
      p.add_argument('--expression', default=None,
                     help='expression basis .mat (exPC, exEV[, exMU, '
                     'vertex_indices]); BFM 2009 has none')
  return parser


def convert(args):
  """Runs one conversion from parsed arguments; returns the model."""
  if args.source == 'synthetic':
    model = synthetic_face.generate()
  elif args.source == 'sfm':
    model = sfm_reader.read_sfm(args.sfm_dir)
  elif args.source == 'ict':
    model = ict_reader.read_ict(args.ict_npz, narrow_face=not args.full_ict)
  else:
    landmarks = None
    if args.landmarks:
      landmarks = bfm2009_reader.read_landmarks(args.landmarks,
                                                args.landmarks_one_based)
    if args.source == 'bfm2009':
      model = bfm2009_reader.read_bfm2009(
          args.mat, landmarks=landmarks, expression_path=args.expression,
          num_id=args.num_id, num_tex=args.num_tex, units=args.units)
    else:
      model = bfm2009_reader.read_chen20(
          args.mat, landmarks=landmarks, num_id=args.num_id,
          num_tex=args.num_tex, units=args.units)
  model.save(args.out)
  return model


def main(argv=None):
  args = build_parser().parse_args(argv)
  try:
    model = convert(args)
  except (FileNotFoundError, ValueError) as e:
    print('bfm.convert: error: %s' % e, file=sys.stderr)
    return 1
  print('wrote %s: %r' % (args.out, model))
  print('  source: %s' % model.source)
  print('  symmetry: worst mirror mismatch %.3f mm' %
        model.symmetry_max_error_mm)
  if model.num_exp == 0:
    print('  warning: no expression components', file=sys.stderr)
  return 0


if __name__ == '__main__':
  sys.exit(main())
