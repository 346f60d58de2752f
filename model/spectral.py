"""GSFM's spectral filter modules: LFM (encoder side) and HFM (decoder side).

Both filter the un-shifted 2-D spectrum with a Gaussian centred at (H//2, W//2), which in
an un-shifted spectrum is where the HIGHEST frequencies sit: HFM keeps that region (g),
LFM keeps the rest (1 - g). The filtered real and imaginary parts go through two 1x1
convs, back through the inverse FFT, and the real part is added to the input.

Two forms compute the same filter. PyTorch runs ``torch.fft`` (the default). The real form
(``real_dft``) multiplies by fixed cos/sin DFT matrices of the input size and keeps real and
imaginary parts as separate real tensors: a graph traced from it holds only matrix products
and elementwise ops, no complex tensor and no FFT/DFT operator, so exported graphs run on
any ONNX Runtime provider and TensorRT; it is what the ONNX export uses.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SIGMA = 7.0


def gaussian_window(height: int, width: int, device: torch.device, sigma: float = SIGMA) -> torch.Tensor:
    """g(i, j) = exp(-((i - H//2)^2 + (j - W//2)^2) / (2 sigma^2)), float32, shape (H, W)."""
    ys = torch.arange(height, device=device, dtype=torch.float32) - height // 2
    xs = torch.arange(width, device=device, dtype=torch.float32) - width // 2
    return torch.exp(-(ys[:, None] ** 2 + xs[None, :] ** 2) / (2 * sigma**2))


def dft_matrices(n: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """cos(2 pi jk / n) and sin(2 pi jk / n), (n, n), both symmetric: the DFT matrix of size n
    is cos - i sin. Built in float64 with jk reduced mod n (exact integers, so the angle
    stays in [0, 2 pi) at any n) and then cast; numpy, so that an export records them as constants."""
    index = np.arange(n)
    angle = 2 * np.pi * (np.outer(index, index) % n) / n
    return (torch.from_numpy(np.cos(angle)).to(device, dtype), torch.from_numpy(np.sin(angle)).to(device, dtype))


def filtered_spectrum_real(
    x: torch.Tensor,
    window: torch.Tensor,
    cos_h: torch.Tensor,
    sin_h: torch.Tensor,
    cos_w: torch.Tensor,
    sin_w: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(Re, Im) of fft2(x) * window for real x (..., H, W), by matrix products:
    Y = x F_W = x cos_w - i x sin_w along W, then F_H Y along H."""
    y_re, y_im = x @ cos_w, -(x @ sin_w)
    re = cos_h @ y_re + sin_h @ y_im
    im = cos_h @ y_im - sin_h @ y_re
    return re * window, im * window


def inverse_real_part(
    re: torch.Tensor,
    im: torch.Tensor,
    cos_h: torch.Tensor,
    sin_h: torch.Tensor,
    cos_w: torch.Tensor,
    sin_w: torch.Tensor,
) -> torch.Tensor:
    """Re(ifft2(re + i im)) by matrix products: conj(F_H) Z conj(F_W) / (H W), of which only
    the real part is formed."""
    h, w = re.shape[-2:]
    u_re = cos_h @ re - sin_h @ im
    u_im = cos_h @ im + sin_h @ re
    return (u_re @ cos_w - u_im @ sin_w) / (h * w)


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
    their 1x1 convolutions compute what they compute in the float32 engine. ``real_dft``
    selects the real-arithmetic form (see the module's docstring); off by default.
    """

    def __init__(self, num_channels: int, keep_high: bool):
        super().__init__()
        self.keep_high = keep_high
        self.conv1 = nn.Conv2d(num_channels * 2, num_channels * 2, kernel_size=1)
        self.conv2 = nn.Conv2d(num_channels * 2, num_channels * 2, kernel_size=1)
        self.real_dft = False
        self._window_cache: dict[tuple, torch.Tensor] = {}
        self._dft_cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def _filter(self, height: int, width: int, device: torch.device) -> torch.Tensor:
        key = (height, width, device)
        if key not in self._window_cache:
            g = gaussian_window(height, width, device)
            self._window_cache[key] = g if self.keep_high else 1 - g
        return self._window_cache[key]

    def _dft(self, n: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        key = (n, dtype, device)
        if key not in self._dft_cache:
            self._dft_cache[key] = dft_matrices(n, dtype, device)
        return self._dft_cache[key]

    def prepare(self, height: int, width: int, device: torch.device) -> None:
        """Fill the real form's caches for float32 inputs of ``height`` x ``width``: what an
        export needs before tracing (built inside a trace they would not be constants), at
        no convolution's cost."""
        self._filter(height, width, device)
        self._dft(height, torch.float32, device)
        self._dft(width, torch.float32, device)

    def cached_sizes(self) -> int:
        return len(self._window_cache) + len(self._dft_cache)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layout = torch.channels_last if is_channels_last(x) else torch.contiguous_format
        with torch.autocast(device_type=x.device.type, enabled=False):
            x = x.to(x.dtype if x.dtype == torch.float64 else torch.float32, memory_format=torch.contiguous_format)
            h, w = x.shape[-2:]
            if self.real_dft:
                return self._forward_real(x, h, w).contiguous(memory_format=layout)
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

    def _forward_real(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        dft = (*self._dft(h, x.dtype, x.device), *self._dft(w, x.dtype, x.device))
        re, im = filtered_spectrum_real(x, self._filter(h, w, x.device).to(x.dtype), *dft)
        z = self.conv2(F.relu(self.conv1(torch.cat([re, im], dim=1))))
        re, im = torch.chunk(z, 2, dim=1)
        return x + inverse_real_part(re, im, *dft)


class LFM(SpectralFilterModule):
    def __init__(self, num_channels: int):
        super().__init__(num_channels, keep_high=False)


class HFM(SpectralFilterModule):
    def __init__(self, num_channels: int):
        super().__init__(num_channels, keep_high=True)


def use_real_dft(network: nn.Module, enabled: bool = True) -> None:
    """Switch every spectral filter module in ``network`` to the real form (or back)."""
    for module in network.modules():
        if isinstance(module, SpectralFilterModule):
            module.real_dft = enabled


@contextlib.contextmanager
def real_dft_form(network: nn.Module) -> Iterator[nn.Module]:
    """``network`` with the real form for the duration (what tracing for export needs)."""
    use_real_dft(network, True)
    try:
        yield network
    finally:
        use_real_dft(network, False)
