"""Measurement of the networks and the pipeline, run from a checkout (``scripts/*.py``) and never installed.

- :mod:`.speed` and :mod:`.cases`: the model cost benchmark (parameters, MACs, latency, memory, throughput);
  :mod:`.gpu`: its GPU form; :mod:`.profiling`: MACs, memory, timers and report helpers both share.
- :mod:`.training_step`: where a training iteration's time goes; :mod:`.data_loading`: samples per second.
- :mod:`.quality`: trained networks beside the classical merges of :mod:`.merges`, the one evaluator.
- :mod:`.table2` and :mod:`.width`: training runs compared at one budget; :mod:`.training_curves`,
  :mod:`.training_log` and :mod:`.plot`: reading training logs and drawing their curves.
- :mod:`.tiling_error`: how far tiled inference is from whole-image inference.
"""

import lffnet_arch  # noqa: F401  (registers the plugin; its torchvision shim must precede the first basicsr import)
