"""absl flags of the evaluation scripts (eval/evaluate.py, eval/tables.py,
eval/reproduce.py).

Defaults follow the paper's appendix E and the protocols it cites (FG 2018
challenge NME; Chen et al. 2020's MICC point-to-point error). Call
`define_flags()` (every flag) or the group functions (eval/reproduce.py,
which chooses the protocol and stage itself) before `app.run`; they are
idempotent.
"""

from absl import flags

from eval import point_mesh_distance
from eval import protocols
from flags import common_flags

FLAGS = flags.FLAGS


_define = common_flags.define_once


def define_aggregate(name, what):
  """The enum flag `name` choosing how distances pool over `what`."""
  _define('enum', name, 'pooled', ['pooled', 'subject'],
          '"pooled": mean/std over all scan points of %s (the paper\'s '
          'mean±std); "subject": mean/std of per-image means.' % what)


def define_dataset_flags():
  """--dataset and --dataset_root."""
  _define('enum', 'dataset', None, ['micc', 'now', 'esrc', '3dr', '3ds'],
          'Evaluation set (layouts in eval/README.md).')
  _define('string', 'dataset_root', None,
          'Folder of the evaluation set in its documented layout.')


def define_row_flags():
  """--method, --aggregate and --strict: how a run's rows are named and
  pooled, and what a bad prediction file does."""
  _define('string', 'method', 'Our',
          'Row name of this run in the printed rows and in eval/tables.py.')
  define_aggregate('aggregate', 'all images of a split')
  _define('bool', 'strict', False,
          'Stop at the first bad prediction file (malformed OBJ or landmark '
          'file). Default: report it in one line, count it in the result\'s '
          '"failed" list and evaluate the rest.')


def define_protocol_settings_flags():
  """The protocols' settings (--nme_variant, --yaw_threshold_deg, the MICC
  point-to-point and ICP settings, --distance_backend), not the choice of
  protocol."""
  _define('enum', 'nme_variant', 'fg2018', sorted(protocols.NME_VARIANTS),
          '"fg2018": challenge protocol (crop factor 1.2, 7-point similarity '
          'Procrustes, no ICP); "fg2018_icp": then rigid ICP; "now": NoW-'
          'style (crop factor 1.4, Procrustes, rigid scan-to-mesh '
          'refinement).')
  _define('float', 'yaw_threshold_deg', 30.0,
          'Images with |yaw| below this are "small pose", others "large". 30 '
          'degrees is the first pose bin of AFLW2000-3D (Zhu et al. 2016, '
          '3DDFA, compared in Table 1), beyond which the far cheek starts to '
          'self-occlude; the paper gives no number.')
  _define('float', 'p2p_crop_radius_mm', protocols.MICC_CROP_RADIUS_MM,
          'MICC protocol: crop radius around the nose tip (Chen20: 95 mm).')
  _define('enum', 'p2p_direction', 'scan_to_prediction',
          list(protocols.P2P_DIRECTIONS),
          'MICC protocol: which nearest-vertex distances are averaged.')
  _define('bool', 'p2p_with_scale', False,
          'MICC protocol: allow scale in the 7-point alignment (the paper: '
          '"rough rigid alignment", i.e. no scale).')
  _define('enum', 'icp_mode', 'point_to_plane',
          ['point_to_plane', 'point_to_point'],
          'ICP update for the protocols that run ICP.')
  _define('integer', 'icp_max_iterations', 100, 'ICP iteration cap.')
  _define('enum', 'distance_backend', 'auto',
          list(point_mesh_distance.BACKENDS),
          'Closest-point backend ("auto": libigl if installed, else the exact '
          'scipy KD-tree search).')


def define_tables_flag():
  """--tables: which of the paper's tables."""
  _define('list', 'tables', ['1', '2', '3', '4'],
          'Which of the paper\'s tables: eval/tables.py prints them; '
          'eval/reproduce.py evaluates the dataset with the protocol and '
          'stage of each of them that has a column for it (1, 4: NME of the '
          'coarse meshes; 2: MICC point-to-point error of the detailed '
          'meshes; 3: NME of the detailed meshes).')


def define_flags():
  """Defines all evaluation flags (safe to call more than once)."""
  # --- What to evaluate -----------------------------------------------------
  define_dataset_flags()
  _define('string', 'predictions', None,
          'Folder of predicted meshes: <image path minus extension>.obj plus '
          '.npy/.txt landmarks (7, 7 + nose tip, or 68 iBUG) in the mesh '
          'frame; or the reconstruct command\'s NAME_coarse.obj / '
          'NAME_detail.obj (by --stage) and NAME_landmarks.txt.')
  _define('enum', 'stage', 'coarse', ['coarse', 'detail'],
          'Which reconstruction was evaluated: NME of "coarse" meshes goes '
          'to Tables 1 and 4, of "detail" meshes to Table 3.')
  _define('bool', 'skip_missing', False,
          'Skip (and count) images without a prediction instead of failing.')

  # --- Protocol -------------------------------------------------------------
  _define('enum', 'protocol', 'nme', ['nme', 'micc_p2p'],
          '"nme": FG 2018 scan-to-surface error (paper Tables 1, 3, 4); '
          '"micc_p2p": Chen20 point-to-point error after 95 mm crop and ICP '
          '(Table 2).')
  define_protocol_settings_flags()

  # --- Output ---------------------------------------------------------------
  define_row_flags()
  _define('string', 'output', None,
          'JSON result file for eval/tables.py (default: only print).')
  _define('list', 'results', ['eval/results'],
          'eval/tables.py: result JSON files or folders holding them.')
  define_tables_flag()
  _define('bool', 'paper_rows', True,
          'eval/tables.py: include the paper\'s published numbers as '
          'reference rows (marked "(paper)").')
