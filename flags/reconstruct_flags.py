"""absl flags of the reconstruct command (detail/reconstruct.py).

  reconstruct photo.jpg [more.jpg ...] [folder/] --fit
  reconstruct folder/ --coarse_checkpoint=... --detail_checkpoint=...

Inputs are positional arguments: image files and/or folders (every image
directly inside a folder). The detail network's architecture and
displacement scale come from the detail checkpoint's detail_config.json
(written by detail/train.py). Call `define_flags()` before `app.run`; it is
idempotent and leaves alone flags another module already defined under the
same name.
"""

from absl import flags

from coarse import fitting
from coarse import silhouette_yaw
from detail import displacement_fitting
from flags import common_flags

FLAGS = flags.FLAGS

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp',
                    '.ppm', '.pgm')


_define = common_flags.define_once


def define_flags():
  """Defines the reconstruct command's flags (safe to call repeatedly)."""
  # --- Inputs and outputs -----------------------------------------------------
  _define(
      'string', 'out', './reconstruction',
      'Output folder; per face NAME_coarse.obj, NAME_detail.obj, NAME.mtl, '
      'NAME_texture.png, NAME_displacement.png (+ .json), '
      'NAME_coefficients.npz, NAME_landmarks.txt and NAME_vis.png, then the '
      'completion marker NAME_complete.json, NAME = the image file name '
      'without its extension (folder-qualified when two inputs share a '
      'name). Created if missing and checked for writing before any fit. '
      'Files are written atomically (reconstruct/outputs.py); a face whose '
      'outputs exist is refused unless --overwrite, and a face another run '
      'is writing is refused.')
  _define(
      'bool', 'overwrite', False,
      'Replace the outputs of faces already in --out (each set is replaced '
      'whole: the old files stay until the new ones are complete). Without '
      'it such faces are reported as failed and not fitted.')
  _define(
      'bool', 'resume', False,
      'Skip faces whose outputs in --out are complete: their '
      'NAME_complete.json is present, lists every output file and each file '
      'has the size and SHA-256 it records (checked with the face\'s lock '
      'held, before the photo is read). They are reported as skipped, not '
      'failed. Other existing outputs are still refused unless --overwrite '
      '(with both, only incomplete sets are replaced). The marker does not '
      'record the settings: a set written with other settings is skipped '
      'too.')
  _define(
      'string', 'shard', None,
      'I/N: reconstruct only inputs I, I+N, I+2N, ... (0-based) of the input '
      'list (positional arguments in order, each folder\'s files sorted by '
      'name), so that N machines given the same inputs, --shard=0/N to '
      '--shard=N-1/N, split them without overlap. Output names are those '
      'of the whole list, so the N runs write the files one run would.')
  _define(
      'integer', 'input_workers', 2,
      'Photos read, detected and cropped at once by the tf.data input '
      'pipeline, ahead of the fit (detection itself runs one photo at a '
      'time). Up to --input_workers + 2 x --batch_size photos (the batch '
      'being fitted and the next one) are held decoded in memory.')
  _define(
      'list', 'extensions', list(IMAGE_EXTENSIONS),
      'File extensions (case-insensitive) taken from input folders. Files '
      'given one by one are always tried.')

  # --- Models -----------------------------------------------------------------
  _define(
      'string', 'bfm', 'auto',
      'Face model: "auto" (the best model present: a fetched or converted '
      'statistical model before the built-in "synthetic" face; the command '
      'prints which), "synthetic", "sfm", "ict" or a converted model .npz '
      '(see bfm/README.md; `python -m bfm.fetch sfm` fetches one). With '
      'checkpoints it must be the model they were trained with.')
  _define(
      'string', 'coarse_checkpoint', None,
      'Coarse network checkpoint (file prefix or folder) written by '
      '`python coarse/train.py`; its coarse_config.json gives the network '
      'size. With --fit it initialises the fit.')
  _define(
      'string', 'detail_checkpoint', None,
      'RI2ITN checkpoint written by `python detail/train.py`: a checkpoint '
      'prefix or folder (used for every face), or the --detail_dir root '
      'holding small_pose/ and large_pose/ (the small-pose network for faces '
      'within --large_pose_yaw_threshold_deg, the large-pose one beyond). '
      'With --fit it initialises the displacement fit.')
  _define(
      'integer', 'image_size', 224,
      'Side in pixels of the square face crop the coarse and detail stages '
      'work on (the paper and Chen20 use 224; the coarse network resizes to '
      'its own input size).')
  common_flags.define_landmark_flags()

  # --- Mode: checkpoints or --fit ---------------------------------------------
  _define(
      'bool', 'fit', False,
      'Analysis by synthesis per image, no trained network needed: optimise '
      'the coarse coefficients against the coarse losses (landmarks, '
      'photometric, priors), then a displacement map against the detail '
      'losses (detail/displacement_fitting.py). Without --fit both '
      'checkpoints are required.')
  _define(
      'integer', 'fit_steps', fitting.DEFAULT_STEPS,
      '--fit: Adam steps of the coarse coefficient fit per batch after its '
      'closed-form start (coarse/landmark_fit.py); 0 keeps the closed-form '
      'MAP fit to the landmarks.')
  _define(
      'enum', 'fit_objective', 'map', fitting.OBJECTIVES,
      '--fit: objective of the Adam steps (coarse/fitting.py): "map" (landmark '
      'likelihood in mm, coefficient priors, --fit_photo_weight x photometric '
      'loss, from the closed-form MAP fit) or "chen20" (Chen20\'s training '
      'losses and weights from the closed-form pose on the mean face: the '
      'previous --fit; use with --fit_steps=300).')
  _define(
      'float', 'fit_photo_weight', fitting.DEFAULT_PHOTO_WEIGHT,
      '--fit: weight of the photometric term in the coarse fit '
      '(coarse/fitting.py map_losses; 0 = landmarks and priors only).')
  _define(
      'float', 'fit_silhouette_yaw_deg', silhouette_yaw.MIN_YAW_DEG,
      '--fit: faces whose closed-form fit is turned at least this far '
      '(degrees) get their yaw searched again, up to 90, against the '
      'photo\'s outline on the side they turn to (coarse/silhouette_yaw.py: '
      'FaceMesh\'s points stop turning with the face beyond ~55 deg). A value '
      'above 90 keeps the landmark yaw.')
  _define(
      'integer', 'fit_detail_steps', displacement_fitting.DEFAULT_STEPS,
      '--fit: most Adam steps of the displacement-map fit per batch (all of '
      'them with --fit_detail_tolerance=0).')
  _define(
      'float', 'fit_detail_learning_rate',
      displacement_fitting.DEFAULT_LEARNING_RATE,
      '--fit: Adam learning rate of the displacement-map fit (on the '
      'pre-tanh map; half-cosine decay to 5%% of it over --fit_detail_steps). '
      'The previous fixed-step fit used %g.' %
      displacement_fitting.SLOW_LEARNING_RATE)
  _define(
      'float', 'fit_detail_tolerance', displacement_fitting.DEFAULT_TOLERANCE,
      '--fit: convergence stop of the displacement-map fit: it ends when the '
      'batch\'s loss fell by less than this fraction of its decrease so far '
      'over the last %d steps (detail/displacement_fitting.py converged). 0 '
      'runs all --fit_detail_steps; --fit_detail_tolerance=0 '
      '--fit_detail_learning_rate=%g is the previous (slow) 200-step fit.' %
      (displacement_fitting.CONVERGENCE_WINDOW,
       displacement_fitting.SLOW_LEARNING_RATE))
  _define(
      'integer', 'fit_uv_size', 128,
      '--fit: side of the fitted displacement map in texels (a power of two; '
      'the detailed mesh has one vertex per face texel). With a detail '
      'checkpoint its own UV size is used.')
  _define(
      'float', 'fit_displacement_scale_mm', 1.0,
      '--fit: largest displacement in mm (the map is tanh-bounded like '
      'RI2ITN\'s output). With a detail checkpoint its own scale is used.')

  # --- Pose -------------------------------------------------------------------
  _define(
      'float', 'large_pose_yaw_threshold_deg', 30.0,
      'Faces whose estimated |yaw| exceeds this (degrees) take the large-pose '
      'path (paper Sec. 3.4): symmetric UV padding of the self-occluded half '
      'and the large-pose RI2ITN when one is given.')

  # --- Batching ---------------------------------------------------------------
  _define(
      'integer', 'batch_size', 8,
      'Faces per batch through the coarse and detail stages (and per joint '
      'fit in --fit mode). Runs on the CPU unless TensorFlow sees a GPU.')
  _define(
      'integer', 'texture_size', 512,
      'Side of NAME_texture.png, the photo unwrapped into the model UV '
      'layout (texels hidden in the photo: mirrored from the visible half, '
      'else the model albedo).')

  # --- Benchmark --------------------------------------------------------------
  _define(
      'bool', 'benchmark', False,
      'Time detection, coarse, detail and writing per image on the given '
      'inputs (cycled) at batch size 1 and 16, print images per second and '
      'exit; outputs go to a temporary folder that is deleted. Each batch '
      'size is warmed up first (detector loading and TensorFlow tracing are '
      'not timed).')
  _define(
      'integer', 'benchmark_images', 16,
      '--benchmark: images per measured run (at least the batch size).')
