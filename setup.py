"""Installs the ``lffnet_arch`` BasicSR plugin.

Install torch and torchvision before this package (see README): basicsr 1.4.2 is published only as a source
archive whose build step imports torch, so it must be built against the torch already in the environment
(``pip install --no-build-isolation``) rather than in an isolated build environment that would download another.
"""

import re
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent


def read_version() -> str:
    text = (ROOT / 'lffnet_arch' / '__init__.py').read_text(encoding='utf-8')
    return re.search(r"^__version__ = '([^']+)'", text, re.M).group(1)


def read_requirements(name: str) -> list:
    lines = (ROOT / name).read_text(encoding='utf-8').splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith('#')]


setup(
    name='lffnet_arch',
    version=read_version(),
    description='LFFNet and AHDRNet multi-exposure HDR fusion as a BasicSR plugin',
    long_description=(ROOT / 'README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    packages=find_packages(include=['lffnet_arch', 'lffnet_arch.*']),
    py_modules=['lffnet_cli'],  # the console commands' entry points: flags checked before torch is imported
    # The demo's CC0 radiance crops (with their licence) and the shipped weights travel inside the package.
    package_data={
        'lffnet_arch': ['data/simulator/demo_radiance/*.exr', 'data/simulator/demo_radiance/*.md', 'weights/*.pth']
    },
    python_requires='>=3.9',
    install_requires=read_requirements('requirements.txt'),
    extras_require={
        'test': read_requirements('requirements-test.txt'),
        # ColorVideoVDP (calculate_cvvdp); its display models and calibration ship in the package.
        'metrics': ['cvvdp>=0.5'],
        # Camera RAW frames for inference: rawpy (MIT) bundles LibRaw (LGPL-2.1 or CDDL-1.0); exifread is BSD-3-Clause.
        'raw': ['rawpy>=0.18', 'exifread>=3.0'],
        # HEIC/HEIF frames: pillow-heif (BSD-3-Clause) whose wheels bundle libheif, libde265 (LGPL-3.0), x265 (GPL-2.0).
        'heic': ['pillow-heif>=0.16'],
    },
    entry_points={
        'console_scripts': [
            'lffnet-train=lffnet_cli:train',
            'lffnet-test=lffnet_cli:test',
            'lffnet-inference=lffnet_cli:inference',
            'lffnet=lffnet_cli:lffnet',
        ],
    },
    classifiers=[
        'Programming Language :: Python :: 3',
        'License :: OSI Approved :: Apache Software License',
        'Topic :: Scientific/Engineering :: Image Processing',
    ],
)
