"""Resource accounting of a MobileNetV2-space architecture, from its value alone (no network built).

Four counts, each per sample, for ``num_classes`` outputs (the released search: 1000):

- :func:`official_flops` -- the released ``PlainNet.get_FLOPs()`` (what ``search.py`` compares
  with ``flops_limit``), reproduced term by term and in the same order of (float) additions, so
  the value is the official one exactly.  It counts multiply-accumulates (MACs), with ``R`` the
  input resolution of a layer (``R // s`` after a stride ``s``, floored):

  * each convolution ``Cin * Cout * k**2 * R**2 // s**2 // groups`` (integer floor divisions;
    a depthwise conv has ``groups = Cin = Cout``); each BN ``R**2 * C`` (of its output);
    ReLU, pooling, the Sigmoid and the bilinear resize count 0;
  * SE(M) ``2 * M * se + M + M * R**2`` (its two 1x1 convs on the pooled vector, a bias-like
    ``M`` term and the gating product);
  * the Linear ``Cin * Cout`` (bias ignored);
  * quirk: the projection shortcut of a block's first sub-layer adds
    ``Cin * Cout * (R' / s)**2 + (R' / s)**2 * Cout`` as a *float*, with ``R'`` the resolution
    *after* the stride, so it is counted 4x too low at stride 2 (and the value can have a
    fractional part when ``R'`` is odd).  Hence the official count is about 0.8-1.1% below
    :func:`conv_linear_macs` on this space.

- :func:`official_model_size` -- the released ``get_model_size()``: not the number of parameters.
  It counts each BN as ``C`` (not ``2C``) except inside SE (``2C``), the projection conv's weight
  and bias but not its BN, and the Linear as ``Cin * Cout + 1``.
- :func:`num_params` -- the true number of parameters (the sum of ``numel`` over the built
  network's parameters: conv weights, the projection's bias, BN weight and bias, Linear weight and
  bias).
- :func:`conv_linear_macs` -- the geometrically correct multiply-accumulates of every Conv2d and
  the Linear (what fvcore counts for them): ``Cout * Cin / groups * k**2 * H_out * W_out`` with
  ``H_out = (H + 2p - k) // s + 1``; no BN, activation, SE product or bias terms.
"""
from __future__ import annotations

from .arch import MobileNetV2Arch, se_channels

__all__ = ["conv_linear_macs", "num_params", "official_flops", "official_model_size"]


def _conv_flops(cin: int, cout: int, k: int, res: int, stride: int, groups: int = 1) -> int:
    # ConvKX.get_FLOPs / ConvDW.get_FLOPs (left to right: the floor divisions in this order)
    return cin * cout * k ** 2 * res ** 2 // stride ** 2 // groups


def official_flops(arch: MobileNetV2Arch, num_classes: int = 1000) -> float:
    """The released ``get_FLOPs()`` of ``arch`` (a float, as the released code returns it)."""
    res = arch.resolution
    total: float = 0  # PlainNet.get_FLOPs starts from the int 0
    # the stem: a super block (its sum starts from 0.0): ConvKX, BN, RELU
    s = arch.stem_stride
    stem = 0.0
    stem += _conv_flops(3, arch.stem_channels, 3, res, s)
    res = res // s
    stem += res ** 2 * arch.stem_channels
    total += stem
    for block in arch.blocks:
        m, k = block.mid_channels, block.kernel
        se = se_channels(m)
        cin, stride = block.in_channels, block.stride
        part = 0.0  # PlainNetSuperBlockClass.get_FLOPs
        for i in range(block.sub_layers):
            # ResBlockProj / ResBlock.get_FLOPs: an int sum over the inner blocks, then the projection
            r = res
            f = _conv_flops(cin, m, 1, r, 1)        # ConvKX(Cin, M, 1, 1)
            f += r ** 2 * m                          # BN(M)
            f += m * k ** 2 * r ** 2 // stride ** 2  # ConvDW(M, k, s).get_FLOPs
            r = r // stride
            f += r ** 2 * m                          # BN(M)
            f += m * se + se * m + m + m * r ** 2    # SE(M)
            f += _conv_flops(m, block.out_channels, 1, r, 1)  # ConvKX(M, Cout, 1, 1)
            f += r ** 2 * block.out_channels         # BN(Cout)
            if i == 0:  # ResBlockProj: the projection, counted on the already-strided resolution
                f += cin * block.out_channels * (r / stride) ** 2 + (r / stride) ** 2 * block.out_channels
            part += f
            res, cin, stride = r, block.out_channels, 1
        total += part
    head = 0.0
    head += _conv_flops(arch.blocks[-1].out_channels, arch.head_channels, 1, res, 1)
    head += res ** 2 * arch.head_channels
    total += head
    total += arch.head_channels * num_classes  # Linear.get_FLOPs
    return total


