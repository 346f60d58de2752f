"""GSFM's spectral filter modules: LFM (encoder side) and HFM (decoder side).

Both filter the un-shifted 2-D spectrum with a Gaussian centred at (H//2, W//2), which in
an un-shifted spectrum is where the HIGHEST frequencies sit: HFM keeps that region (g),
LFM keeps the rest (1 - g). The filtered real and imaginary parts go through two 1x1
convs, back through the inverse FFT, and the real part is added to the input.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SIGMA = 7.0


def gaussian_window(height: int, width: int, device: torch.device, sigma: float = SIGMA) -> torch.Tensor:
    """g(i, j) = exp(-((i - H//2)^2 + (j - W//2)^2) / (2 sigma^2)), float32, shape (H, W)."""
    ys = torch.arange(height, device=device, dtype=torch.float32) - height // 2
    xs = torch.arange(width, device=device, dtype=torch.float32) - width // 2
    return torch.exp(-(ys[:, None] ** 2 + xs[None, :] ** 2) / (2 * sigma ** 2))


def is_channels_last(x: torch.Tensor) -> bool:
    """Whether a 4-D tensor is laid out channels-last (NHWC) and not also plain NCHW (as
    tensors with one channel or one pixel are both)."""
    return x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


class SpectralFilterModule(nn.Module):
    """x + Re(ifft2(conv2(relu(conv1([Re, Im](fft2(x) * filter)))))).

    ``keep_high`` selects HFM (filter g) or LFM (filter 1 - g). Always computed in
    float32, also under autocast: half-precision FFTs only support power-of-two sizes and
    the reference casts the input to float. Always in the plain (NCHW) layout: a
    channels-last input is converted on entry and the output back on exit, so the FFTs and
    their 1x1 convolutions compute what they compute in the float32 engine.
    """

    def __init__(self, num_channels: int, keep_high: bool):
        super().__init__()
        self.keep_high = keep_high
        self.conv1 = nn.Conv2d(num_channels * 2, num_channels * 2, kernel_size=1)
        self.conv2 = nn.Conv2d(num_channels * 2, num_channels * 2, kernel_size=1)
        self._window_cache: dict[tuple, torch.Tensor] = {}

    def _filter(self, height: int, width: int, device: torch.device) -> torch.Tensor:
        key = (height, width, device)
        if key not in self._window_cache:
            g = gaussian_window(height, width, device)
            self._window_cache[key] = g if self.keep_high else 1 - g
        return self._window_cache[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layout = torch.channels_last if is_channels_last(x) else torch.contiguous_format
        with torch.autocast(device_type=x.device.type, enabled=False):
            x = x.to(x.dtype if x.dtype == torch.float64 else torch.float32, memory_format=torch.contiguous_format)
            h, w = x.shape[-2:]
            # In-place filter and ReLU, and each spectrum dropped once used: the temporaries
            # here are the decoder's largest; the numbers are the same.
            spectrum = torch.fft.fft2(x)
            spectrum *= self._filter(h, w, x.device)
            z = torch.cat([spectrum.real, spectrum.imag], dim=1)
            del spectrum
            z = self.conv2(F.relu(self.conv1(z), inplace=True))
            real, imag = torch.chunk(z, 2, dim=1)
            spectrum = torch.complex(real, imag)
            del z, real, imag
            return (x + torch.fft.ifft2(spectrum, s=(h, w)).real).contiguous(memory_format=layout)


class LFM(SpectralFilterModule):
    def __init__(self, num_channels: int):
        super().__init__(num_channels, keep_high=False)


class HFM(SpectralFilterModule):
    def __init__(self, num_channels: int):
        super().__init__(num_channels, keep_high=True)
