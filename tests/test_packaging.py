"""A built wheel holds what users run and nothing else: the package's modules (each reached from the library or its
entry points; no measurement code, which lives in the checkout's scripts/), the demo's radiance crops and their
licence, and the shipped weights."""

import ast
import configparser
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from lffnet_arch.data.simulator.demo import DEMO_RADIANCE
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
        assert f'lffnet_arch/data/simulator/demo_radiance/{path.name}' in names
    assert 'lffnet_arch/deploy/pretrained.py' in names
    _check_modules(zipfile.ZipFile(wheel))
    wheel_zip = zipfile.ZipFile(wheel)
    for file in PRETRAINED.values():  # every shipped model, byte for byte
        assert wheel_zip.read(f'lffnet_arch/weights/{file}') == (WEIGHTS_DIR / file).read_bytes(), file


def _module_name(path: str) -> str:
    parts = path[: -len('.py')].split('/')
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def _references(source: str, known: set) -> set:
    """Modules of ``known`` that ``source`` imports (absolute imports: the package uses no relative ones), or names as
    a string (the ``lffnet`` command's table of subcommands)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f'relative import of {node.module}'
            names = [node.module] + [f'{node.module}.{alias.name}' for alias in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names = [node.value]
        for name in names:
            while name:  # importing a.b.c imports a and a.b too
                if name in known:
                    found.add(name)
                name = name.rpartition('.')[0]
    return found


def _check_modules(wheel: zipfile.ZipFile) -> None:
    modules = {_module_name(n): n for n in wheel.namelist() if n.endswith('.py')}
    entry = 'lffnet_cli.py'  # the console commands' entry points, which check the flags before importing torch
    measurement = [
        n for n in modules.values() if not (n.startswith('lffnet_arch/') or n == entry) or '/benchmark/' in n
    ]
    assert not measurement, f'measurement or other code outside the package in the wheel: {measurement}'
    entry_points = configparser.ConfigParser()
    (info,) = [n for n in wheel.namelist() if n.endswith('.dist-info/entry_points.txt')]
    entry_points.read_string(wheel.read(info).decode())
    roots = {'lffnet_arch', 'lffnet_arch.train', 'lffnet_arch.test', 'lffnet_arch.inference'}
    roots |= {target.split(':')[0].strip() for target in entry_points['console_scripts'].values()}
    reached, todo = set(), list(roots)
    while todo:
        module = todo.pop()
        if module in reached:
            continue
        reached.add(module)
        todo.extend(_references(wheel.read(modules[module]).decode(), set(modules)))
    unreached = sorted(set(modules) - reached)
    assert not unreached, f'modules in the wheel that neither the library nor an entry point imports: {unreached}'
