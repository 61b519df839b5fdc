"""Kernel values against independent, element-by-element formulas of docs/science.md."""
import math
import warnings

import numpy as np
import pytest

from bioflow.components import COMBINED_VARIANTS, Combined, DoG, Gabor, LowPass
from bioflow.errors import BioflowError


def spec_gabor_value(ksize, i, j, sigma, theta, b, gamma, psi):
    c = math.sqrt(math.log(2) / 2)
    lam = sigma * math.pi / c * (2**b - 1) / (2**b + 1)
    h = ksize // 2
    y, x = h - i, h - j
    xr = x * math.cos(theta) + y * math.sin(theta)
    yr = -x * math.sin(theta) + y * math.cos(theta)
    return math.exp(-0.5 * (xr**2 / sigma**2 + yr**2 * gamma**2 / sigma**2)) * math.cos(2 * math.pi * xr / lam + psi)


def spec_gaussian_value(ksize, i, j, s):
    g = [math.exp(-(n - (ksize - 1) / 2) ** 2 / (2 * s**2)) for n in range(ksize)]
    return g[i] * g[j] / sum(g) ** 2


def test_paper_gabor_bank_shape_count_and_values():
    k = Gabor().kernels()
    assert k.shape == (63, 63, 1, 24) and k.dtype == np.float64
    sigmas, thetas, bs, gammas, psis = [8], [0, math.pi / 4, math.pi / 2, 3 * math.pi / 4], [1, 1.8, 2.6], [0.5], \
        [math.pi / 2, 3 * math.pi / 2]
    order = [(s, t, b, g, p) for s in sigmas for t in thetas for b in bs for g in gammas for p in psis]
    for n in (0, 1, 5, 13, 23):
        for i, j in ((0, 0), (31, 31), (10, 40), (62, 3), (29, 35)):
            assert k[i, j, 0, n] == pytest.approx(spec_gabor_value(63, i, j, *order[n]), abs=1e-12)
    # psi = pi/2 at theta = 0: odd-symmetric in x, zero on the centre.
    assert k[31, 31, 0, 0] == pytest.approx(0.0, abs=1e-12)
    assert k[31, 20, 0, 0] == pytest.approx(-k[31, 42, 0, 0])


def test_gabor_repeats_over_input_channels():
    k = Gabor(ksize=7, sigmas=[2], bs=[1], gammas=[0.5], thetas=[0.3], psis=[0]).kernels(in_channels=3)
    assert k.shape == (7, 7, 3, 1)
    np.testing.assert_array_equal(k[:, :, 0], k[:, :, 2])


def test_dog_order_and_values():
    bank = DoG()
    k = bank.kernels()
    assert k.shape == (63, 63, 1, 32)
    # kernel 2*(sigma_index*4 + gamma_index) is ON, the next one OFF.
    for sigma_i, gamma_i in ((0, 0), (1, 3), (3, 2)):
        s, g = [1, 2, 4, 8][sigma_i], [1.6, 1.8, 2.0, 2.2][gamma_i]
        n = 2 * (sigma_i * 4 + gamma_i)
        for i, j in ((31, 31), (30, 33), (0, 62), (25, 31)):
            on = spec_gaussian_value(63, i, j, s) - spec_gaussian_value(63, i, j, s * g)
            assert k[i, j, 0, n] == pytest.approx(on, abs=1e-14)
            assert k[i, j, 0, n + 1] == pytest.approx(-on, abs=1e-14)
    assert abs(k[..., 0, 0].sum()) < 1e-3  # centre and surround both sum to ~1


def test_lowpass_values_sum_to_one():
    k = LowPass().kernels()
    assert k.shape == (63, 63, 1, 4)
    np.testing.assert_allclose(k.sum(axis=(0, 1, 2)), 1.0, rtol=1e-12)
    assert k[31, 28, 0, 1] == pytest.approx(spec_gaussian_value(63, 31, 28, 2.0), rel=1e-12)


