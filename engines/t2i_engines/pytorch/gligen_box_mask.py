"""GLIGEN with box-masked gated self-attention: an object's grounding token reaches only the
visual tokens inside its box.

GLIGEN (Li et al. 2023, eq. 8) adds tanh(γ)·TS(SelfAttn([v; h]))  to the visual tokens v,
where each grounding token h_e = MLP(phrase_e, Fourier(box_e)) carries its box only as
features. To route an object's phrase to its box, a visual token must know its own place.
SD-1.5's deep pretrained UNet has learned that from its convolutions' zero padding; a small
UNet trained from scratch has not, and ignores its boxes (bundles/shapes/TRAINING.md, "Why the
boxes are ignored"). Here the attention itself is masked, as layout models after GLIGEN do
with instance masks (MIGC, InstanceDiffusion): visual token i may attend to grounding token e
only when i's grid cell overlaps box e (unused slots, which hold GLIGEN's learned null token,
stay visible to all); visual tokens see each other as before. The weights are GLIGEN's own, so
a folder saves and loads as a plain ``StableDiffusionGLIGENPipeline``; a small
``unet/gligen_box_mask.json`` beside its weights (``t2i_engines.box_mask_marker``) says the
drafter was trained to run masked, and loaders (torch engine, ONNX export) switch it on.
"""
from __future__ import annotations

import math

import torch
from diffusers.models.attention import GatedSelfAttentionDense
from diffusers.models.embeddings import GLIGENTextBoundingboxProjection

_PACKED = 5  # each grounding token carries its box (4) and its slot-used flag (1) behind it


class BoxCarryingProjection(GLIGENTextBoundingboxProjection):
    """GLIGEN's position net whose output tokens also carry their raw box and slot flag, so the
    fusers (which diffusers hands only the tokens) can mask by box."""

    @classmethod
    def replacing(cls, net: GLIGENTextBoundingboxProjection) -> "BoxCarryingProjection":
        new = cls(net.positive_len, net.out_dim, fourier_freqs=net.fourier_embedder_dim)
        new.load_state_dict(net.state_dict())
        return new.to(device=net.null_position_feature.device,
                      dtype=net.null_position_feature.dtype)

    def forward(self, boxes, masks, positive_embeddings=None, **kwargs):
        objs = super().forward(boxes=boxes, masks=masks,
                               positive_embeddings=positive_embeddings, **kwargs)
        return torch.cat([objs, boxes.to(objs.dtype), masks[..., None].to(objs.dtype)], dim=-1)


def grid_cells(side: int, like: torch.Tensor) -> torch.Tensor:
    """(side², 4) cells (x0, y0, x1, y1) in [0, 1] of a square token grid, row-major as
    ``Transformer2DModel`` flattens its input."""
    ys, xs = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    xs, ys = xs.flatten().to(like), ys.flatten().to(like)
    return torch.stack([xs / side, ys / side, (xs + 1) / side, (ys + 1) / side], dim=-1)


def cells_overlapping(boxes: torch.Tensor, n_visual: int) -> torch.Tensor:
    """(B, n_visual, S) bool: does visual token i's grid cell overlap box s with positive
    area? ``boxes`` is (B, S, 4), (x0, y0, x1, y1) in [0, 1]."""
    side = math.isqrt(n_visual)
    if side * side != n_visual:
        raise ValueError(f"box-masked attention needs a square token grid, got {n_visual} tokens")
    cells = grid_cells(side, boxes)[None, :, None, :]  # (1, N, 1, 4)
    b = boxes[:, None, :, :]  # (B, 1, S, 4)
    overlap_w = torch.minimum(cells[..., 2], b[..., 2]) - torch.maximum(cells[..., 0], b[..., 0])
    overlap_h = torch.minimum(cells[..., 3], b[..., 3]) - torch.maximum(cells[..., 1], b[..., 1])
    return (overlap_w > 0) & (overlap_h > 0)


def visible_objects(boxes: torch.Tensor, used: torch.Tensor, n_visual: int) -> torch.Tensor:
    """(B, n_visual, n_slots) bool: may visual token i see grounding token e? Yes when i's
    cell overlaps box e with positive area, or slot e is unused (GLIGEN's null token)."""
    return cells_overlapping(boxes, n_visual) | (used[:, None, :] < 0.5)


class BoxMaskedFuser(GatedSelfAttentionDense):
    """``GatedSelfAttentionDense`` with its visual rows' attention to grounding tokens masked
    by box (see the module docstring). Same parameters, same state-dict keys."""

    @classmethod
    def replacing(cls, fuser: GatedSelfAttentionDense) -> "BoxMaskedFuser":
        attn = fuser.attn
        new = cls(fuser.linear.out_features, fuser.linear.in_features, attn.heads,
                  attn.inner_dim // attn.heads)
        new.load_state_dict(fuser.state_dict())
        new.enabled = fuser.enabled
        return new.to(device=fuser.linear.weight.device, dtype=fuser.linear.weight.dtype)

    def forward(self, x: torch.Tensor, objs: torch.Tensor, scale=1.0) -> torch.Tensor:
        """GLIGEN's two gated residuals (each times ``scale``: the ONNX graph's switch)."""
        if not self.enabled:
            return x
        tokens, boxes, used = objs[..., :-_PACKED], objs[..., -_PACKED:-1], objs[..., -1]
        n_visual, n_slots = x.shape[1], tokens.shape[1]
        tokens = self.linear(tokens)
        n = n_visual + n_slots
        allowed = torch.ones(x.shape[0], n, n, dtype=torch.bool, device=x.device)
        allowed[:, :n_visual, n_visual:] = visible_objects(boxes, used, n_visual)
        bias = torch.zeros(allowed.shape, dtype=x.dtype, device=x.device).masked_fill(
            ~allowed, torch.finfo(x.dtype).min)
        attended = self.attn(self.norm1(torch.cat([x, tokens], dim=1)), attention_mask=bias)
        x = x + scale * self.alpha_attn.tanh() * attended[:, :n_visual, :]
        return x + scale * self.alpha_dense.tanh() * self.ff(self.norm2(x))


def make_box_masked(unet) -> int:
    """Switch ``unet`` (a GLIGEN ``UNet2DConditionModel``) to box-masked fusers, in place;
    returns how many fusers were replaced. Weights are shared, so it is cheap and idempotent."""
    if not isinstance(getattr(unet, "position_net", None), GLIGENTextBoundingboxProjection):
        raise ValueError("box masking needs a GLIGEN UNet (attention_type='gated')")
    if not isinstance(unet.position_net, BoxCarryingProjection):
        unet.position_net = BoxCarryingProjection.replacing(unet.position_net)
    replaced = 0
    for module in list(unet.modules()):
        fuser = getattr(module, "fuser", None)
        if isinstance(fuser, GatedSelfAttentionDense) and not isinstance(fuser, BoxMaskedFuser):
            module.fuser = BoxMaskedFuser.replacing(fuser)
            replaced += 1
    return replaced
