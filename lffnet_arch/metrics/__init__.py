"""Registered metrics of the plugin; importing the package registers them in BasicSR's ``METRIC_REGISTRY``."""

from lffnet_arch.metrics.hdr_metric import (
    calculate_psnr_l,
    calculate_psnr_l_pt,
    calculate_psnr_mu,
    calculate_psnr_mu_pt,
    calculate_ssim_l,
    calculate_ssim_l_pt,
    calculate_ssim_mu,
    calculate_ssim_mu_pt,
)

__all__ = [
    'calculate_psnr_l',
    'calculate_psnr_l_pt',
    'calculate_psnr_mu',
    'calculate_psnr_mu_pt',
    'calculate_ssim_l',
    'calculate_ssim_l_pt',
    'calculate_ssim_mu',
    'calculate_ssim_mu_pt',
]
