"""Repeats a short channels-last training of a `resnet_tiny`-shaped network (3x3 stem, one basic
block per stage, no max pool) in plain PyTorch, to look for the oneDNN stall the generated-program
soak met at width 4 (README, "Precision and memory format"). Prints the seconds one run took; run
it many times under `timeout` to count stalls:

    source scripts/env.sh
    for i in $(seq 60); do timeout 40 python benches/reference/channels_last_stall.py 4 24 16 20 cl $i || echo stalled; done

Arguments: width, image side, batch, steps, `cl` (channels-last) or anything else (NCHW), seed.
"""
import sys, time, torch, torch.nn as nn
width, image, batch, steps, cl = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "cl"
torch.manual_seed(int(sys.argv[6]) if len(sys.argv) > 6 else 0)
class Block(nn.Module):
    def __init__(s, cin, cout, stride):
        super().__init__()
        s.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False); s.b1 = nn.BatchNorm2d(cout)
        s.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False); s.b2 = nn.BatchNorm2d(cout)
        s.d = None if (stride == 1 and cin == cout) else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
    def forward(s, x):
        y = s.b2(s.c2(torch.relu(s.b1(s.c1(x)))))
        return torch.relu(y + (x if s.d is None else s.d(x)))
net = nn.Sequential(nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
                    Block(width, width, 1), Block(width, 2 * width, 2), Block(2 * width, 4 * width, 2),
                    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * width, 4))
fmt = torch.channels_last if cl else torch.contiguous_format
net = net.to(memory_format=fmt)
opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
x = torch.randn(batch, 3, image, image).contiguous(memory_format=fmt); y = torch.randint(0, 4, (batch,))
t = time.time()
for _ in range(steps):
    opt.zero_grad(); loss = nn.functional.cross_entropy(net(x), y); loss.backward(); opt.step()
net.eval()
with torch.no_grad(): net(x)
print(f"{time.time() - t:.2f}")
