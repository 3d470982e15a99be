"""The capture simulator: real radiance maps (:mod:`.radiance`) turned into realistic brackets (:mod:`.capture`, the
capture styles and every knob), as a registered online dataset (:mod:`.simulated_dataset`), as Kalantari-layout
folders (:mod:`.simulated_set`), and as the quick start's demo set from the bundled CC0 crops (:mod:`.demo`)."""
