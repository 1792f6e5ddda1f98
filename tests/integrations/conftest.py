"""Integration tests: each module imports its framework through integration_helpers.require."""

import os

# Keras picks its backend when first imported: these tests use torch's (no TensorFlow needed).
os.environ["KERAS_BACKEND"] = "torch"


def pytest_configure(config):
    # The frameworks' own deprecation notices (hundreds per run), not lossacc's.
    for line in (
        "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning",
        "ignore:`isinstance\\(treespec, LeafSpec\\)` is deprecated",
    ):
        config.addinivalue_line("filterwarnings", line)
