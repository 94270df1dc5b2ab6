r"""Cross-model full-pose benchmark of `reconstruct --fit` with known geometry.

  python eval/fit_benchmark.py                       # default, < 30 min
  python eval/fit_benchmark.py --fit_benchmark_images_per_bin=10

Faces of one face model (random identity and expression) are rendered like
photos (eval/textured_faces.py: real skin unwrapped from the shared sample
photos, random SH lighting, defocused photo backgrounds, a perspective
camera), with yaw in six 15-degree bins from 0 to 90 (both signs), pitch
within +-20 and roll within +-10 degrees, written as PNG files and
reconstructed by the reconstruct command's own code path
(reconstruct/pipeline.py: detection and landmarks, crop, coarse fit) with
ANOTHER model: the fitted model never generated the geometry it is scored
on (ict:sfm and sfm:ict); the same-model pairs are an in-model reference.
Score: the FG 2018 NME (eval/protocols.py) of the fitted coarse mesh against
the rendered mesh, beside the NME of the fitting model's mean face on the
same photos, plus the detection rate (a detection counts only when it is
ON the rendered face, `on_face`: a face-like patch of the background is a
miss, reported as "off_face"), the median |yaw error| and the fit's
seconds per photo (detection, coarse and detail stages; the writing of
output files is not part of it).

Writes `--fit_benchmark_out`/NAME.json and NAME.md:
  {"bins": [{"render_model", "fit_model", "yaw_range", "images", "detected",
             "off_face", "nme_mm", "mean_face_nme_mm",
             "nme_minus_mean_face_mm", "nme_minus_mean_face_se_mm",
             "exact_points_nme_mm", "yaw_error_deg_median",
             "seconds_per_photo"}, ...], "command", "git_commit", "settings"}
with one entry per yaw bin and model pair, the yaw sign pooled (each sign
is also reported in "by_sign"); NME over the detected images.
"""

import json
import os
import shutil
import sys
import tempfile
import time

from absl import app
from absl import flags
import numpy as np

from eval import provenance
from flags import fit_benchmark_flags

fit_benchmark_flags.define_flags()
FLAGS = flags.FLAGS

YAW_BINS = ((0, 15), (15, 30), (30, 45), (45, 60), (60, 75), (75, 90))
TEXTURE_SIZE = 512
MAX_TEXTURES = 8
# `on_face`: the share of the 68 detected landmarks that must lie on the
# rendered face (its mask's bounding box, grown by ON_FACE_MARGIN of its
# size on each side: jaw points may sit just outside the visible skin).
ON_FACE_SHARE = 0.5
ON_FACE_MARGIN = 0.1
# `exact_points_coefficients`: the frame the exact points are projected
# into (the fit is invariant to it up to rounding).
EXACT_POINTS_IMAGE_SIZE = (224, 224)
EXACT_POINTS_PX_PER_MM = 1.0


def on_face(landmarks, face_mask):
  """Whether a detection is on the rendered face.

  Args:
    landmarks: [68,2] float detected landmarks, photo pixels (x, y).
    face_mask: [H,W] bool, the face model's rendered pixels.
  Returns:
    True when at least ON_FACE_SHARE of the landmarks lie in the mask's
    bounding box grown by ON_FACE_MARGIN (False for an empty mask).
  """
  rows, cols = np.nonzero(face_mask)
  if not rows.size:
    return False
  x0, x1 = cols.min(), cols.max() + 1.0
  y0, y1 = rows.min(), rows.max() + 1.0
  dx, dy = ON_FACE_MARGIN * (x1 - x0), ON_FACE_MARGIN * (y1 - y0)
  x, y = np.asarray(landmarks, np.float64).T
  inside = (x >= x0 - dx) & (x <= x1 + dx) & (y >= y0 - dy) & (y <= y1 + dy)
  return bool(np.mean(inside) >= ON_FACE_SHARE)


def _photos():
  from eval import textured_faces  # pylint: disable=g-import-not-at-top
  return textured_faces.sample_photos(who='fit_benchmark')


