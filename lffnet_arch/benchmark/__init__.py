"""Measuring the networks and the pipeline (run through ``scripts/``): speed (:mod:`.speed`, :mod:`.gpu`), data
loading (:mod:`.data_loading`), quality against classical merges (:mod:`.quality`) and training curves
(:mod:`.training_curves`); shared measurement helpers in :mod:`.profiling`."""
