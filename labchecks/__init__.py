"""Checks the course's hidden tests run, in the grader's kernels only.

The lab notebooks' hidden tests import this package (``import labchecks.mobilenet as _mn``);
students never do, and the student bundle leaves it out. Each course lab's grader settings
(``grader/source/<lab>/lab.toml``) name the functions here that prepare its data.

* :mod:`labchecks.mobilenet`: the ImageNet MobileNetV2 as the labs check against it (the
  digest of every layer's weights; the labs' frozen prefixes);
* :mod:`labchecks.holdout`: a model's outputs on the held-out photos, reusing the cached
  output of a frozen prefix when the model provably starts with it;
* :mod:`labchecks.photos`: the grader's hooks for the photo labs (fill the caches before a
  run, warm up a clean kernel).
"""
