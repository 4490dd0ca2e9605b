"""PyTorch CPU reference for benchmarks/training.ts: the same pre-activation ResNet and SGD step, timed per step.

The network mirrors science/resnet.ts: 3x3 stem conv to 16 channels; 3 sections of L blocks
x + conv(relu(bn(conv(relu(bn(x)))))) at 16, 32, 64 channels; 1x1 stride-2 transition convs (no BN/ReLU) doubling the
channels; final BN-ReLU, global average pool, dense to 10 logits. No conv biases, BN eps 1e-5 and momentum 0.1,
He-normal kernels. The step mirrors science/training.ts: gather a batch of uint8 images by a shuffled index, scale
and normalise, forward in training mode, mean softmax cross-entropy, backward, SGD with momentum 0.9 and weight decay
5e-4 on conv and dense kernels only.

Two ways to run it:
  python torch_reference.py --shape 28,28,1 --blocks 4 --steps 10      one measurement, one JSON line on stdout
  python torch_reference.py --serve                                   one JSON request per stdin line, one JSON reply
                                                                      per stdout line (the benchmark interleaves
                                                                      these with its own runs in one process)
A request is {"shape": [H, W, C], "blocks": L, "batch": 128, "warmup": 2, "steps": 10, "channelsLast": false,
"profile": false}; the reply is {"stepMs": [...], "threads": ..., "torch": version} plus, with "profile", the top
operators by self CPU time ("ops": [{"name", "selfMs", "calls"}] per step).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings

warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
import torch  # noqa: E402
from torch import nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

CHANNELS = (16, 32, 64)


class Block(nn.Module):
    """x + conv2(relu(bn2(conv1(relu(bn1(x))))))"""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.bn2(self.conv1(F.relu(self.bn1(x))))))


class PreActResNet(nn.Module):
    def __init__(self, in_channels: int, blocks: int, classes: int = 10) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, CHANNELS[0], 3, padding=1, bias=False)]
        for i, c in enumerate(CHANNELS):
            if i > 0:
                layers.append(nn.Conv2d(c // 2, c, 1, stride=2, bias=False))
            layers.extend(Block(c) for _ in range(blocks))
        self.body = nn.Sequential(*layers)
        self.head_bn = nn.BatchNorm2d(CHANNELS[-1], eps=1e-5, momentum=0.1)
        self.dense = nn.Linear(CHANNELS[-1], classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                nn.init.normal_(m.weight, std=math.sqrt(2 / fan_in))
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.head_bn(self.body(x)))
        return self.dense(x.mean(dim=(2, 3)))


def measure(request: dict) -> dict:
    h, w, c = request["shape"]
    blocks = int(request["blocks"])
    batch = int(request.get("batch", 128))
    warmup = int(request.get("warmup", 2))
    steps = int(request["steps"])
    channels_last = bool(request.get("channelsLast", False))
    torch.manual_seed(int(request.get("seed", 0)))

    model = PreActResNet(c, blocks)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    decayed = [p for n, p in model.named_parameters() if n.endswith("weight") and p.dim() > 1]
    others = [p for n, p in model.named_parameters() if not (n.endswith("weight") and p.dim() > 1)]
    optimizer = torch.optim.SGD(
        [{"params": decayed, "weight_decay": 5e-4}, {"params": others, "weight_decay": 0.0}], lr=0.1, momentum=0.9
    )
    count = (warmup + steps) * batch
    images = torch.randint(0, 256, (count, c, h, w), dtype=torch.uint8)
    labels = torch.randint(0, 10, (count,))
    order = torch.randperm(count)
    mean = torch.full((1, c, 1, 1), 0.13)
    std = torch.full((1, c, 1, 1), 0.3)
    model.train()

    def step(i: int) -> None:
        index = order[i * batch : (i + 1) * batch]
        x = ((images[index].float() / 255) - mean) / std
        x = x.contiguous(memory_format=memory_format)
        loss = F.cross_entropy(model(x), labels[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step_ms: list[float] = []
    ops: list[dict] | None = None
    for i in range(warmup):
        step(i)
    if request.get("profile", False):
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for i in range(warmup, warmup + steps):
                step(i)
        table = prof.key_averages()
        ops = sorted(
            (
                {"name": e.key, "selfMs": e.self_cpu_time_total / 1000 / steps, "calls": e.count / steps}
                for e in table
            ),
            key=lambda o: -o["selfMs"],
        )[:25]
    else:
        for i in range(warmup, warmup + steps):
            t0 = time.perf_counter()
            step(i)
            step_ms.append((time.perf_counter() - t0) * 1000)
    reply: dict = {"stepMs": step_ms, "threads": torch.get_num_threads(), "torch": torch.__version__}
    if ops is not None:
        reply["ops"] = ops
    return reply


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve", action="store_true", help="answer JSON requests on stdin, one per line")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    parser.add_argument("--shape", default="28,28,1", help="H,W,C")
    parser.add_argument("--blocks", type=int, default=1)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    if args.serve:
        print(json.dumps({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                reply = measure(json.loads(line))
            except Exception as error:  # reported to the caller, which decides
                reply = {"error": f"{type(error).__name__}: {error}"}
            print(json.dumps(reply), flush=True)
        return
    shape = [int(d) for d in args.shape.split(",")]
    request = {
        "shape": shape,
        "blocks": args.blocks,
        "batch": args.batch,
        "warmup": args.warmup,
        "steps": args.steps,
        "channelsLast": args.channels_last,
        "profile": args.profile,
    }
    print(json.dumps(measure(request)))


if __name__ == "__main__":
    main()
