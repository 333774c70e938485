"""Training throughput of ResNet-50 on a CUDA device in PyTorch eager mode with AMP and
channels-last: the reference for benches/gpu_throughput.rs, run by scripts/gpu-check.sh.

The network is torchvision's ResNet-50 layout (bottleneck blocks [3, 4, 6, 3], stride on the 3x3
convolution), written here so the check needs no torchvision. Training matches the worker's loop
as the bench runs it: SGD with momentum 0.9 and weight decay 5e-4, images kept as bytes on the
host, gathered per batch, copied to the device without blocking and normalised there, autocast
in the given precision (fp16 with a GradScaler), cuDNN autotuning on, one warm-up epoch.
Arguments: images size batch epochs precision classes. Prints one JSON line.
"""
import json
import sys
import time

import torch
from torch import nn


class Bottleneck(nn.Module):
    def __init__(self, cin, width, stride):
        super().__init__()
        cout = 4 * width
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = torch.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        s = x if self.downsample is None else self.downsample(x)
        return torch.relu(y + s)


class ResNet50(nn.Module):
    def __init__(self, classes):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        layers, cin = [], 64
        for width, blocks, stride in [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]:
            stage = []
            for i in range(blocks):
                stage.append(Bottleneck(cin, width, stride if i == 0 else 1))
                cin = 4 * width
            layers.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.fc = nn.Linear(2048, classes)

    def forward(self, x):
        y = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
        y = self.layer4(self.layer3(self.layer2(self.layer1(y))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(y, 1), 1))


def main():
    images, size, batch, epochs = (int(a) for a in sys.argv[1:5])
    precision, classes = sys.argv[5], int(sys.argv[6])
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}[precision]
    device = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    data = torch.randint(0, 256, (images, 3, size, size), dtype=torch.uint8)
    labels = torch.randint(0, classes, (images,))
    net = ResNet50(classes).to(device).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    scaler = torch.amp.GradScaler("cuda", enabled=precision == "fp16")
    net.train()
    timings = []
    for epoch in range(epochs + 1):
        order = torch.randperm(images)
        torch.cuda.synchronize()
        start = time.perf_counter()
        total = torch.zeros((), device=device)
        for i in range(0, images, batch):
            index = order[i:i + batch]
            x = data[index].pin_memory().to(device, non_blocking=True)
            y = labels[index].to(device, non_blocking=True)
            x = ((x.float() / 255.0 - 0.5) / 0.25).contiguous(memory_format=torch.channels_last)
            opt.zero_grad(set_to_none=False)
            with torch.autocast("cuda", dtype=dtype, enabled=dtype is not None):
                loss = nn.functional.cross_entropy(net(x), y)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            total += loss.detach()
        total.item()  # one read per epoch, as the worker does
        if epoch > 0:  # the first epoch runs cuDNN's autotuning and warms the allocator
            timings.append(time.perf_counter() - start)
    best = min(timings)
    print(json.dumps({
        "images_per_second": images / best,
        "epoch_seconds": timings,
        "max_memory_allocated_mb": torch.cuda.max_memory_allocated() / 2**20,
        "max_memory_reserved_mb": torch.cuda.max_memory_reserved() / 2**20,
    }))


if __name__ == "__main__":
    main()
