"""The official checkpoint's names and shapes (from kyotovision-public/HeatFormer's modules), built here on the
meta device (no memory), mapped onto our official preset."""
import pytest
import torch

from core.model.checkpoint import ORIENT_6D_FROM_OFFICIAL, blocks_to_interleaved, map_official_state_dict
from core.model.config import OFFICIAL
from core.model.layers import sine_features
from core.model.network import HeatFormer
from core.rotations import rot6d_to_matrix


def linear(prefix, out_dim, in_dim, bias=True):
    d = {f"{prefix}.weight": (out_dim, in_dim)}
    if bias:
        d[f"{prefix}.bias"] = (out_dim,)
    return d


def norm(prefix, dim):
    return {f"{prefix}.weight": (dim,), f"{prefix}.bias": (dim,)}


def attention(prefix, dim, inner, context=None):
    """HeatFormer's Add_Norm(Attention): norm, bias-free x_to_q/k/v, out_layer."""
    s = norm(f"{prefix}.norm", dim)
    for x in "qkv":
        s.update(linear(f"{prefix}.f.x_to_{x}", inner, context or dim if x != "q" else dim, bias=False))
    s.update(linear(f"{prefix}.f.out_layer", dim, inner))
    return s


def feed_forward(prefix, dim, hidden):
    return {**norm(f"{prefix}.norm", dim), **linear(f"{prefix}.f.layer.0", hidden, dim),
            **linear(f"{prefix}.f.layer.3", dim, hidden)}


