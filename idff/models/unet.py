"""The ADM / guided-diffusion UNet that IDFF trains on images and SST fields.

Architecture lineage: Ho et al.'s DDPM UNet as refined in Dhariwal & Nichol's "guided-diffusion"
(ADM), the model that torchcfm ships as ``UNetModelWrapper`` and that the IDFF code configured
(128 channels, multipliers [1, 2, 2, 4] / [1, 2, 2, 4, 4], 2 res blocks, attention at 16 x 16,
64 channels per head, dropout 0.1, no scale-shift norm). This is a compact re-implementation
written for this project (torchcfm cannot be installed beside the pinned torchvision and
diffusers is not a dependency); its layer layout and parameter count match the reference
(the [1, 2, 2, 2] CIFAR-10 configuration has exactly DDPM's 35,746,307 parameters), its state
dict does not (checkpoints of torchcfm cannot be loaded).

Deviations, all invisible for power-of-two sizes: attention is placed by the actual feature-map
side (``attention_resolutions`` in pixels) rather than by a downsampling factor, and the
upsampling returns to the size of the matching skip connection, so sizes such as 60 x 60
(60 -> 30 -> 15) and odd sides work. IDFF's two heads are ``out_channels = 2 * in_channels``;
split the output with ``out.chunk(2, dim=1)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .unet_blocks import (
    AttentionBlock,
    Downsample,
    EmbedSequential,
    GroupNorm32,
    ResBlock,
    Upsample,
    timestep_embedding,
    zero_init,
)


class UNet(nn.Module):
    """UNet f(x, t[, cond]) -> (B, out_channels, H, W) for x of shape (B, in_channels, H, W).

    ``t`` is a scalar or a (B,) tensor of times in [0, 1], embedded sinusoidally as given
    (``time_scale`` multiplies it first; 1 reproduces the IDFF/torchcfm convention).
    ``n_cond > 0`` adds an ``nn.Embedding(n_cond, 4 * model_channels)`` of an integer condition
    (class, lead time or frame index) to the time embedding; ``cond`` is then required.
    """

    def __init__(self, in_channels: int, out_channels: int, image_size: int | Sequence[int],
                 model_channels: int = 128, channel_mult: Sequence[int] = (1, 2, 2, 4),
                 num_res_blocks: int = 2, attention_resolutions: Sequence[int] = (16,),
                 num_heads: int = 4, num_head_channels: int = 64, dropout: float = 0.1,
                 n_cond: int = 0, norm_groups: int = 32, time_scale: float = 1.0):
        super().__init__()
        size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        _check_config(in_channels, out_channels, size, model_channels, channel_mult,
                      num_res_blocks, dropout, n_cond, norm_groups)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.image_size: tuple[int, int] = (int(size[0]), int(size[1]))
        self.model_channels, self.n_cond, self.time_scale = model_channels, n_cond, time_scale
        emb_ch = 4 * model_channels
        self.time_embed = nn.Sequential(nn.Linear(model_channels, emb_ch), nn.SiLU(),
                                        nn.Linear(emb_ch, emb_ch))
        self.cond_embed = nn.Embedding(n_cond, emb_ch) if n_cond > 0 else None

        def heads(ch: int) -> int:
            return _n_heads(ch, num_heads, num_head_channels)

        def attn_here(hw: tuple[int, int]) -> bool:
            return min(hw) in attention_resolutions

        ch = model_channels * channel_mult[0]
        self.input_blocks = nn.ModuleList([EmbedSequential(nn.Conv2d(in_channels, ch, 3, padding=1))])
        skip_chans = [ch]
        hw = self.image_size
        self.attention_sides: list[int] = []
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                layers: list[nn.Module] = [ResBlock(ch, emb_ch, model_channels * mult, dropout,
                                                    norm_groups)]
                ch = model_channels * mult
                if attn_here(hw):
                    layers.append(AttentionBlock(ch, heads(ch), norm_groups))
                    self.attention_sides.append(min(hw))
                self.input_blocks.append(EmbedSequential(*layers))
                skip_chans.append(ch)
            if level != len(channel_mult) - 1:
                self.input_blocks.append(EmbedSequential(Downsample(ch)))
                skip_chans.append(ch)
                hw = ((hw[0] + 1) // 2, (hw[1] + 1) // 2)
        self.lowest_size = hw
        self.middle_block = EmbedSequential(
            ResBlock(ch, emb_ch, ch, dropout, norm_groups),
            AttentionBlock(ch, heads(ch), norm_groups),
            ResBlock(ch, emb_ch, ch, dropout, norm_groups),
        )
        self.output_blocks = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mult))):
            for i in range(num_res_blocks + 1):
                layers = [ResBlock(ch + skip_chans.pop(), emb_ch, model_channels * mult, dropout,
                                   norm_groups)]
                ch = model_channels * mult
                if attn_here(hw):
                    layers.append(AttentionBlock(ch, heads(ch), norm_groups))
                if level and i == num_res_blocks:
                    layers.append(Upsample(ch))
                    hw = _side_at_level(self.image_size, level - 1)
                self.output_blocks.append(EmbedSequential(*layers))
        self.out = nn.Sequential(GroupNorm32(norm_groups, ch), nn.SiLU(),
                                 zero_init(nn.Conv2d(ch, out_channels, 3, padding=1)))

    def forward(self, x: torch.Tensor, t: torch.Tensor | float,
                cond: torch.Tensor | None = None) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels or tuple(x.shape[-2:]) != self.image_size:
            raise ValueError(f"UNet expects x of shape (B, {self.in_channels}, {self.image_size[0]}, "
                             f"{self.image_size[1]}), got {tuple(x.shape)}")
        emb = self.time_embed(timestep_embedding(self._times(t, x) * self.time_scale,
                                                 self.model_channels))
        if self.cond_embed is not None:
            emb = emb + self.cond_embed(self._cond(cond, x))
        elif cond is not None:
            raise ValueError("cond was given but the UNet was built with n_cond=0; "
                             "set n_cond to the number of condition values")
        hs = []
        h = x
        for block in self.input_blocks:
            h = block(h, emb)
            hs.append(h)
        h = self.middle_block(h, emb)
        for block in self.output_blocks:
            h = torch.cat([h, hs.pop().to(h.dtype)], dim=1)
            h = block(h, emb, size=tuple(hs[-1].shape[-2:]) if hs else None)
        return self.out(h).to(x.dtype)

    @staticmethod
    def _times(t: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(t, device=x.device)
        if t.numel() == 1:
            return t.reshape(1).expand(x.shape[0])
        if t.numel() != x.shape[0]:
            raise ValueError(f"t must be a scalar or hold one time per sample ({x.shape[0]}), "
                             f"got shape {tuple(t.shape)}")
        return t.reshape(x.shape[0])

    def _cond(self, cond: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
        if cond is None:
            raise ValueError(f"this UNet is conditional (n_cond={self.n_cond}): pass cond, "
                             f"a LongTensor of shape (B,) with values in [0, {self.n_cond})")
        cond = torch.as_tensor(cond, device=x.device)
        if cond.dtype not in (torch.int64, torch.int32) or cond.shape != (x.shape[0],):
            raise ValueError(f"cond must be an integer tensor of shape ({x.shape[0]},), got "
                             f"{cond.dtype} {tuple(cond.shape)}")
        # a range check syncs the GPU, so only on CPU; CUDA reports a device-side assert instead
        if cond.device.type == "cpu" and cond.numel() and (cond.min() < 0 or cond.max() >= self.n_cond):
            raise ValueError(f"cond values must lie in [0, {self.n_cond}), got "
                             f"[{int(cond.min())}, {int(cond.max())}]")
        return cond.long()


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _side_at_level(size: tuple[int, int], level: int) -> tuple[int, int]:
    h, w = size
    for _ in range(level):
        h, w = (h + 1) // 2, (w + 1) // 2
    return h, w


def _n_heads(ch: int, num_heads: int, num_head_channels: int) -> int:
    if num_head_channels > 0:
        if ch % num_head_channels:
            raise ValueError(f"attention at {ch} channels cannot use num_head_channels="
                             f"{num_head_channels}: it must divide the channel count "
                             f"(or set num_head_channels=-1 to use num_heads)")
        return ch // num_head_channels
    if num_heads < 1 or ch % num_heads:
        raise ValueError(f"num_heads={num_heads} must be >= 1 and divide the {ch} attention channels")
    return num_heads


def _check_config(in_channels: int, out_channels: int, size: tuple, model_channels: int,
                  channel_mult: Sequence[int], num_res_blocks: int, dropout: float, n_cond: int,
                  norm_groups: int) -> None:
    if in_channels < 1 or out_channels < 1:
        raise ValueError(f"in_channels and out_channels must be >= 1, got {in_channels}, {out_channels}")
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"image_size must be an int or (H, W) of positive ints, got {size}")
    if not channel_mult or min(channel_mult) < 1:
        raise ValueError(f"channel_mult must be a non-empty list of positive ints, got {channel_mult}")
    if num_res_blocks < 1:
        raise ValueError(f"num_res_blocks must be >= 1, got {num_res_blocks}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
    if n_cond < 0:
        raise ValueError(f"n_cond must be >= 0 (0 = unconditional), got {n_cond}")
    for mult in channel_mult:
        if (model_channels * mult) % norm_groups:
            raise ValueError(f"GroupNorm with {norm_groups} groups needs channel counts divisible by "
                             f"it; model_channels={model_channels} x {mult} is not (change "
                             f"model_channels or norm_groups)")
