"""Grad-CAM maps and pooled embeddings per second for resnet18 in PyTorch eager mode: the
reference for benches/explain_throughput.rs. The network is resnet18's layout written out here
(torchvision is not a dependency); Grad-CAM follows science.md: eval mode, the predicted class's
logit, gradients at layer4, ReLU of the pooled-gradient-weighted sum, bilinear upsampling and
per-image normalisation. Prints rates as JSON."""
import json
import sys
import time

import torch
from torch import nn
import torch.nn.functional as F

# The residual block is the one the training reference uses (same layout as torchvision's).
from torch_eager_throughput import Block as Basic


class ResNet18(nn.Module):
    def __init__(self, classes):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        widths, cin, stages = [64, 128, 256, 512], 64, []
        for i, w in enumerate(widths):
            stride = 1 if i == 0 else 2
            stages.append(nn.Sequential(Basic(cin, w, stride), Basic(w, w, 1)))
            cin = w
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.fc = nn.Linear(512, classes)

    def forward_with(self, x):
        y = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        a = self.layer4(self.layer3(self.layer2(self.layer1(y))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(a, 1), 1)), a


def gradcam(net, x):
    maps = []
    for xs in x.split(16):
        logits, a = net.forward_with(xs.detach().requires_grad_(True))
        target = logits.argmax(1)
        score = logits.gather(1, target[:, None]).sum()
        (g,) = torch.autograd.grad(score, a)
        cam = F.relu((g.mean((2, 3), keepdim=True) * a).sum(1, keepdim=True))
        cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
        flat = cam.flatten(1)
        low, high = flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values
        maps.append(((flat - low) / (high - low + 1e-7)).view_as(cam).detach())
    return torch.cat(maps)


def embed(net, images):
    with torch.no_grad():
        out = []
        for xs in images.split(16):
            x = (xs.float() / 255.0 - 0.5) / 0.25
            _, a = net.forward_with(x)
            out.append(a.mean((2, 3)))
        return torch.cat(out)


def best(items, rounds, f):
    f()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return items / min(times)


def main():
    images, size, rounds, threads = (int(a) for a in sys.argv[1:5])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = ResNet18(10).eval()
    data = torch.randint(0, 256, (images, 3, size, size), dtype=torch.uint8)
    x = (data.float() / 255.0 - 0.5) / 0.25
    print(json.dumps({
        "gradcam_per_second": best(images, rounds, lambda: gradcam(net, x)),
        "embeddings_per_second": best(images, rounds, lambda: embed(net, data)),
    }))


if __name__ == "__main__":
    main()