def render_set(model, textures, backgrounds, folder, rng, per_bin, size):
  """Renders per_bin photos per yaw bin and sign; returns their records."""
  from eval import textured_faces  # pylint: disable=g-import-not-at-top
  import cv2  # pylint: disable=g-import-not-at-top
  records = []
  for lo, hi in YAW_BINS:
    for sign in (-1, 1):
      for k in range(per_bin):
        identity = rng.normal(size=model.num_id).astype(np.float32)
        expression = textured_faces.sample_expression(model, rng)
        vertices = model.vertices(identity[None],
                                  expression[None]).numpy()[0]
        yaw = sign * rng.uniform(lo, hi)
        pitch = rng.uniform(-1, 1) * FLAGS.fit_benchmark_max_pitch_deg
        roll = rng.uniform(-1, 1) * FLAGS.fit_benchmark_max_roll_deg
        background = backgrounds[rng.randint(len(backgrounds))]
        image, face_mask = textured_faces.render_textured(
            model, vertices, textures[rng.randint(len(textures))],
            np.deg2rad([pitch, yaw, roll]),
            textured_faces.random_lighting(rng), size, background,
            offset_px=rng.uniform(-0.05, 0.05, 2) * size,
            hair_colour=textured_faces.HAIR_COLOURS[
                rng.randint(len(textured_faces.HAIR_COLOURS))])
        name = '%s_yaw%+03d_%d_%d' % (model.name, int(round(yaw)), lo, k)
        path = os.path.join(folder, name + '.png')
        cv2.imwrite(path, cv2.cvtColor(
            np.round(image * 255).astype(np.uint8), cv2.COLOR_RGB2BGR))
        records.append({'path': path, 'name': name, 'yaw_deg': float(yaw),
                        'angles_rad': np.deg2rad([pitch, yaw, roll]),
                        'bin': (lo, hi), 'sign': sign,
                        'vertices': vertices,
                        'face_mask': np.asarray(face_mask) > 0.5})
  return records


def make_backgrounds(rng, photos, size, count=12):
  """Defocused backgrounds shuffled from photo patches (no whole face)."""
  from eval import textured_faces  # pylint: disable=g-import-not-at-top
  return textured_faces.photo_backgrounds(rng, photos, size, count)


def make_textures(model, photos, source):
  """Skin textures of `model` from the frontal sample photos."""
  from eval import textured_faces  # pylint: disable=g-import-not-at-top
  return textured_faces.skins_from_photos(model, photos, source, TEXTURE_SIZE,
                                          MAX_TEXTURES)[0]


def reconstruct_set(pipeline, records, batch_size):
  """Runs the reconstruct pipeline; adds 'coarse_vertices', 'yaw_est' (or
  'failure', and 'off_face' when the detection is not on the rendered face,
  `on_face`)."""
  from reconstruct import pipeline as pipeline_lib  # pylint: disable=g-import-not-at-top
  prepared = []
  timings = {}
  for rec in records:
    t0 = time.time()
    try:
      face = pipeline.prepare(rec['path'], rec['name'])
    except pipeline_lib.InputError as e:
      rec['failure'] = str(e)
    else:
      if on_face(face.landmarks, rec['face_mask']):
        prepared.append((rec, face))
      else:
        rec['failure'] = '%s: the detection is not on the rendered face' % (
            rec['path'],)
        rec['off_face'] = True
    timings['detection'] = timings.get('detection', 0.0) + time.time() - t0
  for start in range(0, len(prepared), batch_size):
    chunk = prepared[start:start + batch_size]
    results = pipeline.reconstruct([p for _, p in chunk], timings)
    for (rec, _), result in zip(chunk, results):
      rec['coarse_vertices'] = result.coarse_vertices
      rec['yaw_est'] = result.yaw_deg
  seconds = sum(timings.values())
  return seconds / max(len(records), 1)


def exact_points_coefficients(render_corr, fit_model, fit_corr, vertices,
                              angles):
  """The closed-form fit (coarse/landmark_fit.py fit_dense) of `fit_model`
  to the exact projections of a rendered face's points.

  The 468 FaceMesh points and 6 BlazeFace keypoints of the rendered mesh
  (`render_corr`, the render model's measured correspondence) are projected
  orthographically with the render's rotation, as a perfect detector would
  report them (hidden ones included), and fitted with the production
  weights and priors at every yaw (no DENSE_MAX_YAW_DEG limit).

  Args:
    render_corr, fit_corr: facemesh_correspondence.Correspondence of the
      render and fit models.
    fit_model: bfm.MorphableModel.
    vertices: [N,3] float rendered mesh, millimetres.
    angles: (pitch, yaw, roll) radians of the render (renderer/camera.py).
  Returns:
    coarse.coefficients.Coefficients, NumPy, batch 1.
  """
  from coarse import facemesh_correspondence  # pylint: disable=g-import-not-at-top
  from coarse import landmark_fit  # pylint: disable=g-import-not-at-top
  from renderer import camera  # pylint: disable=g-import-not-at-top
  points = facemesh_correspondence.points(render_corr,
                                          np.asarray(vertices, np.float64))
  width = EXACT_POINTS_IMAGE_SIZE[1]
  pose = np.concatenate([np.asarray(angles, np.float64), [0.0, 0.0, np.log(
      EXACT_POINTS_PX_PER_MM * camera.REFERENCE_SIZE / width)]])
  pixels = camera.orthographic_project(
      (points - points.mean(0))[None].astype(np.float32),
      pose[None].astype(np.float32), EXACT_POINTS_IMAGE_SIZE)[..., :2]
  return landmark_fit.fit_dense(fit_model, fit_corr, np.asarray(pixels),
                                EXACT_POINTS_IMAGE_SIZE,
                                max_shape_yaw_deg=90.0)


