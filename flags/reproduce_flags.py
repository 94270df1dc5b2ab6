"""absl flags of eval/reproduce.py (a dataset to the paper's table rows).

  python eval/reproduce.py --dataset=micc --dataset_root=/data/MICC --fit

It shares the reconstruct command's flags (reconstruct_flags.py: --fit,
--coarse_checkpoint, --detail_checkpoint, --bfm, --landmarks, --batch_size,
--resume, --overwrite, ...) and the evaluation flags (eval_flags.py:
--dataset, --dataset_root, --tables, --method, --aggregate, --strict and the
protocol settings); the protocol and stage of each table are the paper's
(eval/reproduce.py), so --protocol, --stage and --predictions are not read.
Its own flags start with `reproduce_` (flags/__init__.py, rule 3). Call
`define_flags()` before `app.run`; it is idempotent.
"""

from absl import flags

from flags import common_flags
from flags import eval_flags
from flags import reconstruct_flags

FLAGS = flags.FLAGS

_define = common_flags.define_once


def define_flags():
  """Defines the flags eval/reproduce.py reads (safe to call repeatedly)."""
  # --- Reconstruction: the reconstruct command's own flags --------------------
  reconstruct_flags.define_flags()

  # --- Evaluation -------------------------------------------------------------
  eval_flags.define_dataset_flags()
  eval_flags.define_tables_flag()
  eval_flags.define_row_flags()
  eval_flags.define_protocol_settings_flags()

  # --- Outputs ----------------------------------------------------------------
  _define(
      'string', 'reproduce_out', None,
      'Folder of the run (default: reproduce_<dataset> in the current '
      'folder): predictions/ holds the reconstruct command\'s files of every '
      'image in the layout eval/evaluate.py reads (<image path minus '
      'extension>_coarse.obj, _detail.obj, _landmarks.txt, ...), and per '
      'evaluated protocol and stage <dataset>_<protocol>_<stage>.json '
      '(eval/evaluate.py\'s result format, read by eval/tables.py) and .csv '
      '(one row per image), and tables.md (the printed tables). A rerun '
      'needs --resume (keep complete faces, reconstruct the rest) or '
      '--overwrite.')
  _define(
      'integer', 'reproduce_max_images', None,
      'Reconstruct and evaluate only the first N images of the dataset\'s '
      'list (a quick check of the set-up; the rows then say "N of M '
      'images" and are not the paper\'s protocol). Default: all.')
