"""Training-step time of torchvision's ResNet-18 and ResNet-50 on the CPU in the default (NCHW)
and channels-last (NHWC) memory formats, alternating, two measurements each: the evidence for
running NCHW on the CPU whatever `channels_last` says (README, "Precision and memory format").

    source scripts/env.sh && python benches/reference/channels_last_cpu.py
"""
import time

import torch
import torchvision

torch.manual_seed(0)
for arch, image, batch in [("resnet18", 112, 32), ("resnet50", 112, 16)]:
    for fmt in [torch.contiguous_format, torch.channels_last] * 2:
        net = getattr(torchvision.models, arch)(num_classes=10).to(memory_format=fmt)
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
        x = torch.randn(batch, 3, image, image).contiguous(memory_format=fmt)
        y = torch.randint(0, 10, (batch,))
        for step in range(6):
            if step == 2:  # two warm-up steps, then four timed ones
                start = time.time()
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
        name = "channels_last" if fmt == torch.channels_last else "contiguous"
        print(f"{arch} {name:13s} {(time.time() - start) / 4:.3f} s/step", flush=True)
