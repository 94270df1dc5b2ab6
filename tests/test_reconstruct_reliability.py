"""Reliability of the reconstruct command (issue 16).

In-process: the output-set protocol of reconstruct/outputs.py (per-face
lock, refusal of existing outputs, atomic set with its completion marker,
nothing left behind by a failed or interrupted write, Ctrl-C held back
during the commit) and the --out check. As a user runs it (`python -m
reconstruct` in subprocesses, tiny settings): two runs started together on
the same photos and --out, an EXIF-rotated phone photo and a 1x1 image among
them, a rerun that is refused, Ctrl-C, an unusable --out, --texture_size=0,
and the one-line message of an install without tensorflow-graphics. Runs
that need the shared photos skip with the reason when they are absent.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np
from PIL import Image
import tensorflow as tf

from bfm import mesh_io
from reconstruct import command
from reconstruct import outputs
from tests import test_utils

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PHOTO = os.path.join('faces', 'celeba_sample', '000002.jpg')
TINY = ['--fit', '--bfm=synthetic', '--landmarks=dlib', '--fit_steps=5',
        '--fit_detail_steps=2', '--fit_uv_size=32', '--texture_size=64',
        '--image_size=128']
TIMEOUT_S = 900


_start = test_utils.start_reconstruct


def _run(args):
  proc = _start(args)
  out, err = proc.communicate(timeout=TIMEOUT_S)
  return proc.returncode, out, err


def _tempdir(test):
  folder = tempfile.TemporaryDirectory(prefix='test_reliability_')
  test.addCleanup(folder.cleanup)
  return folder.name


def _phone_photo(folder):
  """The shared photo stored turned 90 degrees with EXIF Orientation=6."""
  upright = Image.open(test_utils.require_data(PHOTO)).convert('RGB')
  exif = Image.Exif()
  exif[0x0112] = 6  # display = the stored pixels turned 90 degrees clockwise
  path = os.path.join(folder, 'phone.jpg')
  upright.transpose(Image.Transpose.ROTATE_90).save(path, exif=exif.tobytes(),
                                                    quality=95)
  return path


def _reported(out, out_dir):
  """Names a run reported as reconstructed ('PHOTO -> OUT/NAME: ...')."""
  prefix = ' -> %s%s' % (out_dir, os.sep)
  return sorted(line.split(prefix, 1)[1].split(':', 1)[0]
                for line in out.splitlines() if prefix in line)


class _Face:
  """The parts of a FaceResult that write_face needs around _write_files."""

  def __init__(self, name):
    self.prepared = type('Prepared', (), {'name': name, 'path': name + '.jpg'})


class OutputSetTest(tf.test.TestCase):
  """reconstruct/outputs.py's claim / write / commit protocol."""

  def setUp(self):
    super().setUp()
    self.out = _tempdir(self)

  def _fake_writer(self, fail_after=None, content='new'):
    """Replaces _write_files: writes every file (or fails after some)."""

    def write(paths, final, *unused_args):
      del final, unused_args
      for i, path in enumerate(paths.values()):
        if fail_after is not None and i == fail_after:
          raise OSError(28, 'No space left on device')
        with open(path, 'w') as f:
          f.write(content)

    original = outputs._write_files  # pylint: disable=protected-access
    self.addCleanup(setattr, outputs, '_write_files', original)
    outputs._write_files = write  # pylint: disable=protected-access

  def _write(self, name, run_id='run', texture_size=64):
    return outputs.write_face(self.out, _Face(name), None, None, 32, 1.0,
                              'fit', texture_size, None, run_id=run_id)

  def _listing(self):
    return sorted(os.listdir(self.out))

  def test_a_face_is_locked_against_a_second_writer(self):
    lock = outputs.claim(self.out, 'a')
    with self.assertRaisesRegex(outputs.OutputCollision,
                                r'a: another reconstruct run is writing .*'
                                r'held by pid %d' % os.getpid()):
      outputs.claim(self.out, 'a', overwrite=True)
    outputs.claim(self.out, 'b').release()  # other names are free
    lock.release()
    outputs.claim(self.out, 'a').release()
    self.assertEqual(self._listing(), [])

  def test_a_lock_file_of_a_dead_run_does_not_block(self):
    with open(os.path.join(self.out, outputs.LOCK_FORMAT % 'a'), 'w') as f:
      f.write('pid 1 on elsewhere')  # left by a SIGKILLed run: no flock
    outputs.claim(self.out, 'a').release()

  def test_existing_outputs_are_refused_unless_overwrite(self):
    self._fake_writer(content='first')
    lock = outputs.claim(self.out, 'a')
    self._write('a', 'run1')
    lock.release()
    with self.assertRaisesRegex(outputs.OutputCollision,
                                r'a: outputs already in .*--overwrite'):
      outputs.claim(self.out, 'a')
    self._fake_writer(content='second')
    lock = outputs.claim(self.out, 'a', overwrite=True)
    self._write('a', 'run2')
    lock.release()
    marker = outputs.read_marker(self.out, 'a')
    self.assertEqual(marker['run_id'], 'run2')
    with open(os.path.join(self.out, 'a_coarse.obj')) as f:
      self.assertEqual(f.read(), 'second')

  def test_set_and_marker_appear_together(self):
    self._fake_writer()
    paths = self._write('a')
    names = [os.path.basename(p) for p in paths.values()]
    self.assertEqual(self._listing(), sorted(names + ['a_complete.json']))
    marker = outputs.read_marker(self.out, 'a')
    self.assertEqual(sorted(marker['files']), sorted(names))
    self.assertEqual(marker['pid'], os.getpid())
    with open(paths['_vis.png'], 'w') as f:  # a file changed afterwards
      f.write('other run')
    self.assertIsNone(outputs.read_marker(self.out, 'a'))

  def test_full_disk_leaves_the_folder_as_it_was(self):
    self._fake_writer(content='old')
    self._write('a', 'old')
    before = {n: open(os.path.join(self.out, n)).read()
              for n in self._listing()}
    self._fake_writer(fail_after=3)
    with self.assertRaisesRegex(OSError, 'No space left'):
      self._write('a', 'new')
    after = {n: open(os.path.join(self.out, n)).read()
             for n in self._listing()}
    self.assertEqual(after, before)  # no temporary file, old set intact
    self.assertEqual(outputs.read_marker(self.out, 'a')['run_id'], 'old')
    with self.assertRaises(OSError):
      self._write('b')
    self.assertFalse([n for n in self._listing() if n.startswith(('b', '.b'))])

  def test_texture_size_zero_is_a_value_error_before_any_file(self):
    with self.assertRaisesRegex(ValueError, '--texture_size must be >= 1'):
      self._write('a', texture_size=0)
    self.assertEqual(self._listing(), [])

  def test_ctrl_c_during_the_commit_waits_for_the_whole_set(self):
    self._fake_writer()
    original = os.replace

    def replace_then_interrupt(src, dst):
      original(src, dst)
      if dst.endswith('_coarse.obj'):  # the first rename of the set
        os.kill(os.getpid(), signal.SIGINT)

    self.addCleanup(setattr, os, 'replace', original)
    os.replace = replace_then_interrupt
    with self.assertRaises(KeyboardInterrupt):
      self._write('a')
    os.replace = original
    self.assertIsNotNone(outputs.read_marker(self.out, 'a'))
    self.assertFalse([n for n in self._listing() if n.startswith('.')])

  def test_output_folder_check(self):
    path = os.path.join(self.out, 'file')
    open(path, 'w').close()
    self.assertRegex(command.check_output_folder(path), 'is a file')
    self.assertRegex(command.check_output_folder(os.path.join(path, 'sub')),
                     'cannot write there')
    self.assertIsNone(command.check_output_folder(
        os.path.join(self.out, 'new', 'folder')))
    self.assertEqual(self._listing(), ['file', 'new'])
    if os.geteuid() != 0:  # root writes into read-only folders
      read_only = os.path.join(self.out, 'read_only')
      os.makedirs(read_only)
      os.chmod(read_only, 0o555)
      self.addCleanup(os.chmod, read_only, 0o755)
      self.assertRegex(
          command.check_output_folder(os.path.join(read_only, 'out')),
          'cannot write there')


