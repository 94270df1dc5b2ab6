"""Table, paired differences, picture and files of the detail benchmark.

The picture is laid out like the paper's Figure 7: per test face (one line
each, small-pose faces first) the input, then the shaded geometry (a uniform
grey albedo under the face's own lighting, so only the surface shows) of the
coarse face and of each row's detailed face, and last the true detail.
"""

import json
import os

import numpy as np
import tensorflow as tf

from coarse import coefficients as coefficients_lib
from coarse import face_reconstruction
from eval import detail_scoring
from eval import synthetic_report

METRIC_TITLES = {'disp_mae_mm': 'disp MAE (mm)',
                 'detail_mae_mm': 'detail MAE (mm)',
                 'normal_err_deg': 'normal error (deg)'}
GREY_ALBEDO = 0.6
ZERO = 'zero'


def _rows_by(rows):
  return {(r['name'], r['split'], r['region']): r for r in rows}


def paired(rows, contrasts):
  """Paired per-image differences (row minus baseline on the same faces).

  Every row against the zero-displacement row of its split and region, and
  the (row, baseline) name pairs of `contrasts` where both were run.
  Returns a list of dicts: row, baseline (names), split, region, metric,
  mean, half_width_95, n (eval/synthetic_report.paired_difference).
  """
  index = _rows_by(rows)
  pairs = [(r['name'], ZERO) for r in rows if r['name'] != ZERO]
  pairs += list(contrasts)
  out, seen = [], set()
  for name, base in pairs:
    for (n, split, region), row in sorted(index.items()):
      if n != name or (base, split, region) not in index:
        continue
      if (name, base, split, region) in seen:
        continue
      seen.add((name, base, split, region))
      other = index[(base, split, region)]
      for metric in detail_scoring.METRICS:
        mean, half, n_images = synthetic_report.paired_difference(
            row['per_image'][metric], other['per_image'][metric])
        out.append({'row': name, 'baseline': base, 'split': split,
                    'region': region, 'metric': metric, 'mean': mean,
                    'half_width_95': half, 'n': n_images})
  return out


class FigureColumns:
  """Collects the picture's columns for the first `faces` faces per split.

  Args:
    splits: {split: test set dict (eval/detail_sets.py)}.
    faces: faces per split in the picture.
  """

  def __init__(self, splits, faces):
    self.faces = int(faces)
    self.splits = {s: {k: v[:self.faces] for k, v in d.items()}
                   for s, d in splits.items()}
    self.columns = {s: [('input', d['images'])]
                    for s, d in self.splits.items()}

  def _shade(self, recon, split, maps, scale_mm):
    data = self.splits[split]
    coeffs = coefficients_lib.Coefficients.from_vector(
        recon.model, tf.constant(data['coefficients']))
    size = data['images'].shape[1:3]
    face = face_reconstruction.reconstruct(recon.model, coeffs, size)
    grey = tf.fill(tf.shape(face.albedo), GREY_ALBEDO)
    out = recon.applier.render(face.vertices, grey, coeffs.pose,
                               coeffs.lighting, tf.constant(maps[:self.faces]),
                               size, scale_mm)
    return (out.image * out.mask + (1.0 - out.mask)).numpy()

  def add(self, split, label, recon, maps):
    """A column: `recon`'s displacement maps [N,S,S,1] of the split."""
    if self.faces <= 0:
      return
    self.columns[split].append(
        (label, self._shade(recon, split, maps, recon.displacement_scale_mm)))

  def add_truth(self, recon, amplitude_mm):
    """The last column of every split: the true wrinkles."""
    for split, data in self.splits.items():
      if self.faces > 0:
        self.columns[split].append(
            ('true detail', self._shade(recon, split, data['maps'],
                                        amplitude_mm)))

  def labels(self, split):
    return [label for label, _ in self.columns[split]]

  def image(self):
    """[H', W', 3] uint8: one line per face, small pose first; splits with
    fewer columns are padded white on the right."""
    lines = []
    width = max(len(c) for c in self.columns.values())
    for split in ('small', 'large'):
      if split not in self.columns:
        continue
      cols = [c for _, c in self.columns[split]]
      blank = np.ones_like(cols[0])
      cols += [blank] * (width - len(cols))
      for i in range(len(cols[0])):
        lines.append(np.concatenate([c[i] for c in cols], 1))
    grid = np.concatenate(lines, 0)
    return np.clip(np.round(grid * 255.0), 0, 255).astype(np.uint8)


def _fmt(row, metric):
  return '%.3f' % row[metric]


