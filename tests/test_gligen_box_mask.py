"""Box-masked GLIGEN fusers: the mask, the fuser's routing, the UNet's equivalence with plain
GLIGEN when every box is the whole image, and the marker that loaders and exporters follow."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from diffusers import UNet2DConditionModel  # noqa: E402
from diffusers.models.attention import GatedSelfAttentionDense  # noqa: E402

from t2i_engines.box_mask_marker import (BOX_MASK_FILE, is_box_masked,  # noqa: E402
                                         mark_box_masked)
from t2i_engines.pytorch.gligen_box_mask import (BoxMaskedFuser, grid_cells,  # noqa: E402
                                                 make_box_masked, visible_objects)

SLOTS = 30


def gligen_inputs(batch: int, dim: int, boxes: list, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    b = torch.zeros(batch, SLOTS, 4)
    masks = torch.zeros(batch, SLOTS)
    b[:, :len(boxes)] = torch.tensor(boxes)
    masks[:, :len(boxes)] = 1.0
    return {"boxes": b, "masks": masks,
            "positive_embeddings": torch.randn(batch, SLOTS, dim, generator=g)}


@pytest.fixture(scope="module")
def unet(tiny_gligen_dir):
    return UNet2DConditionModel.from_pretrained(tiny_gligen_dir / "unet").eval()


@pytest.fixture(scope="module")
def masked_dir(tiny_gligen_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("masked") / "gligen"
    shutil.copytree(tiny_gligen_dir, out)
    mark_box_masked(out / "unet")
    return out


def test_grid_cells_are_row_major_and_tile_the_image():
    cells = grid_cells(4, torch.zeros(1))
    assert cells.shape == (16, 4)
    assert cells[1].tolist() == [0.25, 0.0, 0.5, 0.25]  # second token: one to the right
    assert cells[4].tolist() == [0.0, 0.25, 0.25, 0.5]  # fifth: next row
    assert float(((cells[:, 2] - cells[:, 0]) * (cells[:, 3] - cells[:, 1])).sum()) == 1.0


def test_a_token_sees_an_object_only_when_its_cell_overlaps_the_box():
    boxes = torch.zeros(1, 3, 4)
    boxes[0, 0] = torch.tensor([0.0, 0.0, 0.5, 1.0])  # left half
    boxes[0, 1] = torch.tensor([0.6, 0.6, 0.7, 0.7])  # inside the bottom-right cell only
    used = torch.tensor([[1.0, 1.0, 0.0]])  # slot 2 unused: GLIGEN's null token
    seen = visible_objects(boxes, used, 4)[0]  # 2x2 grid
    assert seen[:, 0].tolist() == [True, False, True, False]
    assert seen[:, 1].tolist() == [False, False, False, True]
    assert seen[:, 2].tolist() == [True] * 4
    with pytest.raises(ValueError, match="square"):
        visible_objects(boxes, used, 6)


def test_an_object_changes_only_the_tokens_in_its_box():
    torch.manual_seed(0)
    fuser = BoxMaskedFuser(16, 8, 2, 8)
    with torch.no_grad():
        fuser.alpha_attn.fill_(1.0)
        fuser.alpha_dense.fill_(1.0)
    x = torch.randn(1, 16, 16)  # 4x4 grid
    feats = torch.randn(1, SLOTS, 8)
    boxes = torch.zeros(1, SLOTS, 4)
    boxes[0, 0] = torch.tensor([0.0, 0.0, 0.5, 0.5])  # top-left 2x2 tokens
    used = torch.zeros(1, SLOTS, 1)
    used[0, 0] = 1.0
    other = feats.clone()
    other[0, 0] += 5.0  # another object in the same box
    with torch.no_grad():
        a = fuser(x, torch.cat([feats, boxes, used], -1))
        b = fuser(x, torch.cat([other, boxes, used], -1))
    changed = (a - b).abs().amax(-1)[0].reshape(4, 4)
    assert (changed[:2, :2] > 1e-3).all()
    assert changed[2:, :].max() == 0 and changed[:, 2:].max() == 0


def test_with_every_box_the_whole_image_the_masked_unet_is_plain_gligen(unet):
    """Masking changes nothing when no token is masked: the weights, the packing of boxes behind
    the grounding tokens and the attention path are GLIGEN's."""
    sample = torch.randn(2, 4, 32, 32, generator=torch.Generator().manual_seed(1))
    text = torch.randn(2, 77, unet.config.cross_attention_dim,
                       generator=torch.Generator().manual_seed(2))
    gligen = gligen_inputs(2, unet.config.cross_attention_dim, [[0, 0, 1, 1], [0, 0, 1, 1]])
    with torch.no_grad():
        plain = unet(sample, 10, text, cross_attention_kwargs={"gligen": dict(gligen)}).sample
    copy = UNet2DConditionModel.from_config(unet.config).eval()
    copy.load_state_dict(unet.state_dict())
    assert make_box_masked(copy) == sum(isinstance(m, GatedSelfAttentionDense)
                                        for m in unet.modules())
    assert make_box_masked(copy) == 0  # idempotent
    with torch.no_grad():
        got = copy(sample, 10, text, cross_attention_kwargs={"gligen": dict(gligen)}).sample
        small = gligen_inputs(2, unet.config.cross_attention_dim, [[0, 0, 0.3, 0.3]])
        moved = copy(sample, 10, text, cross_attention_kwargs={"gligen": small}).sample
    torch.testing.assert_close(got, plain, rtol=1e-5, atol=1e-5)
    assert (moved - plain).abs().max() > 1e-4
    assert set(copy.state_dict()) == set(unet.state_dict())  # saves as plain GLIGEN


