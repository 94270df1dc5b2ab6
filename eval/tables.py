"""Collects eval/evaluate.py result files into the paper's Tables 1-4.

Usage:
  python eval/tables.py [--results=eval/results,more.json] [--tables=1,2]
      [--nopaper_rows]

Rows are methods, columns dataset x pose as in the paper; cells `mean±std`
in mm. The paper's published numbers (paper.md, Tables 1-4) are reference
rows marked "(paper)", so a run sits beside them. Which result feeds which
table: NME of stage "coarse" -> Tables 1 and 4; micc_p2p -> Table 2; NME of
stage "detail" -> Table 3. The Mean column of Table 1 is, as in the paper,
the average of the six column means and of the six stds (only when all six
cells are present).
"""

import glob
import json
import os

from absl import app
from absl import flags

from flags import eval_flags

FLAGS = flags.FLAGS

_T1_COLUMNS = [('micc', 'small'), ('micc', 'large'), ('now', 'small'),
               ('now', 'large'), ('3dr', 'large'), ('3ds', 'large')]
_MICC_COLUMNS = [('micc', 'small'), ('micc', 'large')]
_T4_COLUMNS = _T1_COLUMNS + [('esrc', 'small'), ('esrc', 'large')]
_DATASET_TITLES = {'micc': 'MICC', 'now': 'NOW', '3dr': '3dr', '3ds': '3ds',
                   'esrc': 'ESRC'}


def _row(*cells):
  return [tuple(float(x) for x in c.split('±')) for c in cells]


# name: (title, columns, mean column?, selector (protocol prefix, stage),
#        paper rows {method: [(mean, std) per column, then Mean if any]})
TABLES = {
    '1': ('Table 1: coarse reconstruction, NME (mm)', _T1_COLUMNS, True,
          ('nme', 'coarse'), {
              'DAMDNet': _row('3.345±2.824', '3.538±2.837', '3.357±2.829',
                              '3.784±3.100', '3.252±2.108', '3.733±2.392',
                              '3.501±2.681'),
              'Extreme 3D': _row('3.219±3.261', '3.407±3.275', '3.437±3.361',
                                 '3.685±3.406', '3.547±2.991', '3.208±2.252',
                                 '3.417±3.091'),
              '3DDFA': _row('3.314±2.762', '3.262±2.728', '3.305±2.811',
                            '3.405±2.765', '3.055±2.120', '3.254±2.120',
                            '3.265±2.551'),
              'Chen20': _row('2.510±2.176', '3.177±2.618', '2.824±2.468',
                             '3.559±2.928', '2.413±1.915', '2.459±1.778',
                             '2.823±2.313'),
              'PRNet': _row('2.943±2.139', '2.604±2.003', '3.281±3.026',
                            '3.075±2.835', '2.437±2.249', '2.547±2.059',
                            '2.814±2.385'),
              'DECA': _row('2.478±2.374', '2.587±2.425', '2.402±2.334',
                           '2.628±2.507', '2.325±2.184', '2.608±2.309',
                           '2.504±2.355'),
              'Our': _row('2.352±2.010', '2.476±2.109', '2.317±2.019',
                          '2.341±1.992', '2.225±1.974', '2.178±1.779',
                          '2.314±1.980'),
          }),
    '2': ('Table 2: detailed reconstruction, same topology, MICC P2P error '
          '(mm)', _MICC_COLUMNS, False, ('micc_p2p', None), {
              'Extreme 3D': _row('1.985±1.523', '2.028±1.596'),
              'Chen20': _row('1.802±1.369', '2.123±1.597'),
              'Our': _row('1.521±1.105', '1.570±1.148'),
          }),
    '3': ('Table 3: detailed reconstruction, different topology, NME (mm)',
          _MICC_COLUMNS, False, ('nme', 'detail'), {
              'DECA': _row('2.694±2.545', '2.765±2.563'),
              'Our': _row('2.543±2.392', '2.653±2.474'),
          }),
    '4': ('Table 4: ablation of coarse reconstruction, NME (mm)', _T4_COLUMNS,
          False, ('nme', 'coarse'), {
              'Our w/o SAM': _row('2.510±2.176', '3.177±2.618', '2.824±2.468',
                                  '3.559±2.928', '2.413±1.915', '2.459±1.778',
                                  '2.780±2.492', '3.570±3.227'),
              'Our': _row('2.446±2.050', '2.746±2.266', '2.430±2.210',
                          '2.765±2.325', '2.224±1.907', '2.127±1.622',
                          '2.217±2.036', '2.974±2.714'),
              'Our*': _row('2.352±2.010', '2.476±2.109', '2.317±2.019',
                           '2.341±1.992', '2.225±1.974', '2.178±1.779',
                           '2.136±1.922', '2.378±2.159'),
          }),
}