def official_model_size(arch: MobileNetV2Arch, num_classes: int = 1000) -> int:
    """The released ``get_model_size()`` of ``arch`` (an integer; the released code returns it as a
    float of the same value)."""
    size = 3 * arch.stem_channels * 9 + arch.stem_channels
    for block in arch.blocks:
        m, k, cout = block.mid_channels, block.kernel, block.out_channels
        se = se_channels(m)
        cin = block.in_channels
        for i in range(block.sub_layers):
            size += cin * m + m                              # ConvKX + BN
            size += m * k ** 2 + m                           # ConvDW + BN
            size += m * se + 2 * se + se * m + 2 * m         # SE
            size += m * cout + cout                          # ConvKX + BN
            if i == 0:
                size += cin * cout + cout                    # the projection conv (weight + bias), not its BN
            cin = cout
    size += arch.blocks[-1].out_channels * arch.head_channels + arch.head_channels
    size += arch.head_channels * num_classes + 1             # Linear: Cin * Cout + int(bias)
    return size


def num_params(arch: MobileNetV2Arch, num_classes: int = 1000) -> int:
    """The true number of parameters of the network of ``arch`` (Σ numel of its parameters)."""
    n = 3 * 9 * arch.stem_channels + 2 * arch.stem_channels
    for block in arch.blocks:
        m, k, cout = block.mid_channels, block.kernel, block.out_channels
        se = se_channels(m)
        cin = block.in_channels
        for i in range(block.sub_layers):
            n += cin * m + 2 * m + m * k ** 2 + 2 * m
            n += m * se + 2 * se + se * m + 2 * m
            n += m * cout + 2 * cout
            if i == 0:
                n += cin * cout + cout + 2 * cout  # the projection conv's weight and bias, its BN
            cin = cout
    n += arch.blocks[-1].out_channels * arch.head_channels + 2 * arch.head_channels
    n += arch.head_channels * num_classes + num_classes
    return n


def _out(res: int, k: int, stride: int, pad: int) -> int:
    return (res + 2 * pad - k) // stride + 1


def conv_linear_macs(arch: MobileNetV2Arch, num_classes: int = 1000) -> int:
    """The geometrically correct Conv2d + Linear multiply-accumulates of the network of ``arch``
    at its resolution (per sample)."""
    res = _out(arch.resolution, 3, arch.stem_stride, 1)
    macs = 3 * 9 * arch.stem_channels * res ** 2
    for block in arch.blocks:
        m, k, cout = block.mid_channels, block.kernel, block.out_channels
        se = se_channels(m)
        cin, stride = block.in_channels, block.stride
        for i in range(block.sub_layers):
            macs += cin * m * res ** 2                      # expand 1x1
            out = _out(res, k, stride, (k - 1) // 2)
            macs += m * k ** 2 * out ** 2                   # depthwise
            macs += 2 * m * se                              # SE's two 1x1 convs on the pooled 1x1 map
            macs += m * cout * out ** 2                     # project 1x1
            if i == 0:
                macs += cin * cout * _out(res, 1, stride, 0) ** 2  # the projection shortcut
            res, cin, stride = out, cout, 1
    macs += arch.blocks[-1].out_channels * arch.head_channels * res ** 2
    macs += arch.head_channels * num_classes
    return macs
