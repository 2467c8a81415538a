import numpy as np
import pytest
import torch

from core.heatmaps import decode_heatmaps, heatmap_to_image, image_to_heatmap, render_heatmaps


def test_render_decode_round_trip_is_subpixel():
    torch.manual_seed(0)
    joints = torch.rand(4, 17, 2) * torch.tensor([60.0, 44.0]) + 2  # (views, joints, xy) inside a 64x48 map
    maps = render_heatmaps(joints, (64, 48), sigma=2.0)
    assert maps.shape == (4, 17, 48, 64)
    decoded, confidence = decode_heatmaps(maps)
    assert (decoded - joints).abs().max() < 0.02  # far below a pixel
    assert torch.allclose(confidence, torch.ones_like(confidence), atol=0.15)


def test_visibility_scales_maps_and_confidence():
    joints = torch.tensor([[10.0, 10.0], [20.0, 30.0], [40.0, 5.0]])
    maps = render_heatmaps(joints, (48, 40), visibility=torch.tensor([1.0, 0.0, 0.5]))
    assert maps[1].max() == 0
    _, confidence = decode_heatmaps(maps)
    assert confidence[0] > 0.9 and confidence[1] == 0 and 0.4 < confidence[2] <= 0.5


def test_joint_at_the_border_decodes_without_refinement():
    maps = render_heatmaps(torch.tensor([[0.0, 23.0]]), (32, 24))
    decoded, _ = decode_heatmaps(maps)
    assert torch.allclose(decoded, torch.tensor([[0.0, 23.0]]))


def test_window_cuts_each_gaussian_to_a_square_of_sigmas():
    joints = torch.tensor([[20.3, 11.6], [2.0, 30.0]])
    full = render_heatmaps(joints, (48, 40), sigma=1.5)
    cut = render_heatmaps(joints, (48, 40), sigma=1.5, window=3.0)
    xs, ys = torch.arange(48.0), torch.arange(40.0)
    for map_full, map_cut, (x, y) in zip(full, cut, joints):
        inside = ((ys[:, None] - y).abs() <= 4.5) & ((xs[None] - x).abs() <= 4.5)
        assert torch.equal(map_cut[inside], map_full[inside]) and (map_cut[~inside] == 0).all()
        assert (map_full[~inside] > 0).any()  # uncut, the tails reach further


def test_rendering_is_differentiable():
    joints = torch.tensor([[[12.3, 7.7]]], requires_grad=True)
    target = render_heatmaps(torch.tensor([[[14.0, 9.0]]]), (32, 24))
    loss = ((render_heatmaps(joints, (32, 24)) - target) ** 2).sum()
    loss.backward()
    assert joints.grad.norm() > 0


@pytest.mark.parametrize("image_size,heatmap_size", [((640, 480), (64, 48)), ((1000, 1000), (96, 96))])
def test_image_and_heatmap_coordinates_are_inverse(image_size, heatmap_size):
    points = torch.tensor([[0.0, 0.0], [123.4, 56.7], [image_size[0] - 1.0, image_size[1] - 1.0]])
    there = image_to_heatmap(points, image_size, heatmap_size)
    np.testing.assert_allclose(heatmap_to_image(there, image_size, heatmap_size).numpy(), points.numpy(), atol=1e-4)
    # pixel-centre convention: the image's outer edge maps to the heatmap's outer edge
    edge = image_to_heatmap(torch.tensor([[-0.5, -0.5]]), image_size, heatmap_size)
    np.testing.assert_allclose(edge.numpy(), [[-0.5, -0.5]], atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    joints = torch.rand(2, 17, 2) * 40
    cpu = render_heatmaps(joints, (48, 48))
    gpu = render_heatmaps(joints.cuda(), (48, 48))
    torch.testing.assert_close(gpu.cpu(), cpu)
