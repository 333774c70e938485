"""A CUB-200-2011 folder at full size with random content, for measuring the data path.

Writes OUT/CUB_200_2011 with the layout and metadata files of the published archive: 11,788
JPEGs in 200 class folders, images.txt, image_class_labels.txt, train_test_split.txt,
classes.txt, bounding_boxes.txt, attributes/attributes.txt,
attributes/class_attribute_labels_continuous.txt and attributes/image_attribute_labels.txt.

Sizes follow the published set: the longer side is 500 px for nearly every image; landscape
photographs (about four in five) are 500 wide and mostly 281-375 high, portraits 500 high and
mostly 333-375 wide, and a few percent are smaller. The published totals are spread evenly over
the classes: 58 or 59 images each, 29 or 30 of them in the training split, 5,994 train and 5,794
test in all, as published. Content is smooth random colour fields with
grain, so JPEG sizes and decode times are close to photographs' (pure noise would be several
times larger and slower to decode than any real image).

`--fraction 0.25` keeps every fourth image (same classes, same files), for measuring how memory
depends on the dataset's size. Everything is deterministic in `--seed`.

Usage: python benches/make_cub.py OUT [--fraction F] [--seed S] [--jobs J]
"""

import argparse
import os
import random
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from PIL import Image

IMAGES = 11788
TRAIN = 5994
CLASSES = 200
ATTRIBUTES = 312
# Attributes that are common across classes: about this many survive `denoised` (108 published).
COMMON_ATTRIBUTES = 108


def size_of(rng):
    """One image's (width, height), drawn from the published set's shape."""
    u = rng.random()
    if u < 0.80:
        return 500, rng.choice([281, 300, 313, 332, 333, 334, 350, 366, 375, 375, 375, 375, 400, 415])
    if u < 0.95:
        return rng.choice([281, 332, 333, 350, 375, 375, 400]), 500
    longer = rng.randint(200, 499)
    shorter = rng.randint(int(longer * 0.55), longer)
    return (longer, shorter) if rng.random() < 0.7 else (shorter, longer)


def write_image(job):
    path, width, height, seed = job
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    field = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC), dtype=np.int16)
    grain = rng.normal(0.0, 6.0, size=(height, width, 3))
    pixels = np.clip(field + grain, 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path, quality=90)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--fraction", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    root = os.path.join(args.out, "CUB_200_2011")
    os.makedirs(os.path.join(root, "attributes"), exist_ok=True)

    names = [f"{c + 1:03d}.Bird_{c + 1:03d}" for c in range(CLASSES)]
    names[0], names[117] = "001.Black_footed_Albatross", "118.House_Sparrow"
    # Images per class: the published 11,788 spread over 200 classes (58 or 59 each, as most are).
    per_class = [IMAGES // CLASSES + (1 if c < IMAGES % CLASSES else 0) for c in range(CLASSES)]
    # Training images per class, rounded so that the totals are exactly the published 5,994.
    train_per_class = [(c + 1) * TRAIN // CLASSES - c * TRAIN // CLASSES for c in range(CLASSES)]
    keep_every = max(1, round(1 / args.fraction))

    records = []
    image_id = 0
    for c, count in enumerate(per_class):
        folder = os.path.join(root, "images", names[c])
        os.makedirs(folder, exist_ok=True)
        for i in range(count):
            image_id += 1
            width, height = size_of(rng)
            train = 1 if i < train_per_class[c] else 0
            bx = rng.uniform(0, width * 0.4)
            by = rng.uniform(0, height * 0.4)
            bw = rng.uniform(width * 0.2, width - bx)
            bh = rng.uniform(height * 0.2, height - by)
            if image_id % keep_every == 0 or keep_every == 1:
                rel = f"{names[c]}/Bird_{c + 1:03d}_{image_id:05d}.jpg"
                records.append((image_id, rel, c + 1, train, (bx, by, bw, bh), width, height))

    with open(os.path.join(root, "classes.txt"), "w") as f:
        f.writelines(f"{c + 1} {name}\n" for c, name in enumerate(names))
    with open(os.path.join(root, "images.txt"), "w") as f:
        f.writelines(f"{r[0]} {r[1]}\n" for r in records)
    with open(os.path.join(root, "image_class_labels.txt"), "w") as f:
        f.writelines(f"{r[0]} {r[2]}\n" for r in records)
    with open(os.path.join(root, "train_test_split.txt"), "w") as f:
        f.writelines(f"{r[0]} {r[3]}\n" for r in records)
    with open(os.path.join(root, "bounding_boxes.txt"), "w") as f:
        f.writelines(f"{r[0]} {r[4][0]:.1f} {r[4][1]:.1f} {r[4][2]:.1f} {r[4][3]:.1f}\n" for r in records)
    with open(os.path.join(root, "attributes", "attributes.txt"), "w") as f:
        f.writelines(f"{a + 1} has_attribute_{a + 1:03d}::value\n" for a in range(ATTRIBUTES))
    # Common attributes are on for about a third of the classes, the others for a handful, so
    # `denoised` (on for at least 10 classes) keeps about COMMON_ATTRIBUTES of them.
    prevalence = [0.33 if a < COMMON_ATTRIBUTES else 0.01 for a in range(ATTRIBUTES)]
    on = [[rng.random() < prevalence[a] for a in range(ATTRIBUTES)] for _ in range(CLASSES)]
    with open(os.path.join(root, "attributes", "class_attribute_labels_continuous.txt"), "w") as f:
        for row in on:
            f.write(" ".join(f"{rng.uniform(51, 100) if v else rng.uniform(0, 49):.6f}" for v in row) + "\n")
    with open(os.path.join(root, "attributes", "image_attribute_labels.txt"), "w") as f:
        for r in records:
            row = on[r[2] - 1]
            f.writelines(f"{r[0]} {a + 1} {int(row[a] != (rng.random() < 0.1))} 3 {rng.uniform(1, 20):.3f}\n" for a in range(ATTRIBUTES))

    jobs = [(os.path.join(root, "images", r[1]), r[5], r[6], args.seed * 1_000_003 + r[0]) for r in records]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        list(pool.map(write_image, jobs, chunksize=64))
    print(f"{len(records)} images in {root}")


if __name__ == "__main__":
    main()
