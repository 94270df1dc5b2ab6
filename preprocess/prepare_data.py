r"""Prepares face photos for coarse training: crops, landmarks, skin masks.

  python preprocess/prepare_data.py --images=DIR --out=DIR [--max_images=1000]
      [--landmarks=facemesh|dlib]

For every photo under --images (recursively, sorted by path):
  1. read it (preprocess/image_io.py); grayscale, palette, alpha or CMYK
     files are converted to RGB and the conversion is logged; the EXIF
     orientation is applied (sizes are the displayed ones);
  2. find faces and their 68 iBUG landmarks with --landmarks
     (preprocess/face_landmarks.py detect_faces, the same flag and code as
     the reconstruct command):
       facemesh (default): MediaPipe BlazeFace full-range detector + FaceMesh
         (468 points mapped to 68; follows faces to profile; jaw points are
         fixed surface points);
       dlib: dlib's HOG frontal detector (upsample 1), falling back to dlib's
         CNN detector when HOG finds none (--cnn_fallback), and dlib's
         68-point shape predictor (--landmark_model, default: the copy
         shipped in the face-recognition-models package); jaw points follow
         the visible silhouette.
     Both run on a copy whose longer side is at most 1024 px; photos too
     small for the detector give outcome no_face;
  3. several faces: the LARGEST is kept and the photo's log line says how
     many were found (--multiple_faces=skip drops such photos instead);
  4. crop a square around the landmarks and resize it to --image_size
     (224, the network input; preprocess/dlib_landmarks.py crop_face);
  5. skin mask from the landmarks (preprocess/skin_mask.py: landmark hull minus
     eyes, eyebrows and inner mouth; NO face parser is available here, so
     hair or occluders inside the hull count as skin);
  6. write one record (preprocess/face_records.py format) to TFRecord shards
     faces-00000.tfrecord, ... of --images_per_shard records. Each record
     stores its landmark source ('landmark_source'): coarse/train.py matches
     the jaw with the same convention (fixed vertices for facemesh, the
     sliding silhouette contour for dlib; records without it are dlib's).

Every file gets one log line with its outcome; files that give no record
(no face, unreadable or corrupt, not an image, an unexpected error) say why
and processing goes on. A summary with counts per outcome ends the run, and
--out/report.tsv lists every file, its outcome and the reason. The run stops
early once --max_images faces were written (the paper trains on 1,000 CelebA
images).

Exit status: 0 when at least one face was written, 1 otherwise (bad flags,
no input files, or no usable face).
"""

import collections
import os
import time

from absl import app
from absl import flags
from absl import logging
import numpy as np
import tensorflow as tf

from preprocess import dlib_landmarks
from preprocess import face_crop
from preprocess import face_landmarks
from preprocess import face_records
from preprocess import image_io
from preprocess import skin_mask
from flags import coarse_flags

FLAGS = flags.FLAGS

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.gif', '.webp', '.tif',
                    '.tiff', '.ppm', '.pgm', '.pbm', '.jp2')
SHARD_PATTERN = 'faces-%05d.tfrecord'
REPORT_FILE = 'report.tsv'

# Outcomes (report.tsv's second column and the summary's counters).
WRITTEN = 'written'
NO_FACE = 'no_face'
SEVERAL_SKIPPED = 'several_faces_skipped'
UNREADABLE = 'unreadable'
NOT_AN_IMAGE = 'not_an_image'
ERROR = 'error'
NOT_VISITED = 'not_visited'
OUTCOMES = (WRITTEN, NO_FACE, SEVERAL_SKIPPED, UNREADABLE, NOT_AN_IMAGE, ERROR,
            NOT_VISITED)
# Notes on written records (counted too).
GRAYSCALE = 'grayscale_converted'
CONVERTED = 'other_mode_converted'
SEVERAL_LARGEST = 'several_faces_largest_kept'
CNN = 'found_by_cnn_fallback'
NOTES = (GRAYSCALE, CONVERTED, SEVERAL_LARGEST, CNN)

Summary = collections.namedtuple('Summary', ['counts', 'shards', 'report'])
Summary.__doc__ = """Result of `prepare`.

  counts: collections.Counter over OUTCOMES and NOTES.
  shards: list of written TFRecord paths.
  report: list of (relative path, outcome, reason) per file.
"""


def list_files(folder):
  """All files under `folder`, sorted, as (path, path relative to folder)."""
  out = []
  for root, dirs, files in os.walk(folder):
    dirs.sort()
    for name in sorted(files):
      path = os.path.join(root, name)
      out.append((path, os.path.relpath(path, folder)))
  return out


class ShardWriter:
  """TFRecord shards faces-00000.tfrecord ... of `per_shard` records each."""

  def __init__(self, folder, per_shard):
    if per_shard <= 0:
      raise ValueError('--images_per_shard must be > 0, got %d' % per_shard)
    self.folder = folder
    self.per_shard = per_shard
    self.paths = []
    self._writer = None
    self._count = 0

  def write(self, record):
    """Appends one serialized record; returns the shard's file name."""
    if self._writer is None or self._count == self.per_shard:
      self.close()
      self.paths.append(os.path.join(self.folder,
                                     SHARD_PATTERN % len(self.paths)))
      self._writer = tf.io.TFRecordWriter(self.paths[-1])
      self._count = 0
    self._writer.write(record)
    self._count += 1
    return os.path.basename(self.paths[-1])

  def close(self):
    if self._writer is not None:
      self._writer.close()
      self._writer = None