def score(render_model, fit_model, records):
  """Adds 'nme', 'mean_face_nme' and, when both models have a measured
  FaceMesh correspondence, 'exact_points_nme' (exact_points_coefficients)
  to each reconstructed record."""
  from coarse import facemesh_correspondence  # pylint: disable=g-import-not-at-top
  from eval import protocols  # pylint: disable=g-import-not-at-top
  mean = fit_model.mean_shape
  render_corr = facemesh_correspondence.for_model(render_model)
  fit_corr = facemesh_correspondence.for_model(fit_model)

  def nme(truth, pred):
    return float(protocols.nme(
        truth, truth[render_model.keypoints7], pred, fit_model.triangles,
        pred[fit_model.keypoints7]).distances.mean())

  for rec in records:
    if 'coarse_vertices' not in rec:
      continue
    truth = rec['vertices']
    rec['nme'] = nme(truth, rec['coarse_vertices'])
    rec['mean_face_nme'] = nme(truth, mean)
    if render_corr is not None and fit_corr is not None:
      exact = exact_points_coefficients(render_corr, fit_model, fit_corr,
                                        truth, rec['angles_rad'])
      rec['exact_points_nme'] = nme(truth, np.asarray(fit_model.vertices(
          exact.identity, exact.expression))[0])


def summarize(records, render_name, fit_name, seconds_per_photo):
  """One JSON entry per yaw bin (signs pooled, and per sign)."""
  rows = []
  for lo, hi in YAW_BINS:
    def stats(recs):
      done = [r for r in recs if 'nme' in r]
      entry = {'images': len(recs), 'detected': len(done),
               'off_face': sum(1 for r in recs if r.get('off_face'))}
      if done:
        difference = [r['nme'] - r['mean_face_nme'] for r in done]
        entry.update(
            nme_mm=float(np.mean([r['nme'] for r in done])),
            mean_face_nme_mm=float(np.mean([r['mean_face_nme']
                                            for r in done])),
            nme_minus_mean_face_mm=float(np.mean(difference)),
            yaw_error_deg_median=float(np.median(
                [abs(r['yaw_est'] - r['yaw_deg']) for r in done])))
        if len(done) > 1:
          entry['nme_minus_mean_face_se_mm'] = float(
              np.std(difference, ddof=1) / np.sqrt(len(done)))
        if all('exact_points_nme' in r for r in done):
          entry['exact_points_nme_mm'] = float(np.mean(
              [r['exact_points_nme'] for r in done]))
      return entry
    in_bin = [r for r in records if r['bin'] == (lo, hi)]
    row = {'render_model': render_name, 'fit_model': fit_name,
           'yaw_range': [lo, hi]}
    row.update(stats(in_bin))
    row['seconds_per_photo'] = seconds_per_photo
    row['by_sign'] = {
        ('+' if s > 0 else '-'): stats([r for r in in_bin if r['sign'] == s])
        for s in (-1, 1)}
    rows.append(row)
  return rows


def markdown(result):
  """The results as a Markdown table (one row per pair and bin)."""
  lines = [
      '# Full-pose fit benchmark',
      '',
      'Command: `%s` (commit %s). Renders: %s. NME (FG 2018, mm) over the '
      'detected photos; mean face = the fitting model\'s mean face on the '
      'same photos; NME − mean face: the mean paired difference ± its '
      'standard error; exact points: the same closed-form fit from the '
      'exact projections of the rendered face\'s FaceMesh points (a perfect '
      'detector).' % (result['command'], result['git_commit'][:10],
                      result['settings']['renders']),
      '',
      '| render → fit | yaw | photos | detected | off the face | NME | '
      'mean face | NME − mean face | exact points | '
      'median \\|yaw error\\| (°) | s / photo |',
      '|---|---|---|---|---|---|---|---|---|---|---|',
  ]
  for row in result['bins']:
    def num(key, fmt='%.2f'):
      return fmt % row[key] if key in row else '–'
    difference = num('nme_minus_mean_face_mm', '%+.2f')
    if 'nme_minus_mean_face_se_mm' in row:
      difference += ' ± %.2f' % row['nme_minus_mean_face_se_mm']
    lines.append('| %s → %s | %d–%d° | %d | %d | %d | %s | %s | %s | %s | %s '
                 '| %.1f |' % (
                     row['render_model'], row['fit_model'],
                     row['yaw_range'][0], row['yaw_range'][1], row['images'],
                     row['detected'], row['off_face'], num('nme_mm'),
                     num('mean_face_nme_mm'), difference,
                     num('exact_points_nme_mm'),
                     num('yaw_error_deg_median', '%.1f'),
                     row['seconds_per_photo']))
  return '\n'.join(lines) + '\n'


