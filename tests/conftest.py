"""Shared fixtures. Every test runs on the CPU with small seeded tensors."""

import pytest
import torch

import lffnet_arch  # noqa: F401  (registers everything in BasicSR before any test asks a registry)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