def official_shapes() -> dict[str, tuple]:
    heat, token, inner, mlp, vit, orient = 1024, 2304, 512, 2048, 1280, 1024
    s = {}
    enc = "fuse_encoder.Encoder"
    s.update(linear(f"{enc}.to_token_embedding", heat, 256))
    s[f"{enc}.pos_embedding"] = (1, 18, heat)
    for i in range(2):
        layer = f"{enc}.Transformer.layers.{i}"
        s.update({**attention(f"{layer}.0", heat, inner), **feed_forward(f"{layer}.1", heat, mlp)})
    s.update(linear("Decoder.to_token_embedding", token, token))
    for i in range(2):
        layer = f"Decoder.transformer.layers.{i}"
        s.update({**attention(f"{layer}.0", token, inner), **attention(f"{layer}.1", token, inner, context=token),
                  **feed_forward(f"{layer}.2", token, mlp)})
    s["pos_embed.adapt_pos3d.0.weight"] = (4 * token, 3 * token // 2, 1, 1)
    s["pos_embed.adapt_pos3d.0.bias"] = (4 * token,)
    s["pos_embed.adapt_pos3d.2.weight"] = (token, 4 * token, 1, 1)
    s["pos_embed.adapt_pos3d.2.bias"] = (token,)
    s.update(linear("decpose_smpl", 138, token))
    s.update(linear("decshape_smpl", 10, token))
    s["img_backbone.patch_embed.proj.weight"] = (vit, 3, 16, 16)
    s["img_backbone.patch_embed.proj.bias"] = (vit,)
    s["img_backbone.pos_embed"] = (1, 193, vit)
    for i in range(32):
        b = f"img_backbone.blocks.{i}"
        s.update(norm(f"{b}.norm1", vit))
        s.update(linear(f"{b}.attn.qkv", 3 * vit, vit))
        s.update(linear(f"{b}.attn.proj", vit, vit))
        s.update(norm(f"{b}.norm2", vit))
        s.update(linear(f"{b}.mlp.fc1", 4 * vit, vit))
        s.update(linear(f"{b}.mlp.fc2", vit, 4 * vit))
    s.update(norm("img_backbone.last_norm", vit))
    gc = "GCEstimator.decoder"
    s.update(linear(f"{gc}.to_token_embedding", orient, 1))
    s[f"{gc}.pos_embedding"] = (1, 1, orient)
    for i in range(6):
        layer = f"{gc}.transformer.layers.{i}"
        s.update(norm(f"{layer}.0.norm", orient))
        s.update(linear(f"{layer}.0.fn.to_qkv", 3 * inner, orient, bias=False))
        s.update(linear(f"{layer}.0.fn.to_out.0", orient, inner))
        s.update(norm(f"{layer}.1.norm", orient))
        s.update(linear(f"{layer}.1.fn.to_kv", 2 * inner, vit, bias=False))
        s.update(linear(f"{layer}.1.fn.to_q", inner, orient, bias=False))
        s.update(linear(f"{layer}.1.fn.to_out.0", orient, inner))
        s.update(norm(f"{layer}.2.norm", orient))
        s.update(linear(f"{layer}.2.fn.net.0", orient, orient))
        s.update(linear(f"{layer}.2.fn.net.3", orient, orient))
    s.update(linear("GCEstimator.decpose", 144, orient))
    s.update(linear("GCEstimator.decshape", 10, orient))
    s.update(linear("GCEstimator.deccam", 3, orient))
    s["fuser.resnet.conv1.weight"] = (64, 3, 7, 7)
    s["fuser.resnet.final_layer.weight"] = (33, 256, 1, 1)
    s["fuser.view_weight_net.joint_feature_net.0.weight"] = (64, 17)
    s["smpl.v_template"] = (6890, 3)
    s.update({"smpl.init_pose": (24, 6), "smpl.init_shape": (1, 10), "smpl.init_cam": (1, 3)})
    return s


@pytest.fixture(scope="module")
def official_model(body):
    with torch.device("meta"):
        return HeatFormer(OFFICIAL, body)


def official_state(shapes=None):
    return {k: torch.empty(v, device="meta") for k, v in (shapes or official_shapes()).items()}


def test_every_official_key_is_accounted_for_and_fits(official_model):
    state = official_state()
    mapped, report = map_official_state_dict(state, official_model)
    assert not report.shape_mismatch
    accounted = set(report.mapped) | set(report.unused)
    assert accounted == set(state)
    assert not report.not_filled  # the starting values too: SMPL's mean pose and shape, the camera
    # without the AdaFuse module (core.model.adafuse; built by load_model from a whole fuser.resnet) its weights
    # have nowhere to go, and say so; the view-weight network is never used
    assert "adafuse.resnet.conv1.weight" in report.unused["fuser.resnet.conv1.weight"]
    assert report.unused["fuser.view_weight_net.joint_feature_net.0.weight"].startswith("AdaFuse's view-weight")
    assert report.unused["smpl.v_template"].startswith("SMPL model data")
    result = official_model.load_state_dict(mapped, strict=False, assign=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert "unused: fuser.*" in report.summary()


def test_official_orientation_6d_is_read_as_the_official_code_reads_it():
    """Its rot6d_to_rotmat_g takes two stacked 3-vectors as the matrix's first two columns; ours interleaves
    them: reordering the head's outputs gives the same rotation."""
    official = torch.randn(50, 6, dtype=torch.float64)
    a1, a2 = official[:, :3], official[:, 3:]  # what the official layout means
    b1 = torch.nn.functional.normalize(a1, dim=-1)
    b2 = torch.nn.functional.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    expected = torch.stack([b1, b2, torch.cross(b1, b2, dim=-1)], dim=-1)
    torch.testing.assert_close(rot6d_to_matrix(official[:, ORIENT_6D_FROM_OFFICIAL]), expected)


def test_positional_features_are_reordered_from_the_official_blocks():
    """Official features per axis: sin of the even frequencies, then cos of the odd ones; ours interleave them.
    The reordered first-layer columns see the same feature in the same place."""
    positions = torch.rand(7) * 6
    ours = sine_features(positions, 10)  # (7, 10) interleaved
    theirs = torch.cat([ours[:, 0::2], ours[:, 1::2]], dim=-1)  # the official block order
    order = blocks_to_interleaved(1, 10)
    assert torch.equal(theirs[:, order], ours)


def test_fused_projections_are_split_in_order(official_model):
    shapes = {"GCEstimator.decoder.transformer.layers.0.0.fn.to_qkv.weight": (1536, 1024)}
    qkv = torch.arange(1536 * 1024, dtype=torch.float32).reshape(1536, 1024)
    mapped, report = map_official_state_dict({k: qkv for k in shapes}, official_model)
    prefix = "orientation.blocks.0.attn.to_"
    for i, x in enumerate("qkv"):
        assert torch.equal(mapped[f"{prefix}{x}.weight"], qkv[512 * i: 512 * (i + 1)])


def test_wrong_shapes_are_reported_by_name(official_model):
    shapes = official_shapes()
    shapes["Decoder.transformer.layers.1.2.f.layer.0.weight"] = (1024, 2304)
    _, report = map_official_state_dict(official_state(shapes), official_model)
    assert list(report.shape_mismatch) == ["Decoder.transformer.layers.1.2.f.layer.0.weight"]
    assert "decoder.1.mlp.0.weight" in report.shape_mismatch["Decoder.transformer.layers.1.2.f.layer.0.weight"]
