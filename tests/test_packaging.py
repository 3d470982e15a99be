"""A built wheel holds what the package reads at run time: the demo's radiance crops and their licence."""

import subprocess
import sys
import zipfile
from pathlib import Path

from lffnet_arch.data.demo import DEMO_RADIANCE

REPO = Path(__file__).resolve().parents[1]


def test_wheel_contains_the_package_data(tmp_path):
    build = subprocess.run(
        [sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '-w', str(tmp_path), str(REPO)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = tmp_path.glob('lffnet_arch-*.whl')
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in DEMO_RADIANCE.iterdir():
        assert f'lffnet_arch/data/demo_radiance/{path.name}' in names
    assert 'lffnet_arch/deploy/pretrained.py' in names