def test_the_marker_is_checked(tmp_path):
    assert not is_box_masked(tmp_path)
    mark_box_masked(tmp_path)
    assert is_box_masked(tmp_path)
    (tmp_path / BOX_MASK_FILE).write_text(json.dumps({"version": 99}))
    with pytest.raises(ValueError, match="version"):
        is_box_masked(tmp_path)
    (tmp_path / BOX_MASK_FILE).write_text("{")
    with pytest.raises(ValueError, match="unreadable"):
        is_box_masked(tmp_path)


def test_the_torch_engine_runs_a_marked_drafter_masked(masked_dir, tiny_gligen_dir):
    from t2i_engines.pytorch.gligen_drafter import GligenDrafterEngine

    masked = GligenDrafterEngine.load(masked_dir, device="cpu")
    plain = GligenDrafterEngine.load(tiny_gligen_dir, device="cpu")
    assert any(isinstance(m, BoxMaskedFuser) for m in masked.pipe.unet.modules())
    assert not any(isinstance(m, BoxMaskedFuser) for m in plain.pipe.unet.modules())
    args = ("a red apple", ["a red apple"], [(0.1, 0.1, 0.4, 0.4)], [3], 3)
    a, b = masked.generate(*args)[0], plain.generate(*args)[0]
    assert a.size == b.size
    assert np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).max() > 0


def test_the_onnx_export_keeps_the_mask(masked_dir, tmp_path):
    pytest.importorskip("onnxruntime")
    from t2i_engines.onnxruntime.gligen_drafter import OrtGligenDrafterEngine
    from t2i_engines.onnxruntime.session import OrtModel
    from t2i_export.onnx.gligen_export import (GRAPH_IO, example_inputs, export_gligen,
                                              load_graph_module)
    from t2i_export.onnx.graph import max_abs_rel_error

    out = tmp_path / "onnx"
    manifest = export_gligen(masked_dir, out)
    assert manifest["pipeline"]["box_mask"] is True
    reference = load_graph_module(masked_dir, "unet")
    args = list(example_inputs("unet", manifest["pipeline"], batch=2, seed=5))
    args[3][:] = torch.tensor([0.1, 0.1, 0.4, 0.5])  # small boxes: many tokens masked
    args[5][:, :2] = 1.0
    with torch.no_grad():
        expected = reference(*args)
    got = OrtModel.load(out / "unet" / "model.onnx", device="cpu").run(
        {n: a.numpy() for n, a in zip(GRAPH_IO["unet"][0], args)})["out_sample"]
    assert max_abs_rel_error(got, expected.numpy())[1] < 1e-4
    engine = OrtGligenDrafterEngine.load(out, device="cpu")
    assert engine.generate("a red apple", ["a red apple"], [(0.1, 0.1, 0.4, 0.4)], [3], 2)
    small = OrtGligenDrafterEngine.load(out, device="cpu", height=32, width=32)
    with pytest.raises(ValueError, match="box-masked"):
        small.generate("a red apple", ["a red apple"], [(0.1, 0.1, 0.4, 0.4)], [3], 2)
