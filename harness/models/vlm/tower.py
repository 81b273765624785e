"""The offline VLM's image encoder: a small CNN whose 4x4 feature grid becomes 16 image tokens,
read by one attention layer with a CLS token; a transformers model, so LLaVA can hold it.

Why not a ViT: trained from scratch on easy-VQA's train images, a small ViT (or Swin) learned the
shapes far more slowly than three convolutions (docs/vlm.md). The attention layer on top keeps the two
things LLaVA and HiRED-style token dropping expect of a vision tower: a sequence of patch tokens
after a CLS token (LLaVA's `vision_feature_select_strategy="default"` drops the CLS), and a CLS
attention over the patches that says which of them matter (`attentions`, last layer first).

The classes register with transformers' Auto classes when this module is imported (harness does
before it loads any vision-language model), so a saved folder loads with
AutoModelForImageTextToText wherever harness is installed: nothing is fetched, no remote code runs.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutputWithPooling


class GridEncoderConfig(PretrainedConfig):
    model_type = "harness_grid_encoder"

    def __init__(
        self,
        image_size: int = 64,
        patch_size: int = 16,
        channels: tuple[int, ...] = (32, 64),
        hidden_size: int = 128,
        num_attention_heads: int = 4,
        intermediate_size: int = 256,
        layer_norm_eps: float = 1e-5,
        initializer_range: float = 0.02,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.image_size = image_size
        self.patch_size = patch_size
        self.channels = list(channels)
        self.hidden_size = hidden_size
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.layer_norm_eps = layer_norm_eps
        self.initializer_range = initializer_range

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size


class _Stem(nn.Module):
    """3x3 convolutions, each followed by ReLU and 2x2 max-pooling, then one more convolution
    pooled down to the grid: image_size/patch_size cells per side, hidden_size features each."""

    def __init__(self, config: GridEncoderConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = 3
        for out in config.channels:
            layers += [nn.Conv2d(width, out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            width = out
        left = config.patch_size // 2 ** len(config.channels)
        if left < 1 or 2 ** len(config.channels) * left != config.patch_size:
            raise ValueError(f"patch_size {config.patch_size} is not 2^{len(config.channels)} times a whole number")
        layers += [nn.Conv2d(width, config.hidden_size, 3, padding=1), nn.ReLU(), nn.MaxPool2d(left)]
        self.layers = nn.Sequential(*layers)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.layers(pixel_values).flatten(2).transpose(1, 2)  # [batch, grid*grid, hidden]


class _Block(nn.Module):
    """One pre-norm transformer layer whose attention weights are returned (HiRED reads them)."""

    def __init__(self, config: GridEncoderConfig) -> None:
        super().__init__()
        self.heads = config.num_attention_heads
        self.norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.out = nn.Linear(config.hidden_size, config.hidden_size)
        self.norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = nn.Sequential(
            nn.Linear(config.hidden_size, config.intermediate_size),
            nn.GELU(),
            nn.Linear(config.intermediate_size, config.hidden_size),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch, length, width = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(batch, length, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4)
        weights = (q @ k.transpose(-1, -2) / math.sqrt(width // self.heads)).softmax(-1)
        x = x + self.out((weights @ v).transpose(1, 2).reshape(batch, length, width))
        return x + self.mlp(self.norm2(x)), weights


class GridEncoder(PreTrainedModel):
    config_class = GridEncoderConfig
    base_model_prefix = "grid_encoder"
    main_input_name = "pixel_values"

    def __init__(self, config: GridEncoderConfig) -> None:
        super().__init__(config)
        self.patch_size = config.patch_size
        self.stem = _Stem(config)
        self.cls = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.position = nn.Parameter(torch.zeros(1, config.grid**2 + 1, config.hidden_size))
        self.block = _Block(config)
        self.post_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if module is self:
            nn.init.normal_(self.cls, std=self.config.initializer_range)
            nn.init.normal_(self.position, std=self.config.initializer_range)

    def forward(self, pixel_values: torch.Tensor, **kwargs: Any) -> BaseModelOutputWithPooling:
        """Always returns both hidden states (the tokens, then the layer's output, normalised: what
        LLaVA projects) and the layer's attention weights: they are tiny, and LLaVA and droptokens
        read them."""
        tokens = self.stem(pixel_values.to(self.cls.dtype))
        embedded = torch.cat([self.cls.expand(len(tokens), -1, -1), tokens], dim=1) + self.position
        hidden, weights = self.block(embedded)
        hidden = self.post_layernorm(hidden)
        return BaseModelOutputWithPooling(
            last_hidden_state=hidden,
            pooler_output=hidden[:, 0],
            hidden_states=(embedded, hidden),
            attentions=(weights,),
        )


AutoConfig.register(GridEncoderConfig.model_type, GridEncoderConfig)
AutoModel.register(GridEncoderConfig, GridEncoder)
