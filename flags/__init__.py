"""flags: absl flag definitions of the command-line programs, one module each.

Naming rule (one name per setting, whichever program reads it):

1. No prefix: a flag shared across stages, defined once and meaning the same
   in every program that reads it: common_flags.py (--bfm, the face model
   everywhere; --image_size, --log_dir, --landmarks, --landmark_model) and
   training_flags.py (the training loop both stages run: --steps,
   --batch_size, --data, --num_images, --seed, --init_checkpoint, the
   learning-rate schedule, --grad_clip, the logging and checkpoint periods).
   A default that differs per stage is None there and set by the stage
   (coarse/train.py and detail/train.py DEFAULTS); the help gives both.
2. Stage prefix: a flag only one stage reads starts with the stage,
   `coarse_` or `detail_` (--coarse_photo_weight, --detail_uv_size,
   --detail_dir), or with the name of the stage's part it sets, a name no
   other stage has: `sam_` and `vgg_` (coarse), `ri2itn_` and `large_pose`
   (detail). The input --coarse_checkpoint (read by detail/train.py and the
   reconstruct command) is named for what it is.
3. Programs that are not stages (preprocess/prepare_data.py, the reconstruct
   command, eval/evaluate.py, eval/tables.py) name their own flags without a
   prefix, except where they share a process with the stages' flags: the
   benchmarks' own flags start with `benchmark_` (eval/synthetic_benchmark.py)
   or `fit_benchmark_` (eval/fit_benchmark.py), and the reconstruct
   command's --fit mode flags with `fit_`.

Every module defines its flags through common_flags.define_once, so programs
that combine modules share a flag of the same name; help strings are grouped
by purpose (the `# ---` sections).
"""
