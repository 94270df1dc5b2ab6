"""Times the rasterizer op and the differentiable renderer against peers.

Run `python -m renderer.benchmark [--tf_mesh_renderer_dir=DIR]` (after
`pip install -e .`). The mesh is a dense grid heightfield of 189 x 189 =
35,721 vertices and 70,688 triangles (a BFM face has 35,709 / 70,789)
covering 81% of the image. Each figure is the median wall time of several
runs in milliseconds; figures compared with each other are measured in the
same run in alternating rounds (fair under uneven machine load).

Renderers:
  ours: renderer.rasterize_op.rasterize (forward: ids, perspective
    barycentrics and depth of every pixel, all images in one call) and
    renderer.mesh_renderer.render_clip (forward+backward: the op, its
    compiled barycentrics gradient, the compiled colour interpolation and
    its gradient).
  ours_tfgrad (forward+backward, batch 1): render_clip with
    barycentrics_gradient='tf': our op for the ids, barycentrics and
    interpolation in TensorFlow ops (renderer/interpolate.py, the reference).
  tfg: tensorflow-graphics' CPU rasterizer kernel (rasterize_triangles_
    {impl,op}.cc from its wheel; its shipped library does not load on this
    TensorFlow), compiled here with the tf.sysconfig flags and -O3; one image
    per call. Forward+backward: its kernel for the triangle ids, its
    TensorFlow-ops barycentrics (tensorflow_graphics.rendering.barycentrics.
    differentiable_barycentrics), colour interpolation in TensorFlow ops
    (renderer.interpolate.interpolate).
  tfmr (with --tf_mesh_renderer_dir, a checkout of google/tf_mesh_renderer):
    its C++ kernels mesh_renderer/kernels/rasterize_triangles_{impl,op,grad}.cc
    compiled with g++, the tf.sysconfig flags and -O3 into a temporary folder
    (op names prefixed with Tfmr in the temporary copy, since tfg registers
    the same names; headers from the checkout); its gradient op registered
    as its forward op's gradient; one image per call; colour interpolation
    in TensorFlow ops (renderer.interpolate.interpolate; tf_mesh_renderer
    interpolates with TensorFlow ops too).
Batch 27 of tfg and tfmr is 27 calls in one tf.function (tfg's
forward+backward at batch 1 only: seconds per call at batch 27).

Figures: <renderer>_fwd_<size>_b<batch> (forward, depth fetched) and
<renderer>_fwd_bwd_<size>_b<batch> (forward and backward of sum(image *
weights) for a colour image; gradients w.r.t. vertices and colours, in a
tf.function), then ratio_ours/<theirs> lines (ours / theirs, same
figure). Ours' batch-27 figures say how many times one image they take
with one image timed again in the same rounds (the ..._b1_same_rounds
lines); a peer's, with its batch-1 figure.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf

from renderer import interpolate
from renderer import mesh_renderer
from renderer import rasterize_op

GRID = 189  # 35,721 vertices, 70,688 triangles.
BIG_BATCH = 27
# Stop repeating a measurement after this many seconds per function (at
# least 3 runs of each).
SECONDS_PER_FIGURE = 4.0
MAX_RUNS = 15


def grid_mesh(batch, grid=GRID, extent=0.9, seed=0):
  """A heightfield over NDC [-extent, extent]^2 in front of the camera.

  Returns:
    clip_vertices [batch, grid^2, 4] float32 (w = 1, per-image random bumps
    so that images differ), triangles [2 (grid-1)^2, 3] int32 (CCW in NDC).
  """
  rng = np.random.RandomState(seed)
  coords = np.linspace(-extent, extent, grid)
  x, y = np.meshgrid(coords, coords)
  vertices = []
  for _ in range(batch):
    fx, fy, phase = rng.uniform(1.0, 4.0, 3)
    z = 0.4 * np.sin(fx * x + phase) * np.cos(fy * y)
    vertices.append(np.stack([x, y, z, np.ones_like(x)], -1).reshape(-1, 4))
  i, j = np.meshgrid(np.arange(grid - 1), np.arange(grid - 1))
  a = (j * grid + i).ravel()
  b, c, d = a + 1, a + grid + 1, a + grid
  triangles = np.concatenate([np.stack([a, b, c], -1),
                              np.stack([a, c, d], -1)]).astype(np.int32)
  return np.stack(vertices).astype(np.float32), triangles


def median_ms(*fns):
  """Median wall times of each fn() in milliseconds.

  Several functions are timed in alternating rounds (fair when other
  processes load the machine unevenly over time); each round runs a function
  once untimed (warm caches) and then `per_round` times timed.
  """
  per_round = 3 if len(fns) > 1 else 1
  for fn in fns:
    fn()
  times = [[] for _ in fns]
  start = time.perf_counter()
  while len(times[0]) < 3 or (
      len(times[0]) < MAX_RUNS and
      time.perf_counter() - start < SECONDS_PER_FIGURE * len(fns)):
    for fn, fn_times in zip(fns, times):
      if per_round > 1:
        fn()
      for _ in range(per_round):
        t0 = time.perf_counter()
        fn()
        fn_times.append(time.perf_counter() - t0)
  medians = [1000.0 * float(np.median(t)) for t in times]
  return medians[0] if len(fns) == 1 else medians


def _compile(sources, library, include_dirs=()):
  """g++ -O3 with the tf.sysconfig flags; one process per source."""
  folder = os.path.dirname(library)
  processes, objects = [], []
  for source in sources:
    obj = os.path.join(folder, os.path.basename(source) + '.o')
    objects.append(obj)
    processes.append(subprocess.Popen(
        ['g++', '-c', '-fPIC', '-O3', '-w'] + tf.sysconfig.get_compile_flags()
        + ['-I' + d for d in include_dirs] + [source, '-o', obj]))
  if any([p.wait() for p in processes]):  # Wait for all of them.
    raise OSError('compiling %s failed' % ' '.join(sources))
  subprocess.run(['g++', '-shared'] + objects + ['-o', library] +
                 tf.sysconfig.get_link_flags(), check=True)
  return tf.load_op_library(library)


def build_tfg_rasterizer(folder):
  """Compiles tensorflow-graphics' CPU rasterizer; returns its op function."""
  import tensorflow_graphics  # pylint: disable=g-import-not-at-top
  kernels = os.path.join(os.path.dirname(tensorflow_graphics.__file__),
                         'rendering', 'kernels')
  sources = [os.path.join(kernels, name) for name in
             ('rasterize_triangles_impl.cc', 'rasterize_triangles_op.cc')]
  return _compile(sources, os.path.join(folder, 'tfg_rasterizer.so'))