@pytest.mark.parametrize("variant", sorted(COMBINED_VARIANTS))
def test_combined_variants(variant):
    dog_k, dog_s, gabor_k, gabor_s = COMBINED_VARIANTS[variant]
    bank = Combined(variant=variant)
    dog, gabor = bank.kernels()
    assert dog.shape == (dog_k, dog_k, 1, 8 * len(dog_s))
    assert gabor.shape == (gabor_k, gabor_k, 8 * len(dog_s), 24 * len(gabor_s))
    assert [s.kind for s in bank.stages()] == ["dog", "gabor"]


def test_trim_values():
    assert COMBINED_VARIANTS["trim"] == (31, (1.0, 2.0, 4.0, 8.0), 31, (8.0,))
    assert COMBINED_VARIANTS["small"] == (15, (1.0, 2.0, 4.0), 31, (4.0,))


@pytest.mark.parametrize("make, fragment", [
    (lambda: DoG(gammas=[1.0, 2.0]), "gammas"),
    (lambda: DoG(gammas=[0.5]), "0.5"),
    (lambda: Gabor(ksize=64), "64"),
    (lambda: Gabor(ksize=0), "ksize"),
    (lambda: LowPass(ksize=-3), "-3"),
    (lambda: Gabor(sigmas=[]), "sigmas"),
    (lambda: Gabor(thetas=[]), "thetas"),
    (lambda: LowPass(sigmas=[0]), "sigmas"),
    (lambda: Combined(variant="huge"), "'huge'"),
])
def test_invalid_parameters(make, fragment):
    with pytest.raises(ValueError, match=None) as info:
        make()
    assert isinstance(info.value, BioflowError)
    assert fragment in str(info.value)


def test_unknown_variant_lists_valid_ones():
    with pytest.raises(BioflowError, match="'full', 'medium', 'small' or 'trim'"):
        Combined(variant="huge")


@pytest.mark.parametrize("make, fragments", [
    # sigma**2 underflows to 0: every value of the 63x63 kernel is 0/0
    (lambda: LowPass(sigmas=[1.0, 1e-200]), ["LowPass: the kernel for sigmas=1e-200", "3969 NaN or infinite values "
                                             "of 3969", "Change LowPass.sigmas"]),
    (lambda: DoG(sigmas=[1e-200]), ["DoG: the kernel for sigmas=1e-200, gammas=1.6", "Change DoG.sigmas or"]),
    # a bandwidth this small makes the wavelength 0 (a zero wavelength): cos(x / 0)
    (lambda: Gabor(bs=[1e-320]), ["Gabor: the kernel for sigmas=8.0, thetas=0.0, bs=1e-320", "NaN or infinite"]),
    # a huge sigma overflows in float64 (inf / inf), not with a Python OverflowError
    (lambda: Gabor(sigmas=[1e-300]), ["Gabor: the kernel for sigmas=1e-300", "NaN or infinite"]),
    # a 1x1 DoG: centre and surround are both [[1]], so every kernel is 0
    (lambda: DoG(ksize=1), ["DoG: the kernel for sigmas=1.0, gammas=1.6 is all zero at ksize 1", "DoG.ksize"]),
    (lambda: Combined(dog=DoG(ksize=3, sigmas=[1e-200])), ["DoG: the kernel for sigmas=1e-200"]),
])
def test_degenerate_parameters_are_refused_at_construction(make, fragments):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy RuntimeWarning on the way: one clear error
        with pytest.raises(BioflowError) as info:
            make()
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_the_paper_banks_pass_the_kernel_check():
    for bank in (Gabor(), DoG(), LowPass(), *(Combined(variant=v) for v in COMBINED_VARIANTS)):
        for kernels in (bank.kernels() if isinstance(bank, Combined) else [bank.kernels()]):
            assert np.isfinite(kernels).all() and np.abs(kernels).reshape(-1, kernels.shape[-1]).max(0).min() > 0
