"""The merge head's two properties, measured: exposure equivariance and identity with the noise-weighted merge, on
noise-free 16-bit linear brackets from the capture simulator (docs/design.md, "The merge head").

- Equivariance: the scene radiance scaled by 2^k (k = -3 ... 3, the metering moved by k stops) should scale the
  output by 2^k wherever the shortest frame holds the radiance unclipped at both scales.
- Identity: where no frame clips, the output should be the classical inverse-variance merge of the frames.

Each is a median relative error over those pixels. ``tests/archs/test_merge.py`` asserts at most 1% for random merge
networks and every shipped merge model; ``python scripts/merge_properties.py`` prints the table for any model.
"""

import argparse
from collections.abc import Sequence

import numpy as np
import torch

from lffnet_arch.data.simulator.capture import settings_for_style, simulate_bracket
from lffnet_arch.data.simulator.demo import _maps
from lffnet_arch.hdr_input import network_input

__all__ = ['KS', 'bracket', 'equivariance_errors', 'identity_error', 'main', 'noise_weighted_merge']

KS = (-3, -2, -1, 1, 2, 3)
NOISELESS = {
    'responses': ['gamma'],
    'gamma': [1.0, 1.0],  # linear frames
    'shot_noise': [1e-12, 1e-12],
    'read_noise': [1e-12, 1e-12],
    'num_objects': [0, 0],  # static
    'stop_choices': [2.0],
}
KEY = 0.04  # the reference frame's log-average at k = 0; 0.005 to 0.32 over k = -3..3


def bracket(k: int, size: int = 64, seed: int = 11) -> tuple:
    """Frames (float in [0, 1]), exposure times and the saturation mask (T, H, W) of the bracket whose radiance is
    scaled by 2^k (the same scene, crop and exposure times for every k)."""
    settings = settings_for_style('kalantari', {**NOISELESS, 'key_level': [KEY * 2.0**k] * 2})
    captured = simulate_bracket(_maps('Training'), settings, size, (seed, 0, 0))
    frames = [f.astype(np.float32) / 65535 for f in captured.ldrs]
    saturated = np.stack([f.max(axis=2) >= 1.0 for f in frames])
    return frames, 2.0**captured.evs, saturated


def _output(net: torch.nn.Module, frames: list, times: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return net(network_input(frames, times, gamma=1.0))[0].permute(1, 2, 0).float().numpy()


def noise_weighted_merge(frames: list, times: np.ndarray, shot: float = 1e-3, read: float = 3e-3) -> np.ndarray:
    """The classical inverse-variance merge of linear frames: weight t_i^2 / (a x_i + b) per unclipped frame."""
    stack = np.stack(frames).astype(np.float64)
    hdr = stack / times[:, None, None, None]
    weights = times[:, None, None, None] ** 2 / (shot * stack + read**2) * (stack.max(axis=3, keepdims=True) < 1.0)
    return (weights * hdr).sum(axis=0) / weights.sum(axis=0)


def equivariance_errors(net: torch.nn.Module, ks: Sequence[int] = KS, size: int = 64) -> dict:
    """k -> (median relative error of output(2^k E) / 2^k against output(E), fraction of pixels compared)."""
    runs = {k: bracket(k, size) for k in (0, *ks)}
    base = _output(net, *runs[0][:2])
    errors = {}
    for k in ks:
        keep = ~runs[k][2][0] & ~runs[0][2][0]  # the shortest frame unclipped at both scales
        scaled = _output(net, *runs[k][:2])[keep] / 2.0**k
        errors[k] = (float(np.median(np.abs(scaled / base[keep] - 1.0))), float(keep.mean()))
    return errors


def identity_error(net: torch.nn.Module, size: int = 64) -> tuple:
    """(median relative error against the noise-weighted merge where no frame clips, fraction of such pixels)."""
    frames, times, saturated = bracket(0, size)
    unclipped = ~saturated.any(axis=0)
    out = _output(net, frames, times)[unclipped]
    merge = noise_weighted_merge(frames, times)[unclipped]
    return float(np.median(np.abs(out / merge - 1.0))), float(unclipped.mean())


def main(argv=None) -> int:
    from lffnet_arch.deploy import load_model
    from lffnet_arch.deploy.pretrained import PRETRAINED

    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument(
        '--model', action='append', default=[], metavar='NAME[=CHECKPOINT]', help='a shipped model or NAME=CHECKPOINT'
    )
    parser.add_argument('--size', type=int, default=64, help='bracket side in pixels (default: 64, as the tests)')
    args = parser.parse_args(argv)
    models = args.model or list(PRETRAINED)
    print(f'Median relative error (%), noise-free 16-bit linear brackets, {args.size} x {args.size}; bound 1%.\n')
    print('| model | ' + ' | '.join(f'2^{k:+d}' for k in KS) + ' | identity |')
    print('|---|' + '---:|' * (len(KS) + 1))
    for spec in models:
        name, _, path = spec.partition('=')
        net = load_model(path) if path else load_model(pretrained=name)
        net.eval()
        equi = equivariance_errors(net, size=args.size)
        ident = identity_error(net, size=args.size)
        cells = [f'{100 * equi[k][0]:.3f}' for k in KS] + [f'{100 * ident[0]:.3f}']
        print(f'| {name} ({getattr(net, "head", "image")} head) | ' + ' | '.join(cells) + ' |', flush=True)
    return 0