class CommandTest(tf.test.TestCase):
  """The command as a user runs it."""

  def test_unusable_out_and_bad_texture_size_fail_before_fitting(self):
    folder = _tempdir(self)
    photo = os.path.join(folder, 'x.png')
    Image.new('RGB', (64, 64)).save(photo)
    out_file = os.path.join(folder, 'out.txt')
    open(out_file, 'w').close()
    for args, message in (
        (['--out=' + os.path.join(out_file, 'sub')],
         r'--out=\S+out.txt/sub: cannot write there'),
        (['--texture_size=0', '--out=' + folder],
         '--texture_size must be >= 1, got 0')):
      code, out, err = _run([photo] + TINY + args)
      self.assertEqual(code, command.EXIT_USAGE, out + err)
      self.assertRegex(err, message)
      self.assertNotIn('Traceback', err)
      self.assertNotIn('mode: --fit', out)  # stopped before the pipeline

  def test_missing_tensorflow_graphics_names_the_install_command(self):
    script = (
        'import sys\n'
        'class Block:\n'
        '  def find_spec(self, name, path=None, target=None):\n'
        '    if name.split(".")[0] == "tensorflow_graphics":\n'
        '      raise ModuleNotFoundError("No module named %r" % name)\n'
        'sys.meta_path.insert(0, Block())\n')
    command_line = 'pip install --no-deps tensorflow-graphics==2021.12.3'
    run = subprocess.run(
        [sys.executable, '-c', script + 'from renderer import camera\n'],
        cwd=REPO, env=test_utils.reconstruct_env(), capture_output=True,
        text=True, timeout=300)
    self.assertNotEqual(run.returncode, 0)
    last = run.stderr.strip().splitlines()[-1]
    self.assertIn('ImportError: tensorflow-graphics is missing', last)
    self.assertIn(command_line, last)
    # The reconstruct command: that line alone, no traceback.
    run = subprocess.run(
        [sys.executable, '-c', script + 'import runpy\n'
         'sys.argv = ["reconstruct", "photo.jpg"]\n'
         'runpy.run_module("reconstruct", run_name="__main__")\n'],
        cwd=REPO, env=test_utils.reconstruct_env(), capture_output=True,
        text=True, timeout=300)
    self.assertEqual(run.returncode, command.EXIT_USAGE, run.stderr)
    self.assertNotIn('Traceback', run.stderr)
    self.assertIn('reconstruct: tensorflow-graphics is missing',
                  run.stderr.strip().splitlines()[-1])
    self.assertIn(command_line, run.stderr)

  def test_two_runs_on_the_same_photos_and_out(self):
    """Started together: every face complete and from one run, each run
    reports only what it wrote; an EXIF-rotated photo is reconstructed and
    a 1x1 image gets our message; a rerun is refused before fitting."""
    folder = _tempdir(self)
    photos = [_phone_photo(folder),
              test_utils.require_data('faces', 'aflw2000_sample',
                                      'image00202.jpg'),
              os.path.join(folder, 'dot.png')]
    Image.new('RGB', (1, 1)).save(photos[2])
    out_dir = os.path.join(folder, 'out')
    args = photos + TINY + ['--out=' + out_dir, '--batch_size=1']
    procs = [_start(args), _start(args)]
    results = [p.communicate(timeout=TIMEOUT_S) for p in procs]
    names = ['phone', 'image00202']
    reported = []
    too_small = 0
    for proc, (out, err) in zip(procs, results):
      self.assertEqual(proc.returncode, 0 if _reported(out, out_dir) else 1,
                       out + err)
      self.assertNotIn('Traceback', err)
      # The 1x1 photo: our message, unless the other run held its lock at the
      # moment this one checked it (faces are checked under their lock
      # before the photo is read).
      self.assertRegex(err, r'dot.png: (dlib_landmarks: image too small: 1x1,'
                       r' need at least 32 px|dot: another reconstruct run is'
                       r' writing)')
      too_small += ('dot.png: dlib_landmarks: image too small: 1x1, need at '
                    'least 32 px') in err
      mine = _reported(out, out_dir)
      for name in mine:  # success only for what this run wrote
        self.assertEqual(outputs.read_marker(out_dir, name)['pid'], proc.pid)
      reported += mine
      for name in set(names) - set(mine):  # the other run's, refused here
        self.assertRegex(err, r'%s: (another reconstruct run is writing|'
                         r'outputs already in)' % name)
    self.assertEqual(sorted(reported), sorted(names))  # each face once
    self.assertGreaterEqual(too_small, 1)  # at least one run read it
    for name in names:
      marker = outputs.read_marker(out_dir, name, verify=True)
      self.assertIsNotNone(marker, name)  # files match: one run wrote all
      paths = outputs.output_paths(out_dir, name)
      for suffix, path in paths.items():
        if suffix.endswith('.obj'):
          self.assertGreater(mesh_io.read_obj(path).num_triangles, 0)
        if suffix.endswith('.png'):
          self.assertIsNotNone(cv2.imread(path, cv2.IMREAD_UNCHANGED), path)
      with open(paths['_displacement.json']) as f:
        json.load(f)
    self.assertEqual(
        sorted(os.listdir(out_dir)),
        sorted(os.path.basename(p) for n in names
               for p in list(outputs.output_paths(out_dir, n).values()) +
               [outputs.marker_path(out_dir, n)]))  # no lock, no temporary
    # The phone photo was read upright: its vis shows the displayed size.
    vis = Image.open(outputs.output_paths(out_dir, 'phone')['_vis.png'])
    self.assertEqual(vis.size[1] - 128, 594)
    # A rerun: every face refused before any fit, nothing touched.
    before = {n: os.stat(os.path.join(out_dir, n)).st_mtime_ns
              for n in os.listdir(out_dir)}
    code, out, err = _run(photos[:2] + TINY + ['--out=' + out_dir])
    self.assertEqual(code, command.EXIT_NOTHING_RECONSTRUCTED, out + err)
    self.assertEqual(err.count('pass --overwrite'), 2, err)
    self.assertEqual(before, {n: os.stat(os.path.join(out_dir, n)).st_mtime_ns
                              for n in os.listdir(out_dir)})

  def test_ctrl_c_ends_with_the_summary(self):
    folder = _tempdir(self)
    src = test_utils.require_data(PHOTO)
    photos = []
    for i in range(3):
      photos.append(os.path.join(folder, 'p%d.jpg' % i))
      os.symlink(src, photos[-1])
    out_dir = os.path.join(folder, 'out')
    proc = _start(photos + TINY + ['--out=' + out_dir, '--batch_size=1'])
    deadline = time.time() + TIMEOUT_S
    while (not os.path.exists(outputs.marker_path(out_dir, 'p0')) and
           proc.poll() is None and time.time() < deadline):
      time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=TIMEOUT_S)
    self.assertEqual(proc.returncode, command.EXIT_INTERRUPTED, out + err)
    self.assertNotIn('Traceback', err)
    self.assertRegex(out, r'Summary: reconstructed [12] of 3 inputs')
    self.assertRegex(err, r'Interrupted: [12] inputs? not processed')
    done = _reported(out, out_dir)
    self.assertIn('p0', done)
    for name in ('p0', 'p1', 'p2'):
      files = outputs.existing_outputs(out_dir, name)
      if name in done:
        self.assertIsNotNone(outputs.read_marker(out_dir, name))
      else:  # nothing, or (interrupted between the commit and the report)
        # a complete set
        self.assertTrue(not files or outputs.read_marker(out_dir, name))
    self.assertFalse([n for n in os.listdir(out_dir) if n.startswith('.')])


if __name__ == '__main__':
  tf.test.main()