class FaceFinder:
  """Faces of one landmark source: face_landmarks.detect_faces, or a given
  detector object.

  Args:
    source: one of face_landmarks.SOURCES, stored with every record.
    landmark_model: dlib .dat path or None (dlib only).
    cnn_fallback: bool (dlib only).
    detector: None, or an object whose detect(image) returns faces with
      box, landmarks and detector fields, largest first (e.g. a
      dlib_landmarks.FaceDetector reused with source 'dlib').
  """

  def __init__(self, source, landmark_model=None, cnn_fallback=True,
               detector=None):
    self.source = face_landmarks.check_source(source)
    self.landmark_model = landmark_model
    self.cnn_fallback = bool(cnn_fallback)
    self.detector = detector
    # Without the model files: one FileNotFoundError here, not one per photo.
    if detector is None and source == 'dlib':
      self.landmark_model = dlib_landmarks.find_landmark_model(landmark_model)
    elif detector is None:
      from preprocess import mediapipe_landmarks  # pylint: disable=g-import-not-at-top
      mediapipe_landmarks.find_model_dir()

  def detect(self, image):
    """Faces in [H,W,3] float32 RGB `image`, largest first.

    Raises:
      ValueError: an image the detector refuses (too small).
    """
    if self.detector is not None:
      return self.detector.detect(image)
    return face_landmarks.detect_faces(image, self.source, self.landmark_model,
                                       self.cnn_fallback)

  def description(self):
    """The detector in words, for the no-face reason."""
    d = self.detector
    if d is not None and hasattr(d, 'upsample'):
      return 'HOG detector (upsample %d)%s' % (
          d.upsample, ' and CNN fallback' if d.has_cnn_fallback else '')
    if self.source == 'dlib':
      return 'HOG detector (upsample 1)%s' % (
          ' and CNN fallback' if self.cnn_fallback else '')
    return 'MediaPipe BlazeFace full-range detector'

  def log(self):
    """Logs the landmark source (and dlib's model and fallback)."""
    logging.info('Landmarks (--landmarks=%s): %s', self.source,
                 face_landmarks.describe(self.source))
    if self.source == 'dlib':
      d = self.detector
      logging.info('dlib landmark model: %s; CNN fallback: %s',
                   getattr(d, 'landmark_model', self.landmark_model),
                   'on' if getattr(d, 'has_cnn_fallback', self.cnn_fallback)
                   else 'off')


def process_photo(path, finder, size, multiple_faces='largest'):
  """One photo -> (record bytes or None, outcome, reason, notes).

  Args:
    path: the photo file. finder: FaceFinder. size: crop side, pixels.
    multiple_faces: 'largest' or 'skip'.

  Raises only on programming errors; expected failures (unreadable file,
  no face, several faces with multiple_faces='skip') are returned.
  """
  try:
    loaded = image_io.load_image(path)
  except ValueError as e:
    return None, UNREADABLE, str(e), []
  notes, reasons = [], []
  if loaded.converted_from is not None:
    if image_io.is_grayscale_mode(loaded.converted_from):
      notes.append(GRAYSCALE)
      reasons.append('grayscale (PIL mode %s) converted to RGB' %
                     loaded.converted_from)
    else:
      notes.append(CONVERTED)
      reasons.append('PIL mode %s converted to RGB' % loaded.converted_from)
  h, w = loaded.image.shape[:2]
  try:
    faces = finder.detect(loaded.image)
  except ValueError as e:  # too small for the detector
    return None, NO_FACE, str(e), notes
  if not faces:
    return None, NO_FACE, 'no face found by the %s in %dx%d image' % (
        finder.description(), w, h), notes
  if len(faces) > 1:
    if multiple_faces == 'skip':
      reason = '%d faces found; skipped (--multiple_faces=skip)' % len(faces)
      return None, SEVERAL_SKIPPED, reason, notes
    notes.append(SEVERAL_LARGEST)
    box = faces[0].box
    reasons.append('%d faces found; kept the largest (%dx%d px box)' %
                   (len(faces), box[2] - box[0], box[3] - box[1]))
  face = faces[0]
  if face.detector == 'cnn':
    notes.append(CNN)
    reasons.append('found by the CNN fallback detector')
  crop, landmarks, transform = face_crop.crop_face(loaded.image,
                                                        face.landmarks, size)
  mask = skin_mask.skin_mask(landmarks, size)
  pixels = np.clip(np.round(crop * 255.0), 0, 255).astype(np.uint8)
  record = face_records.serialize(pixels, landmarks, mask,
                                  os.path.basename(path),
                                  landmark_source=finder.source)
  reasons.append('crop %d px from the photo\'s (%.0f, %.0f) side %.0f px' %
                 (size, transform.left, transform.top,
                  transform.scale * size))
  return record, WRITTEN, '; '.join(reasons), notes