def load_results(paths):
  """Reads result JSON files (paths or folders of *.json) -> list of dicts."""
  files = []
  for path in paths:
    if os.path.isdir(path):
      files += sorted(glob.glob(os.path.join(path, '*.json')))
    elif os.path.isfile(path):
      files.append(path)
    else:
      raise FileNotFoundError(f'{path}: no such result file or folder.')
  results = []
  for file in files:
    try:
      with open(file, encoding='utf-8') as f:
        result = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
      raise ValueError(f'{file}: not a readable result JSON ({e}).') from e
    missing = [k for k in ('method', 'dataset', 'protocol', 'splits', 'stage')
               if k not in result]
    if missing:
      raise ValueError(f'{file}: not an eval/evaluate.py result (missing '
                       f'{missing}).')
    result['_file'] = file
    results.append(result)
  return results


def _selected(result, selector):
  protocol, stage = selector
  if not result['protocol'].startswith(protocol):
    return False
  return stage is None or result['stage'] == stage


def build_table(name, results, paper_rows=True):
  """Rows of one table.

  Returns:
    (title, column names, rows) with rows = [(method, [cell str])].
  """
  title, columns, with_mean, selector, paper = TABLES[name]
  header = [f'{_DATASET_TITLES[d]} {s.title()} Pose' for d, s in columns]
  header += ['Mean'] if with_mean else []
  rows = []
  if paper_rows:
    for method, cells in paper.items():
      values = list(cells)  # with the paper's own Mean cell, if any
      rows.append((method + ' (paper)',
                   [f'{m:.3f}±{s:.3f}' for m, s in values]))
  runs = {}
  for result in results:
    if not _selected(result, selector):
      continue
    method = f'{result["method"]} [{result["protocol"]}]'
    cells = runs.setdefault(method, {})
    aggregate = result.get('aggregate', 'pooled')
    for split, stats in result['splits'].items():
      key = (result['dataset'], split)
      if key in cells:
        raise ValueError(f'{result["_file"]}: a second result for {method} '
                         f'{key} (also in {cells[key][2]}).')
      cells[key] = (stats[aggregate]['mean'], stats[aggregate]['std'],
                    result['_file'])
  for method, cells in runs.items():
    values = [cells.get(c) for c in columns]
    texts = ['-' if v is None else f'{v[0]:.3f}±{v[1]:.3f}' for v in values]
    if with_mean:
      if all(v is not None for v in values):
        texts.append(f'{sum(v[0] for v in values) / len(values):.3f}±'
                     f'{sum(v[1] for v in values) / len(values):.3f}')
      else:
        texts.append('-')
    rows.append((method, texts))
  return title, header, rows


def format_table(title, header, rows):
  """Markdown table text."""
  lines = [title, '', '| Method | ' + ' | '.join(header) + ' |',
           '|' + '---|' * (len(header) + 1)]
  for method, cells in rows:
    lines.append(f'| {method} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def main(argv):
  del argv
  # The default folder may not exist yet (no run); other paths must.
  default = FLAGS['results'].default
  paths = [p for p in FLAGS.results if os.path.exists(p) or p not in default]
  results = load_results(paths)
  for name in FLAGS.tables:
    if name not in TABLES:
      raise app.UsageError(f'--tables: unknown table {name!r} (1-4).')
    print(format_table(*build_table(name, results, FLAGS.paper_rows)))
    print()


if __name__ == '__main__':
  eval_flags.define_flags()
  app.run(main)
