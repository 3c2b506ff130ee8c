"""Regional cross-attention for a diffusers UNet (see ``t2i_engines.regional_prompts``).

The UNet's ``encoder_hidden_states`` carry ``REGION_CHANNELS`` numbers behind each context
token (its block's box and a phrase-block flag). ``RegionalCrossAttnProcessor`` strips them,
masks the attention so that a visual token reads phrase k only where its grid cell overlaps
box k and the background block only where it lies in no box, and then runs diffusers' own
``AttnProcessor2_0``. A context without the extra channels (the plain text-to-image path) is
plain cross-attention, so one UNet serves both paths; the weights are untouched.
"""
from __future__ import annotations

import torch
from diffusers.models.attention_processor import AttnProcessor2_0

from t2i_engines.pytorch.gligen_box_mask import cells_overlapping
from t2i_engines.regional_prompts import REGION_CHANNELS


def regional_visibility(key_boxes: torch.Tensor, key_is_phrase: torch.Tensor,
                        n_visual: int) -> torch.Tensor:
    """(B, n_visual, L) bool: may visual token i read context token l? A phrase token: when
    i's cell overlaps its box. A background token: when i's cell overlaps no phrase's box."""
    phrase = key_is_phrase > 0.5  # (B, L)
    in_region = cells_overlapping(key_boxes, n_visual) & phrase[:, None, :]  # (B, N, L)
    in_any = in_region.any(dim=-1, keepdim=True)  # (B, N, 1)
    # logical ops, not torch.where: onnxruntime has no boolean Where
    return in_region | (~phrase[:, None, :] & ~in_any)


class RegionalCrossAttnProcessor(AttnProcessor2_0):
    """Cross-attention that honours the region channels of a packed context (see above)."""

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None,
                 temb=None, *args, **kwargs):
        if (encoder_hidden_states is not None
                and encoder_hidden_states.shape[-1] == attn.to_k.in_features + REGION_CHANNELS):
            regions = encoder_hidden_states[..., -REGION_CHANNELS:]
            encoder_hidden_states = encoder_hidden_states[..., :-REGION_CHANNELS]
            allowed = regional_visibility(regions[..., :4], regions[..., 4], hidden_states.shape[1])
            # an additive (B, N, L) bias, 0 or the dtype's lowest; diffusers repeats it per head
            attention_mask = (~allowed).to(hidden_states.dtype) * torch.finfo(hidden_states.dtype).min
        return super().__call__(attn, hidden_states, encoder_hidden_states, attention_mask,
                                temb, *args, **kwargs)


def make_regional(unet) -> int:
    """Give every cross-attention (``attn2``) of ``unet`` the regional processor, in place;
    returns how many. Self-attention keeps its processor. Idempotent."""
    processors = dict(unet.attn_processors)
    changed = 0
    for name in processors:
        if name.endswith("attn2.processor"):
            processors[name] = RegionalCrossAttnProcessor()
            changed += 1
    unet.set_attn_processor(processors)
    return changed
