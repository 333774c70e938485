"""Training throughput of resnet_tiny or ResNet-18 in PyTorch eager mode, the reference for
benches/train_throughput.rs.

resnet_tiny mirrors worker/src/models/resnet.rs (Variant::Tiny): a 3x3 stem without max pooling,
one basic block per stage at widths w, 2w, 4w (strides 1, 2, 2), global average pooling and a
linear head. ResNet-18 is torchvision's layout (7x7 stem, max pooling, two basic blocks per stage
at 64, 128, 256, 512), written here so the bench needs no torchvision. Training matches our loop: SGD with momentum 0.9 and weight decay 5e-4, images stored
as bytes and normalised per batch, a fresh shuffle each epoch. Prints images per second as JSON.
"""
import json
import sys
import time

import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        s = x if self.downsample is None else self.downsample(x)
        return torch.relu(y + s)


class TinyResNet(nn.Module):
    def __init__(self, width, classes):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.layer1 = Block(width, width, 1)
        self.layer2 = Block(width, 2 * width, 2)
        self.layer3 = Block(2 * width, 4 * width, 2)
        self.fc = nn.Linear(4 * width, classes)

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.layer3(self.layer2(self.layer1(y)))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(y, 1), 1))


class ResNet18(nn.Module):
    def __init__(self, classes):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(Block(64, 64, 1), Block(64, 64, 1))
        self.layer2 = nn.Sequential(Block(64, 128, 2), Block(128, 128, 1))
        self.layer3 = nn.Sequential(Block(128, 256, 2), Block(256, 256, 1))
        self.layer4 = nn.Sequential(Block(256, 512, 2), Block(512, 512, 1))
        self.fc = nn.Linear(512, classes)

    def forward(self, x):
        y = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
        y = self.layer4(self.layer3(self.layer2(self.layer1(y))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(y, 1), 1))


def main():
    images, size, width, batch, epochs, threads = (int(a) for a in sys.argv[1:7])
    architecture = sys.argv[7] if len(sys.argv) > 7 else "resnet_tiny"
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    data = torch.randint(0, 256, (images, 3, size, size), dtype=torch.uint8)
    labels = torch.randint(0, 8, (images,))
    net = ResNet18(8) if architecture == "resnet18" else TinyResNet(width, 8)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    net.train()
    timings = []
    for epoch in range(epochs + 1):
        order = torch.randperm(images)
        start = time.perf_counter()
        for i in range(0, images, batch):
            index = order[i:i + batch]
            x = (data[index].float() / 255.0 - 0.5) / 0.25
            y = labels[index]
            opt.zero_grad(set_to_none=False)
            loss = nn.functional.cross_entropy(net(x), y)
            loss.backward()
            opt.step()
        if epoch > 0:  # the first epoch warms the allocator and kernels up
            timings.append(time.perf_counter() - start)
    best = min(timings)
    print(json.dumps({"images_per_second": images / best, "epoch_seconds": timings}))


if __name__ == "__main__":
    main()
