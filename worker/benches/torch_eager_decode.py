"""The reference side of benches/decode_throughput.rs: PIL decoding plus torchvision's transforms
(Resize of the shorter side, CenterCrop, PILToTensor: uint8 [3, side, side], the bytes the dataset
node stores) through a torch DataLoader with `--workers` processes, as a PyTorch user would load
CUB-200. Prints the best of `--rounds` passes over the files as JSON on its last line.

Usage: python torch_eager_decode.py LIST --side S --workers W --rounds R
LIST is a text file with one image path per line.
"""

import argparse
import json
import time

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms


class Files(Dataset):
    def __init__(self, paths, side):
        self.paths = paths
        self.transform = transforms.Compose(
            [transforms.Resize(side), transforms.CenterCrop(side), transforms.PILToTensor()]
        )

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        with Image.open(self.paths[i]) as image:
            return self.transform(image.convert("RGB"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("list")
    parser.add_argument("--side", type=int, required=True)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with open(args.list) as f:
        paths = [line.strip() for line in f if line.strip()]
    torch.set_num_threads(1)
    loader = DataLoader(
        Files(paths, args.side), batch_size=32, num_workers=args.workers, persistent_workers=True
    )
    best = float("inf")
    for _ in range(args.rounds):
        start = time.perf_counter()
        count = sum(batch.shape[0] for batch in loader)
        best = min(best, time.perf_counter() - start)
    assert count == len(paths)
    print(json.dumps({"images": len(paths), "seconds": best, "images_per_second": len(paths) / best}))


if __name__ == "__main__":
    main()