def run(argv):
  import bfm  # pylint: disable=g-import-not-at-top
  from eval import textured_faces  # pylint: disable=g-import-not-at-top
  from preprocess import image_io  # pylint: disable=g-import-not-at-top
  from reconstruct import command  # pylint: disable=g-import-not-at-top
  frontal, every = _photos()
  work = FLAGS.fit_benchmark_work_dir or tempfile.mkdtemp(prefix='fitbench_')
  os.makedirs(work, exist_ok=True)
  size = FLAGS.fit_benchmark_image_size
  rng = np.random.RandomState(FLAGS.fit_benchmark_seed)
  background_photos = [image_io.read_image(p) for p in every]
  backgrounds = make_backgrounds(rng, background_photos, size)
  pairs = [p.split(':') for p in FLAGS.fit_benchmark_pairs]
  textures, renders, rows = {}, {}, []
  t_start = time.time()
  try:
    for render_name, fit_name in pairs:
      render_model = bfm.load(render_name)
      fit_model = bfm.load(fit_name)
      if render_name not in renders:
        textures[render_name] = make_textures(render_model, frontal,
                                              FLAGS.landmarks)
        folder = os.path.join(work, render_name)
        os.makedirs(folder, exist_ok=True)
        renders[render_name] = render_set(
            render_model, textures[render_name], backgrounds, folder,
            np.random.RandomState([FLAGS.fit_benchmark_seed,
                                   sum(map(ord, render_name))]),
            FLAGS.fit_benchmark_images_per_bin, size)
      records = [dict(r) for r in renders[render_name]]
      pipeline = command.build_pipeline(fit_model)
      seconds = reconstruct_set(pipeline, records, FLAGS.batch_size)
      score(render_model, fit_model, records)
      pair_rows = summarize(records, render_name, fit_name, seconds)
      rows.extend(pair_rows)
      for row in pair_rows:
        print('%s -> %s yaw %2d-%2d: detected %d/%d (%d off the face)  NME '
              '%s  mean face %s  median |yaw err| %s  %.1f s/photo' % (
                  render_name, fit_name, row['yaw_range'][0],
                  row['yaw_range'][1], row['detected'], row['images'],
                  row['off_face'],
                  '%.3f' % row['nme_mm'] if 'nme_mm' in row else '-',
                  '%.3f' % row['mean_face_nme_mm']
                  if 'mean_face_nme_mm' in row else '-',
                  '%.1f' % row['yaw_error_deg_median']
                  if 'yaw_error_deg_median' in row else '-', seconds),
              flush=True)
  finally:
    if not FLAGS.fit_benchmark_work_dir:
      shutil.rmtree(work, ignore_errors=True)
  settings = {
      'renders': ('%d per yaw bin and sign, %d px, perspective camera at '
                  '%.0f mm, skins from %d frontal sample photos, defocused '
                  'photo-patch backgrounds, pitch within +-%g deg, roll '
                  'within +-%g deg' % (
                      FLAGS.fit_benchmark_images_per_bin, size,
                      textured_faces.CAMERA_DISTANCE_MM, MAX_TEXTURES,
                      FLAGS.fit_benchmark_max_pitch_deg,
                      FLAGS.fit_benchmark_max_roll_deg)),
      'landmarks': FLAGS.landmarks,
      'fit_steps': FLAGS.fit_steps,
      'fit_photo_weight': FLAGS.fit_photo_weight,
      'fit_detail_steps': FLAGS.fit_detail_steps,
      'batch_size': FLAGS.batch_size,
      'seed': FLAGS.fit_benchmark_seed,
      'wall_seconds': round(time.time() - t_start, 1),
  }
  result = {
      'bins': rows,
      'command': ' '.join(['python eval/fit_benchmark.py'] +
                          [a for a in sys.argv[1:] if a.startswith('--')]),
      'git_commit': provenance.git_commit(),
      'settings': settings,
  }
  os.makedirs(FLAGS.fit_benchmark_out, exist_ok=True)
  stem = os.path.join(FLAGS.fit_benchmark_out, FLAGS.fit_benchmark_name)
  with open(stem + '.json', 'w') as f:
    json.dump(result, f, indent=1)
  with open(stem + '.md', 'w') as f:
    f.write(markdown(result))
  print(markdown(result))
  return result


def main(argv):
  run(argv)


if __name__ == '__main__':
  app.run(main)
