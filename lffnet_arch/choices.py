"""The names the deployment API, the inference command and validation accept, importable without torch or OpenCV:
the command line checks its flags against them before it loads either."""

__all__ = [
    'ALIGN_METHODS',
    'DEFAULT_JPEG_QUALITY',
    'DEFAULT_TONEMAPPER',
    'INFERENCE_PRECISIONS',
    'PRECISION_NAMES',
    'PREVIEW_FORMATS',
    'TONEMAPPERS',
]

ALIGN_METHODS = ('mtb', 'ecc')
PRECISION_NAMES = ('fp32', 'fp16', 'bf16')
# lffnet-inference's --precision: 'auto' is bf16 on a CPU with bf16 instructions, fp32 elsewhere.
INFERENCE_PRECISIONS = ('auto', *PRECISION_NAMES)
TONEMAPPERS = ('mulaw', 'reinhard', 'drago', 'mantiuk', 'fusion')
DEFAULT_TONEMAPPER = 'fusion'
PREVIEW_FORMATS = ('png', 'jpg')  # the preview's file format, its suffix too
DEFAULT_JPEG_QUALITY = 95
