"""Table and results files of the synthetic full-pose benchmark.

The table follows the paper's Table 4 layout (rows: w/o SAM, Our, Our*;
columns: small pose, large pose; mean ± std in mm), on synthetic data, plus
the wall time of each training run and reference rows (the mean face and the
shared pre-trained network) that show how far training moved the error.
"""

import json
import os

import numpy as np

# Table-4 row labels of the coarse/train.py --sam_config names.
ROW_LABELS = {'none': 'w/o SAM', 'our': 'Our', 'our_star': 'Our*',
              'our_star_literal': 'Our* (Eq. 2 as printed)'}
SPLIT_TITLES = {'small': 'Small pose', 'large': 'Large pose'}


def row_label(config):
  return ROW_LABELS.get(config, config)


def cell(aggregate, how='pooled'):
  """'mean±std' (mm, 3 decimals) of a protocols.aggregate dict."""
  stats = aggregate[how]
  return '%.3f±%.3f' % (stats['mean'], stats['std'])


def _split_header(result, split):
  """Column title; the pipes of |yaw| are escaped for Markdown tables."""
  low, high = result['test_yaw_ranges'][split]
  if split == 'small':
    return '%s (\\|yaw\\|<%g°)' % (SPLIT_TITLES[split], high)
  return '%s (%g°≤\\|yaw\\|≤%g°)' % (SPLIT_TITLES[split], low, high)


def paired_differences(result, baseline='none'):
  """{config: {split: (mean, half_width_95, n)}} of per-image differences.

  For every row other than `baseline`, the per-image mean errors minus the
  baseline row's on the same test images (mm): their mean and 1.96 standard
  errors (a normal-approximation 95% interval). Empty without the baseline.
  """
  rows = {r['config']: r for r in result['rows']}
  if baseline not in rows:
    return {}
  out = {}
  for config, row in rows.items():
    if config == baseline:
      continue
    out[config] = {}
    for split in result['splits']:
      out[config][split] = paired_difference(
          row['splits'][split]['per_image_mean'],
          rows[baseline]['splits'][split]['per_image_mean'])
  return out


def paired_difference(values, baseline):
  """(mean, half_width_95, n) of per-image values minus baseline values on
  the same images: the mean difference and 1.96 standard errors (a normal-
  approximation 95% interval; NaN half width for one image)."""
  diff = np.asarray(values, np.float64) - np.asarray(baseline, np.float64)
  if diff.shape != np.shape(baseline) or diff.ndim != 1:
    raise ValueError('paired_difference: need two equal-length lists of '
                     'per-image values, got %s and %s' %
                     (np.shape(values), np.shape(baseline)))
  half = (1.96 * diff.std(ddof=1) / np.sqrt(diff.size)
          if diff.size > 1 else float('nan'))
  return (float(diff.mean()), float(half), int(diff.size))


def face_model(settings):
  """The face model a result was run with: 'benchmark_model' (the model
  used, recorded since --bfm has a benchmark default) or --bfm."""
  return settings.get('benchmark_model', settings.get('bfm'))


def _faces_text(result):
  faces = result['settings'].get('benchmark_faces_used', 'model')
  return {'textured': 'photo-like (real skin from the shared sample photos, '
                      'random SH lighting, photo-patch backgrounds)',
          'model': 'model-albedo'}.get(faces, faces)


def _skins_text(skins):
  if not skins:
    return ''
  return (' Skins of training faces: %s; of test faces (disjoint): %s.' %
          (', '.join(skins['train']), ', '.join(skins['test'])))


def _reduce_text(reduce):
  if reduce is None:
    return 'not recorded (results written before the field: see settings)'
  return {'sum': '`sum` (Eq. 4 as printed)',
          'mean': '`mean` (their average)'}.get(reduce, '`%s`' % reduce)