def markdown(result):
  """The Markdown text of a result dict."""
  lines = [
      '## Detail-stage benchmark (known synthetic wrinkles)', '',
      'Faces rendered from the %r morphable model with a random known '
      'wrinkle displacement (peak %g mm) and the ground-truth coarse face; '
      'scores against the known displacement over the face (the dense '
      'detail mesh), per test face, then averaged. NOT the paper\'s data.' %
      (result['settings']['bfm'],
       result['settings']['detail_benchmark_wrinkles_mm']), '',
      '| Row | split | region | %s | train time | parameters |' %
      ' | '.join(METRIC_TITLES[m] for m in detail_scoring.METRICS),
      '|---|---|---|---|---|---|---|---|'
  ]
  for row in result['rows']:
    lines.append('| %s | %s | %s | %s | %s | %s |' % (
        row['label'], row['split'], row['region'],
        ' | '.join(_fmt(row, m) for m in detail_scoring.METRICS),
        '-' if not row['train_s'] else '%.0f s%s' % (
            row['train_s'], ' (reused)' if row.get('reused') else ''),
        '-' if not row['params'] else '{:,}'.format(row['params'])))
  labels = {r['name']: r['label'] for r in result['rows']}
  lines += ['', 'Paired per-image differences (row minus baseline on the same '
            'test faces; mean ± 1.96 standard errors; negative = lower error '
            'than the baseline):', '',
            '| Row | baseline | split / region | %s |' %
            ' | '.join(METRIC_TITLES[m] for m in detail_scoring.METRICS),
            '|---|---|---|---|---|---|']
  grouped = {}
  for p in result['paired']:
    grouped.setdefault((p['row'], p['baseline'], p['split'], p['region']),
                       {})[p['metric']] = p
  for (row, base, split, region), by_metric in grouped.items():
    lines.append('| %s | %s | %s / %s | %s |' % (
        labels.get(row, row), labels.get(base, base), split, region,
        ' | '.join('%+.3f ± %.3f' % (by_metric[m]['mean'],
                                     by_metric[m]['half_width_95'])
                   for m in detail_scoring.METRICS)))
  s = result['settings']
  lines += ['', 'Train time: the row\'s own training (the large-pose rows '
            'start from the t = 2 network, whose time is not included). '
            '%d test faces per split; small pose |yaw| < %g°, large pose '
            '%g°-%g°. Detail MAE: after removing a Gaussian blur of sigma '
            '%g texels (UV %d) from both maps. Visible / occluded: the half '
            'of the face turned towards / away from the camera.' % (
                s['detail_benchmark_test_images'],
                result['test_yaw_ranges']['small'][1],
                result['test_yaw_ranges']['large'][0],
                result['test_yaw_ranges']['large'][1],
                s['detail_benchmark_lowpass_texels'] *
                s['detail_benchmark_uv_size'] / 64.0,
                s['detail_benchmark_uv_size'])]
  if result.get('figure'):
    lines += ['', '![detail benchmark faces](%s)' % result['figure']['file'],
              '', 'Picture, left to right: %s (small-pose faces; the large-'
              'pose faces below: %s).' % (
                  ', '.join(result['figure']['columns']['small']),
                  ', '.join(result['figure']['columns']['large']))]
  lines += ['', '### Shortcuts versus the paper', '']
  lines += ['- ' + x for x in result['shortcuts']] or ['- none']
  lines += ['', '### Settings', '']
  for name, value in sorted(s.items()):
    lines.append('- `--%s=%s`' % (name, ','.join(str(v) for v in value)
                                  if isinstance(value, list) else value))
  lines += ['', 'Command: `%s` (git %s)' % (result['command'],
                                            result['git_commit']), '',
            'Wall times: training %.0f s, test sets %.0f s, total %.0f s '
            '(%s, %s CPU cores visible, load average at the end %s).' % (
                result['wall_s']['training'], result['wall_s']['sets'],
                result['wall_s']['total'], result['date'],
                result['cpu_count'],
                ', '.join('%.1f' % x for x in result['load_average']))]
  return '\n'.join(lines) + '\n'


def write(result, figure, folder, name):
  """Writes <folder>/<name>.png, .json and .md; returns their paths."""
  import cv2  # pylint: disable=g-import-not-at-top
  os.makedirs(folder, exist_ok=True)
  png = os.path.join(folder, name + '.png')
  paths = []
  if figure.faces > 0:
    cv2.imwrite(png, figure.image()[..., ::-1])
    result['figure'] = {'file': os.path.basename(png),
                        'columns': {s: figure.labels(s)
                                    for s in figure.columns}}
    paths.append(png)
  paths += list(synthetic_report.write(result, folder, name,
                                       text=markdown(result)))
  return paths


def load(path):
  with open(path) as f:
    return json.load(f)
