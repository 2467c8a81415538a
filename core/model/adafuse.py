"""AdaFuse, the official HeatFormer's 2D estimator (the `fuser` inside its checkpoints), as its evaluation runs it.

A SimpleBaseline pose ResNet predicts 33 joint heatmaps per view from a 384x384 crop; 17 of them are the H36M
joints. In calibrated mode each view's heatmaps, divided by their peaks, are fused with the other views': for every
heatmap pixel, the maximum of each other view's heatmap along that pixel's epipolar line, weighted by the other
view's peak (AdaFuse's "SCORE" fusion, which the official evaluation uses; its learned view weights are not used
there). A windowed soft-argmax gives each joint's position and the peak its confidence. Sizes come from the
checkpoint; only the official depths of the ResNet (50, 101, 152) are named.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

RESNET_BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
# H36M-17 in our order, as channels of the network's 33 outputs (the official `joint_mapping`)
H36M_CHANNELS = (6, 2, 1, 0, 3, 4, 5, 7, 8, 16, 9, 13, 14, 15, 12, 11, 10)
CROP = 384  # input crop side, pixels
HEATMAP_SIDE = CROP // 4
SIGMA = 3.0  # of the heatmaps it was trained on, in heatmap pixels: the soft-argmax window is 5 sigma wide
TEMPERATURE = 0.05
# Two depths along each pixel's ray whose projections give its epipolar line in another view (the official code
# uses 1000 and 5000 in its millimetre cameras); metres here.
RAY_DEPTHS = (1.0, 5.0)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = None
        if stride != 1 or inplanes != planes * 4:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes * 4, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(planes * 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class PoseResNet(nn.Module):
    """ResNet, three stride-2 deconvolutions (4x4, 256 channels), a 1x1 head: heatmaps at a quarter of the input."""

    def __init__(self, blocks: tuple[int, ...], outputs: int = 33, deconv: int = 256):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        inplanes = 64
        for index, (planes, count) in enumerate(zip((64, 128, 256, 512), blocks)):
            stride = 1 if index == 0 else 2
            layer = []
            for _ in range(count):
                layer.append(Bottleneck(inplanes, planes, stride))
                inplanes, stride = planes * 4, 1
            setattr(self, f"layer{index + 1}", nn.Sequential(*layer))
        deconv_layers = []
        for _ in range(3):
            deconv_layers += [nn.ConvTranspose2d(inplanes, deconv, 4, stride=2, padding=1, bias=False),
                              nn.BatchNorm2d(deconv), nn.ReLU(inplace=True)]
            inplanes = deconv
        self.deconv_layers = nn.Sequential(*deconv_layers)
        self.final_layer = nn.Conv2d(deconv, outputs, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, stride=2, padding=1)
        for index in range(1, 5):
            x = getattr(self, f"layer{index}")(x)
        return self.final_layer(self.deconv_layers(x))


def soft_argmax(heatmaps: torch.Tensor, window: float = 5 * SIGMA, temperature: float = TEMPERATURE
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, J, h, w) -> positions (N, J, 2) in heatmap pixels and peaks (N, J): the softmax-weighted mean position
    within ``window`` / 2 of the arg-max (which keeps it on one mode); (0, 0) where the peak is 0.01 or less, as
    the official code leaves it."""
    n, j, h, w = heatmaps.shape
    flat = heatmaps.reshape(n, j, h * w)
    peak, index = flat.max(-1)
    ys = torch.arange(h, dtype=heatmaps.dtype, device=heatmaps.device)[:, None]
    xs = torch.arange(w, dtype=heatmaps.dtype, device=heatmaps.device)[None, :]
    px, py = (index % w).to(heatmaps.dtype), torch.div(index, w, rounding_mode="floor").to(heatmaps.dtype)
    near = ((xs - px[..., None, None]) ** 2 + (ys - py[..., None, None]) ** 2).sqrt() <= window / 2
    weights = torch.softmax(flat / temperature, dim=-1).reshape(n, j, h, w) * near
    weights = weights / weights.sum((-2, -1), keepdim=True)
    positions = torch.stack([(weights.sum(-2) * xs[0]).sum(-1), (weights.sum(-1) * ys[:, 0]).sum(-1)], dim=-1)
    return torch.where(peak[..., None] > 0.01, positions, torch.zeros_like(positions)), peak


