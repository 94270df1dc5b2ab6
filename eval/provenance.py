"""What a benchmark's result file records about the code that made it."""

import os
import subprocess

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def git_commit():
  """The repository's HEAD commit (full hex), or 'unknown' outside a git
  checkout (e.g. an installed copy) or without git."""
  try:
    return subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=REPO_ROOT,
                          capture_output=True, text=True,
                          check=True).stdout.strip()
  except (OSError, subprocess.CalledProcessError):
    return 'unknown'