def prepare(images, out, size=224, max_images=0, landmark_model=None,
            multiple_faces='largest', cnn_fallback=True, images_per_shard=500,
            detector=None, landmarks='facemesh'):
  """Runs the preparation (module docstring); returns a Summary.

  Args:
    images: input folder. out: output folder (created; must hold no shards).
    size: crop side in pixels. max_images: stop after this many written
      faces (0 = no limit). landmark_model: dlib .dat path or None (dlib).
    multiple_faces: 'largest' or 'skip'. cnn_fallback: bool (dlib).
    images_per_shard: records per TFRecord shard.
    detector: None (face_landmarks.detect_faces), or an object whose
      detect(image) gives the faces of source `landmarks` (e.g. a
      dlib_landmarks.FaceDetector to reuse with landmarks='dlib').
    landmarks: the landmark source, one of face_landmarks.SOURCES; stored
      with every record.

  Raises:
    ValueError / FileNotFoundError: bad arguments (no input folder, output
      already holding shards, no landmark model); never for a bad photo.
  """
  if not images or not os.path.isdir(images):
    raise ValueError('--images: %r is not a folder' % (images,))
  if not out:
    raise ValueError('--out: an output folder is required')
  if multiple_faces not in ('largest', 'skip'):
    raise ValueError('--multiple_faces must be largest or skip, got %r' %
                     (multiple_faces,))
  if size < 32:
    raise ValueError('--image_size must be >= 32, got %d' % size)
  os.makedirs(out, exist_ok=True)
  old = tf.io.gfile.glob(os.path.join(out, '*.tfrecord*'))
  if old:
    raise ValueError('--out: %r already holds %d TFRecord file(s) (e.g. %s); '
                     'choose an empty folder or delete them' %
                     (out, len(old), os.path.basename(old[0])))
  finder = FaceFinder(landmarks, landmark_model, cnn_fallback, detector)
  finder.log()
  files = list_files(images)
  logging.info('%d files under %s', len(files), images)
  counts = collections.Counter()
  report = []
  writer = ShardWriter(out, images_per_shard)
  start = time.time()
  try:
    for i, (path, rel) in enumerate(files):
      if max_images and counts[WRITTEN] >= max_images:
        for _, rest in files[i:]:
          report.append((rest, NOT_VISITED, '--max_images=%d reached' %
                         max_images))
        counts[NOT_VISITED] += len(files) - i
        logging.info('--max_images=%d reached: %d file(s) not visited',
                     max_images, len(files) - i)
        break
      if not rel.lower().endswith(IMAGE_EXTENSIONS):
        outcome, notes, record = NOT_AN_IMAGE, [], None
        reason = 'extension not one of %s' % ' '.join(IMAGE_EXTENSIONS)
      else:
        try:
          record, outcome, reason, notes = process_photo(
              path, finder, size, multiple_faces)
        except Exception as e:  # pylint: disable=broad-except (never crash)
          record, outcome, notes = None, ERROR, []
          reason = 'unexpected %s: %s' % (type(e).__name__, e)
      if record is not None:
        shard = writer.write(record)
        reason = '%s -> %s' % (reason, shard)
      counts[outcome] += 1
      counts.update(notes)
      report.append((rel, outcome, reason))
      clean = outcome == WRITTEN and not notes
      (logging.info if clean else logging.warning)(
          '[%d/%d] %s: %s (%s)', i + 1, len(files), rel, outcome, reason)
  finally:
    writer.close()
    with open(os.path.join(out, REPORT_FILE), 'w') as f:
      f.write('file\toutcome\treason\n')
      for row in report:
        f.write('\t'.join(str(c).replace('\t', ' ').replace('\n', ' ')
                          for c in row) + '\n')
  logging.info(
      'Summary (%.1f s): %d files; %s. Shards: %d in %s; per-file report %s',
      time.time() - start, len(files),
      ', '.join('%s %d' % (k, counts[k]) for k in OUTCOMES + NOTES),
      len(writer.paths), out, os.path.join(out, REPORT_FILE))
  return Summary(counts, list(writer.paths), report)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('unexpected arguments: %s' % ' '.join(argv[1:]))
  try:
    summary = prepare(FLAGS.images, FLAGS.out, FLAGS.image_size,
                      FLAGS.max_images, FLAGS.landmark_model,
                      FLAGS.multiple_faces, FLAGS.cnn_fallback,
                      FLAGS.images_per_shard, landmarks=FLAGS.landmarks)
  except (ValueError, FileNotFoundError) as e:
    logging.error('preprocess/prepare_data.py: %s', e)
    return 1
  if not summary.counts[WRITTEN]:
    logging.error('preprocess/prepare_data.py: no usable face under %s; nothing '
                  'written (see %s)', FLAGS.images,
                  os.path.join(FLAGS.out, REPORT_FILE))
    return 1
  return 0


if __name__ == '__main__':
  coarse_flags.define_flags()
  app.run(main)