def epipolar_max(heatmaps: torch.Tensor, to_heatmap: torch.Tensor, K: torch.Tensor, R: torch.Tensor,
                 t: torch.Tensor) -> torch.Tensor:
    """For each view and each other view, the other view's heatmap maximised along every pixel's epipolar line.

    heatmaps (B, V, J, h, w); to_heatmap (B, V, 3, 3) image -> heatmap pixels; K, R (B, V, 3, 3), t (B, V, 3)
    world -> camera. Returns (B, V, V - 1, J, h, w), the other views in increasing order. As in the official code,
    the line is sampled at every column and every row (nearest pixel), and a sample off the map counts as 0.
    """
    b, v, j, h, w = heatmaps.shape
    dtype, device = heatmaps.dtype, heatmaps.device
    ys, xs = torch.meshgrid(torch.arange(h, dtype=dtype, device=device), torch.arange(w, dtype=dtype, device=device),
                            indexing="ij")
    pixels = torch.stack([xs.reshape(-1), ys.reshape(-1), torch.ones(h * w, dtype=dtype, device=device)])  # (3, hw)
    rays = torch.linalg.inv(K) @ torch.linalg.inv(to_heatmap) @ pixels  # (B, V, 3, hw), camera coordinates
    centres = -(R.transpose(-1, -2) @ t[..., None])  # (B, V, 3, 1)
    columns = torch.arange(w, dtype=dtype, device=device)
    rows = torch.arange(h, dtype=dtype, device=device)
    out = heatmaps.new_zeros(b, v, v - 1, j, h, w)
    for view in range(v):
        points = [R[:, view].transpose(-1, -2) @ (depth * rays[:, view]) + centres[:, view] for depth in RAY_DEPTHS]
        for slot, other in enumerate(o for o in range(v) if o != view):
            ends = []
            for world in points:  # (B, 3, hw) -> the other view's heatmap pixels
                cam = R[:, other] @ (world - centres[:, other])
                ends.append(to_heatmap[:, other] @ K[:, other] @ (cam / cam[:, 2:3]))
            (x0, y0), (x1, y1) = ends[0][:, :2].unbind(1), ends[1][:, :2].unbind(1)  # (B, hw) each
            slope = (y1 - y0) / (x1 - x0)
            sample_x = torch.cat([columns.expand(b, h * w, w), ((rows[None, None] - y0[..., None]) / slope[..., None]
                                                                + x0[..., None])], dim=-1)  # (B, hw, w + h)
            sample_y = torch.cat([slope[..., None] * (columns[None, None] - x0[..., None]) + y0[..., None],
                                  rows.expand(b, h * w, h)], dim=-1)
            col, row = torch.round(sample_x), torch.round(sample_y)
            inside = (col >= 0) & (col <= w - 1) & (row >= 0) & (row <= h - 1)  # NaN and inf fall outside
            index = torch.where(inside, row * w + col, torch.zeros_like(col)).long()  # (B, hw, w + h)
            maps = heatmaps[:, other].reshape(b, j, h * w)
            sampled = torch.stack([maps[i][:, index[i]] for i in range(b)])  # (B, J, hw, w + h)
            sampled = torch.where(inside[:, None], sampled, torch.zeros_like(sampled))
            out[:, view, slot] = sampled.amax(-1).reshape(b, j, h, w)
    return out


class AdaFuse(nn.Module):
    """The 2D estimator of official checkpoints: crops in, H36M-17 image positions and confidences out."""

    def __init__(self, blocks: tuple[int, ...] = RESNET_BLOCKS[152], outputs: int = 33):
        super().__init__()
        self.resnet = PoseResNet(blocks, outputs)
        self.register_buffer("channels", torch.tensor(H36M_CHANNELS), persistent=False)

    def forward(self, crops: torch.Tensor, to_heatmap: torch.Tensor, K: torch.Tensor | None = None,
                R: torch.Tensor | None = None, t: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """crops (B, V, 3, 384, 384) normalised; to_heatmap (B, V, 3, 3) image -> heatmap pixels; with cameras
        (K, R, t world -> camera, metres) and two or more views the heatmaps are fused across views.
        Returns positions (B, V, 17, 2) in image pixels and confidences (B, V, 17): each view's own heatmap peak,
        clipped to [0, 1], and 0 where the official code leaves the joint at the heatmap's corner."""
        b, v = crops.shape[:2]
        heatmaps = self.resnet(crops.flatten(0, 1))[:, self.channels]  # (B*V, 17, h, w)
        positions, peaks = soft_argmax(heatmaps)
        confidence = peaks.clamp(0, 1)
        if K is not None and v > 1:
            h, w = heatmaps.shape[-2:]
            scale = torch.where(peaks > 0.01, peaks, torch.full_like(peaks, 1e6))
            normed = (heatmaps / scale[..., None, None]).unflatten(0, (b, v))
            others = epipolar_max(normed, to_heatmap, K, R, t)  # (B, V, V-1, 17, h, w)
            weight = peaks.unflatten(0, (b, v))  # each view's peak weighs its maps
            fused = weight[..., None, None] * normed
            for view in range(v):
                for slot, other in enumerate(o for o in range(v) if o != view):
                    fused[:, view] = fused[:, view] + weight[:, other, :, None, None] * others[:, view, slot]
            positions, peaks = soft_argmax(fused.flatten(0, 1))
        homogeneous = torch.cat([positions, torch.ones_like(positions[..., :1])], -1).unflatten(0, (b, v))
        image = torch.einsum("bvij,bvkj->bvki", torch.linalg.inv(to_heatmap), homogeneous)[..., :2]
        return image, torch.where(peaks > 0.01, confidence, torch.zeros_like(confidence)).unflatten(0, (b, v))