def markdown(result):
  """The Markdown text of a result dict (table, settings, shortcuts)."""
  how = result['settings']['benchmark_aggregate']
  splits = result['splits']
  lines = [
      '## Synthetic full-pose benchmark (coarse NME, Table 4 layout)',
      '',
      'Data: %s faces rendered from the %r morphable model (synthetic data '
      'with exact ground-truth meshes), NOT the paper\'s MICC / NoW / '
      '3dMDLab / ESRC.%s' % (
          _faces_text(result), face_model(result['settings']),
          _skins_text(result.get('skins'))),
      '',
      'SAM rows: the 1 + K identity/expression predictions of Eq. 4 '
      'combined by %s.' % _reduce_text(result.get('sam_reduce')),
      '',
      '| Method / NME (mm) | %s | training wall time |' % ' | '.join(
          _split_header(result, s) for s in splits),
      '|---|%s---|' % ('---|' * len(splits)),
  ]
  for row in result['rows']:
    lines.append('| %s | %s | %.0f s%s |' % (
        row['label'], ' | '.join(cell(row['splits'][s], how) for s in splits),
        row['train_wall_s'], ' (reused)' if row.get('reused') else ''))
  lines += ['', 'Reference rows (not in the paper\'s table):', '',
            '| Reference / NME (mm) | %s | training wall time |' %
            ' | '.join(_split_header(result, s) for s in splits),
            '|---|%s---|' % ('---|' * len(splits))]
  for row in result['references']:
    wall = row.get('train_wall_s')
    lines.append('| %s | %s | %s |' % (
        row['label'], ' | '.join(cell(row['splits'][s], how) for s in splits),
        '-' if wall is None else '%.0f s%s' % (
            wall, ' (reused)' if row.get('reused') else '')))
  paired = paired_differences(result)
  if paired:
    lines += ['', 'Paired per-image differences from w/o SAM (row minus w/o '
              'SAM on the same test images, mm; mean ± 1.96 standard errors; '
              'negative = lower error than w/o SAM):', '',
              '| Row | %s |' % ' | '.join(SPLIT_TITLES[s] for s in splits),
              '|---|%s' % ('---|' * len(splits))]
    for row in result['rows']:
      if row['config'] in paired:
        lines.append('| %s | %s |' % (row['label'], ' | '.join(
            '%+.3f ± %.3f' % paired[row['config']][s][:2] for s in splits)))
  lines += ['', 'mean±std over %s; protocol %s (eval/protocols.py, ground-'
            'truth mesh as the scan). %d test images per split. Scoring: %s.'
            % ('all cropped ground-truth points of a split' if how ==
               'pooled' else 'per-image mean errors',
               result['protocol'],
               result['settings']['benchmark_test_images'],
               result.get('scoring', 'not recorded (results written before '
                          'the "scoring" field: SAM forward pass)')),
            '', '### Shortcuts versus the paper', '']
  if result['shortcuts']:
    lines += ['- ' + s for s in result['shortcuts']]
  else:
    lines.append('- none')
  lines += ['', '### Settings', '']
  for name, value in sorted(result['settings'].items()):
    lines.append('- `--%s=%s`' % (name, _flag_text(value)))
  lines += ['', 'Training-set |yaw| histogram:', '', '```',
            result['train_yaw_histogram_text'], '```', '',
            'Command: `%s`' % result['command'],
            '',
            'Wall times: sets %.0f s, total %.0f s (%s, %s CPU cores visible).'
            % (result['wall_s']['sets'], result['wall_s']['total'],
               result['date'], result['cpu_count'])]
  return '\n'.join(lines) + '\n'


def _flag_text(value):
  if isinstance(value, (list, tuple)):
    return ','.join(str(v) for v in value)
  return str(value)


def write(result, folder, name, text=None):
  """Writes <folder>/<name>.json and .md (`text`, default this benchmark's
  markdown(result)); returns their paths."""
  os.makedirs(folder, exist_ok=True)
  json_path = os.path.join(folder, name + '.json')
  md_path = os.path.join(folder, name + '.md')
  for path, text in ((json_path, json.dumps(result, indent=1, sort_keys=True)),
                     (md_path, markdown(result) if text is None else text)):
    tmp = path + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
      f.write(text)
    os.replace(tmp, path)
  return json_path, md_path