def build_tfmr_rasterizer(checkout, folder):
  """Compiles tf_mesh_renderer's kernels (forward and gradient ops).

  The sources are copied into `folder` with the op names prefixed by Tfmr
  (tfg's kernel registers RasterizeTriangles too); its header is included
  from the checkout. Registers TfmrRasterizeTrianglesGrad as the gradient of
  TfmrRasterizeTriangles. Returns the loaded library.
  """
  kernels = os.path.join(checkout, 'mesh_renderer', 'kernels')
  sources = []
  for name in ('impl', 'op', 'grad'):
    source = os.path.join(kernels, 'rasterize_triangles_%s.cc' % name)
    with open(source) as f:
      text = f.read().replace('"RasterizeTriangles', '"TfmrRasterizeTriangles')
    copy = os.path.join(folder, 'tfmr_rasterize_triangles_%s.cc' % name)
    with open(copy, 'w') as f:
      f.write(text)
    sources.append(copy)
  library = _compile(sources, os.path.join(folder, 'tfmr_rasterizer.so'),
                     include_dirs=[kernels, checkout])

  @tf.RegisterGradient('TfmrRasterizeTriangles')
  def _tfmr_grad(op, d_barycentrics, d_ids, d_z):
    del d_ids, d_z
    return [library.tfmr_rasterize_triangles_grad(
        op.inputs[0], op.inputs[1], op.outputs[0], op.outputs[1],
        d_barycentrics, image_width=op.get_attr('image_width'),
        image_height=op.get_attr('image_height')), None]

  del _tfmr_grad
  return library


