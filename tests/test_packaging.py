"""A built wheel holds what the package reads at run time: the demo's radiance crops and their licence, and the
shipped weights."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from lffnet_arch.data.demo import DEMO_RADIANCE
from lffnet_arch.deploy.pretrained import PRETRAINED, WEIGHTS_DIR

REPO = Path(__file__).resolve().parents[1]


def test_wheel_contains_the_package_data(tmp_path):
    # Build from a copy of the tracked files: an in-tree build would leave build/ behind, whose stale files setuptools
    # can carry into later wheels.
    source = tmp_path / 'source'
    files = subprocess.run(['git', 'ls-files'], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, source / name)
    build = subprocess.run(
        [sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '-w', str(tmp_path), str(source)],
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
    wheel_zip = zipfile.ZipFile(wheel)
    for file in PRETRAINED.values():  # every shipped model, byte for byte
        assert wheel_zip.read(f'lffnet_arch/weights/{file}') == (WEIGHTS_DIR / file).read_bytes(), file
