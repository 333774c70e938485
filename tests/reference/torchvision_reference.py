"""Reference numbers for the worker's torchvision-layout models (worker/src/models/reference_tests.rs).

Run with a python that has torch and torchvision (the project venv plus torchvision 0.26 on
PYTHONPATH was used):

    python tests/reference/torchvision_reference.py tests/reference

It writes `<arch>.state.txt` (every state-dict entry torchvision's model holds, `name shape`)
and prints logits of each model after filling every tensor with `fill` below, so the Rust tests
can fill their own networks the same way and compare outputs without shipping weight files.
"""

import math
import sys

import torch
import torchvision

CLASSES = 10


def phase(name: str) -> float:
    # A name's bytes select the phase, so a misnamed tensor gets different values.
    return (sum(name.encode()) % 97) * 0.1


def fill(name: str, shape) -> torch.Tensor:
    n = math.prod(shape)
    j = torch.arange(n, dtype=torch.float64)
    wave = torch.sin(0.37 * j + phase(name))
    if name.endswith("running_var"):
        values = 0.5 + 0.25 * (1.0 + wave)
    elif name.endswith("running_mean"):
        values = 0.1 * wave
    elif len(shape) == 1 and name.endswith("weight"):
        values = 1.0 + 0.1 * wave
    elif len(shape) == 1:
        values = 0.1 * wave
    else:
        fan_in = n // shape[0]
        values = wave / math.sqrt(fan_in)
    return values.reshape(shape).to(torch.float32)


def image(shape) -> torch.Tensor:
    n = math.prod(shape)
    return torch.sin(0.0123 * torch.arange(n, dtype=torch.float64)).reshape(shape).to(torch.float32)


def filled(model: torch.nn.Module) -> torch.nn.Module:
    state = model.state_dict()
    with torch.no_grad():
        for name, tensor in state.items():
            if name.endswith("num_batches_tracked"):
                continue
            tensor.copy_(fill(name, list(tensor.shape)))
    return model.eval()


def write_state(model: torch.nn.Module, path: str) -> None:
    with open(path, "w") as out:
        for name, tensor in model.state_dict().items():
            out.write(f"{name} {' '.join(str(d) for d in tensor.shape)}\n")


def show(label: str, t: torch.Tensor) -> None:
    print(label, "[" + ", ".join(f"{v:.6f}" for v in t.flatten().tolist()) + "]")


def main(folder: str) -> None:
    inception = filled(torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False, num_classes=CLASSES))
    write_state(inception, f"{folder}/inception_v3.state.txt")
    captured = {}
    inception.Mixed_6e.register_forward_hook(lambda _m, _i, out: captured.__setitem__("Mixed_6e", out))
    with torch.no_grad():
        x = image([1, 3, 299, 299])
        show("inception_v3 logits", inception(x))
        show("inception_v3 AuxLogits", inception.AuxLogits(captured["Mixed_6e"]))

    resnet = filled(torchvision.models.resnet18(weights=None, num_classes=CLASSES))
    write_state(resnet, f"{folder}/resnet18.state.txt")
    with torch.no_grad():
        show("resnet18 logits", resnet(image([1, 3, 64, 64])))


if __name__ == "__main__":
    main(sys.argv[1])