def main(argv=None):
  global SECONDS_PER_FIGURE, MAX_RUNS  # pylint: disable=global-statement
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--tf_mesh_renderer_dir', default=None,
                      help='checkout of google/tf_mesh_renderer to compare '
                      'against (compiled into a temporary folder)')
  parser.add_argument('--skip_tfg', action='store_true',
                      help='do not build or time tensorflow-graphics')
  parser.add_argument('--seconds_per_figure', type=float,
                      default=SECONDS_PER_FIGURE,
                      help='time budget per function of a figure (at least '
                      '3 runs each); more gives steadier medians on a loaded '
                      'machine')
  parser.add_argument('--max_runs', type=int, default=MAX_RUNS,
                      help='at most this many timed runs per function')
  args = parser.parse_args(argv)
  SECONDS_PER_FIGURE, MAX_RUNS = args.seconds_per_figure, args.max_runs
  print('tensorflow %s, %d CPU cores visible' % (tf.__version__,
                                                os.cpu_count()))
  results = {}

  def report(name, ms, note=''):
    results[name] = ms
    print('%s: %.2f ms%s' % (name, ms, note), flush=True)

  clip_all, triangles = grid_mesh(BIG_BATCH)
  tris = tf.constant(triangles)
  print('mesh: %d vertices, %d triangles' % (clip_all.shape[1],
                                             triangles.shape[0]))
  folder = tempfile.mkdtemp()
  peers = {}  # name -> per-image forward fn(clip [N, 4], size) -> z.
  try:
    if not args.skip_tfg:
      try:
        tfg = build_tfg_rasterizer(folder)
        peers['tfg'] = lambda clip, size: tfg.rasterize_triangles(
            clip, tris, image_width=size, image_height=size, num_layers=1,
            face_culling_mode=0)
      except (subprocess.CalledProcessError, OSError, ImportError,
              tf.errors.NotFoundError) as e:
        print('tfg rasterizer could not be built: %s' % e, file=sys.stderr)
    if args.tf_mesh_renderer_dir:
      tfmr = build_tfmr_rasterizer(args.tf_mesh_renderer_dir, folder)
      peers['tfmr'] = lambda clip, size: tfmr.tfmr_rasterize_triangles(
          clip, tris, image_width=size, image_height=size)
  finally:
    shutil.rmtree(folder, ignore_errors=True)  # Libraries stay loaded.

  # Forward, batch 1: ours and every peer in alternating rounds.
  for size in (224, 512):
    clip = tf.constant(clip_all[:1])
    frags = rasterize_op.rasterize(clip, tris, (size, size))
    print('coverage_%d: %.3f' % (size, float(tf.reduce_mean(
        tf.cast(frags.triangle_ids >= 0, tf.float32)))))

    def ours(clip=clip, size=size):
      return rasterize_op.rasterize(clip, tris, (size, size)).depth.numpy()

    one = tf.constant(clip_all[0])  # A tensor for every renderer alike.
    fns = [ours] + [
        lambda fn=fn, size=size, one=one: fn(one, size)[2].numpy()
        for fn in peers.values()]
    times = median_ms(*fns) if peers else [median_ms(ours)]
    for name, ms in zip(['ours'] + list(peers), times):
      report('%s_fwd_%d_b1' % (name, size), ms)

  # Forward, batch 27 at 224: one call (ours) vs 27 calls (peers). Ours at
  # batch 1 runs in the same rounds (last): the 'x one image' ratio of ours
  # compares times measured under the same load.
  size, batch = 224, BIG_BATCH
  clip = tf.constant(clip_all)
  one_clip = tf.constant(clip_all[:1])
  fns = [lambda: rasterize_op.rasterize(clip, tris, (size, size)).depth.numpy()]
  for fn in peers.values():
    batch_fn = tf.function(
        lambda fn=fn: [fn(clip[b], size)[2] for b in range(batch)])
    fns.append(lambda batch_fn=batch_fn: [z.numpy() for z in batch_fn()])
  fns.append(lambda: rasterize_op.rasterize(one_clip, tris,
                                            (size, size)).depth.numpy())
  times = median_ms(*fns)
  ours_one = times[-1]
  for name, ms in zip(['ours'] + list(peers), times):
    one = ours_one if name == 'ours' else results['%s_fwd_%d_b1' % (name,
                                                                     size)]
    report('%s_fwd_%d_b%d' % (name, size, batch), ms,
           ' (%.1f x one image)' % (ms / one))
  report('ours_fwd_%d_b1_same_rounds' % size, ours_one)

  # Forward and backward of a colour image.
  colors_all = np.random.RandomState(1).rand(
      *clip_all.shape[:2], 3).astype(np.float32)

  def peer_image(name, clip, attrs, size):
    """[B, H, W, 3] colour image of a peer's per-image kernel."""
    ids, bary = [], []
    for b in range(clip.shape[0]):
      if name == 'tfmr':
        barycentrics, image_ids, z = peers['tfmr'](clip[b], size)
        ids.append(tf.where(z < 1.0, image_ids, -1))
        bary.append(barycentrics)
      else:
        _, image_ids, z = peers['tfg'](clip[b], size)
        ids.append(tf.where(z[0] < 1.0, image_ids[0], -1))
    shape = [clip.shape[0], size, size]
    ids = tf.ensure_shape(tf.stack(ids), shape)
    if name == 'tfg':
      bary = tfg_barycentrics(clip, triangles, ids)
    else:
      bary = tf.ensure_shape(tf.stack(bary), shape + [3])
    values = interpolate.interpolate(attrs, triangles, ids, bary)
    mask = tf.cast(ids >= 0, tf.float32)[..., None]
    return values * mask

  def make_forward_backward(name, batch, size, method=None):
    clip = tf.Variable(clip_all[:batch])
    attrs = tf.Variable(colors_all[:batch])
    weights = tf.constant(np.random.RandomState(2).rand(
        batch, size, size, 3).astype(np.float32))

    @tf.function
    def forward_backward():
      with tf.GradientTape() as tape:
        if name == 'ours':
          image = mesh_renderer.render_clip(
              clip, triangles, attrs, (size, size), cull_backfaces=False,
              barycentrics_gradient=method).image
        else:
          image = peer_image(name, clip, attrs, size)
        loss = tf.reduce_sum(image * weights)
      # Dense gradients (tf.gather's gradient may be IndexedSlices).
      return [tf.convert_to_tensor(g)
              for g in tape.gradient(loss, [clip, attrs])]

    return lambda: [g.numpy() for g in forward_backward()]

  size = 224
  for batch in (1, BIG_BATCH):
    # tfg's TensorFlow-ops barycentrics take seconds per call at batch 27:
    # batch 1 only.
    names = ['ours'] + [name for name in peers if batch == 1 or name != 'tfg']
    fns = [make_forward_backward(name, batch, size) for name in names]
    if batch == 1:  # The TensorFlow-ops barycentrics gradient, for scale.
      names.append('ours_tfgrad')
      fns.append(make_forward_backward('ours', batch, size, method='tf'))
    else:  # Ours at batch 1 in the same rounds, as for the forward.
      fns.append(make_forward_backward('ours', 1, size))
    times = median_ms(*fns)
    for name, ms in zip(names, times):
      note = ''
      if batch > 1:
        one = times[-1] if name == 'ours' else results[
            '%s_fwd_bwd_%d_b1' % (name, size)]
        note = ' (%.1f x one image)' % (ms / one)
      report('%s_fwd_bwd_%d_b%d' % (name, size, batch), ms, note)
    if batch > 1:
      report('ours_fwd_bwd_%d_b1_same_rounds' % size, times[-1])
  report('ours_fwd_bwd_512_b1', median_ms(make_forward_backward(
      'ours', 1, 512)))

  for peer in peers:
    for figure in ('fwd_224_b1', 'fwd_512_b1', 'fwd_224_b%d' % BIG_BATCH,
                   'fwd_bwd_224_b1', 'fwd_bwd_224_b%d' % BIG_BATCH):
      theirs = '%s_%s' % (peer, figure)
      if theirs in results:
        print('ratio_ours/%s: %.3f' % (theirs, results['ours_' + figure] /
                                       results[theirs]))


def tfg_barycentrics(clip, triangles, ids):
  """tensorflow-graphics' TensorFlow-ops barycentrics of the given ids.

  Args:
    clip: [B, N, 4] float32 clip-space vertices.
    triangles: [T, 3] int32.
    ids: [B, H, W] int32, -1 on background.

  Returns:
    [B, H, W, 3] float32, differentiable w.r.t. clip.
  """
  # pylint: disable=g-import-not-at-top
  from tensorflow_graphics.rendering import barycentrics as tfg_bary
  from tensorflow_graphics.rendering import framebuffer as tfg_fb
  mask = tf.cast(ids >= 0, tf.float32)[..., None]  # One layer: [B,H,W,1].
  safe_ids = tf.maximum(ids, 0)[..., None]
  placeholder = tf.zeros(safe_ids.shape[:-1] + [3])  # Static shape.
  frame = tfg_fb.Framebuffer(
      foreground_mask=mask, triangle_id=safe_ids,
      vertex_ids=tf.gather(triangles, safe_ids[..., 0]),
      barycentrics=tfg_fb.RasterizedAttribute(placeholder, None, None))
  return tfg_bary.differentiable_barycentrics(frame, clip,
                                              triangles).barycentrics.value


if __name__ == '__main__':
  main()
