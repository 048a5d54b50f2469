"""The MobileNetV2-like ImageNet search space of the WRCor paper (Kun Jing et al., the released
``search.py --search_space MobileNetV2``; a cut-down Zen-NAS PlainNet with SE).

- :mod:`spaces.mobilenetv2.arch`: the architecture value, its strings (``<structure>@<resolution>``),
  the structure reader and the membership rules (the released ranges);
- :mod:`spaces.mobilenetv2.cost`: the resource accounting (the released FLOPs and model size, the
  true parameter count, the Conv+Linear MACs);
- :mod:`spaces.mobilenetv2.genotype`: the released ``genotypes.py`` form (written for the found
  architecture of a search, read back, the official file included);
- :mod:`spaces.mobilenetv2.network`: the network (SE on, post-add ReLU, projection shortcuts);
- :mod:`spaces.mobilenetv2.space`: :class:`MobileNetV2Space`, sampling and mutation as released,
  and a benchmark with no targets (no ImageNet ground truth offline).
"""
from __future__ import annotations

from .arch import (
    B_RANGES,
    C_RANGES,
    EXPANSIONS,
    KERNELS,
    L_RANGES,
    RESOLUTIONS,
    MBBlock,
    MobileNetV2Arch,
    check_member,
    mid_channels,
    se_channels,
    smart_round,
)
from .cost import conv_linear_macs, num_params, official_flops, official_model_size
from .genotype import TRAIN_SCRIPT, genotype_source, read_genotypes, training_command
from .network import InvertedResidual, MobileNetV2Network, SqueezeExcite
from .space import (
    RELEASED_FLOPS_LIMIT,
    Draw,
    FlopsLimitError,
    MobileNetV2Space,
    NoBenchmarkTableError,
    NoGroundTruth,
)

__all__ = ["B_RANGES", "C_RANGES", "EXPANSIONS", "KERNELS", "L_RANGES", "RELEASED_FLOPS_LIMIT", "RESOLUTIONS",
           "TRAIN_SCRIPT", "genotype_source", "read_genotypes", "training_command", "Draw",
           "FlopsLimitError", "InvertedResidual", "MBBlock", "MobileNetV2Arch", "MobileNetV2Network",
           "MobileNetV2Space", "NoBenchmarkTableError", "NoGroundTruth", "SqueezeExcite", "check_member",
           "conv_linear_macs", "mid_channels", "num_params", "official_flops", "official_model_size", "se_channels",
           "smart_round"]
