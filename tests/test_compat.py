"""Each workaround in lffnet_arch.compat: the breakage it fixes is real here, and the fix works."""
import subprocess
import sys

import pytest
import torchvision

from lffnet_arch import compat

TORCHVISION_DROPPED_FUNCTIONAL_TENSOR = tuple(int(v) for v in torchvision.__version__.split('.')[:2]) >= (0, 17)


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(not TORCHVISION_DROPPED_FUNCTIONAL_TENSOR, reason='this torchvision still ships functional_tensor')
def test_basicsr_import_breaks_without_the_shim():
    # XPixelGroup/BasicSR#649, #663: the breakage the shim exists for.
    result = _run('import basicsr')
    assert result.returncode != 0
    assert 'functional_tensor' in result.stderr


def test_importing_the_plugin_makes_basicsr_importable():
    result = _run('import lffnet_arch, basicsr.data.degradations as d; '
                  'from torchvision.transforms.functional import rgb_to_grayscale as f; '
                  'assert d.rgb_to_grayscale is f; print("ok")')
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == 'ok'


def test_shim_is_idempotent():
    assert compat.install_functional_tensor_shim() is False  # already applied by `import lffnet_arch`
    compat.apply()
    assert 'torchvision.transforms.functional_tensor' in sys.modules
