"""pytest configuration shared by the test suite."""


def pytest_collection_modifyitems(config, items):
  """Drops tf.test.TestCase's inherited `test_session` from the collection.

  TensorFlow's TestCase defines a deprecated `test_session` method that pytest
  collects as a test and reports as skipped ("Not a test."), once per test
  class; without it the skip count shows only real skips (missing shared
  data, no GPU).
  """
  kept = [item for item in items if item.name != 'test_session']
  if len(kept) != len(items):
    config.hook.pytest_deselected(
        items=[item for item in items if item.name == 'test_session'])
    items[:] = kept
