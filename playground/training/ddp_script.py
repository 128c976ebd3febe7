"""Gradient accumulation and data-parallel training as the code a user writes.

``lab_code`` is the accumulation loop the lab shows (the mistakes toggled on appear in
it) next to the same step on data-parallel ranks. ``ddp_script`` is a whole training
script for ``torchrun``: the data and the initial parameters as literals, the model
wrapped in ``DistributedDataParallel``, each rank taking its share of every step, as
``playground run PRESET --ranks N`` trains (``ddp.py``) - so it ends on the same
parameters, to float rounding.

Torch-free: text only.
"""

from __future__ import annotations

from dataclasses import dataclass

from playground.training.config import TrainConfig

LOSS_CODE = {
    "mse": "F.mse_loss(out, target)",
    "sse": "((out - target) ** 2).sum()",
    "bce": "F.binary_cross_entropy(torch.sigmoid(out), target)",
    "ce": "F.cross_entropy(out, target.long())",
}
SUM_CODE = {
    "mse": 'F.mse_loss(model(xb), yb, reduction="sum")',
    "sse": "((model(xb) - yb) ** 2).sum()",
    "bce": 'F.binary_cross_entropy(torch.sigmoid(model(xb)), yb, reduction="sum")',
    "ce": 'F.cross_entropy(model(xb), yb.long(), reduction="sum")',
}


def lab_code(toggles: object, k: int, ranks: int, loss: str, optimizer: str) -> str:
    """The lab's step as code: K micro-batches on one process, then on ``ranks`` ranks."""
    forgot_zero = getattr(toggles, "forgot_zero_grad", False)
    forgot_scale = getattr(toggles, "forgot_scale", False)
    uneven = getattr(toggles, "uneven", False)
    shuffled = getattr(toggles, "shuffled", False)
    zero = "opt.zero_grad()" if optimizer != "gd" else "for p in params: p.grad = None"
    step = (
        "opt.step()"
        if optimizer != "gd"
        else "with torch.no_grad():\n    for p in params: p -= lr * p.grad"
    )
    lines = [f"# one optimizer step from K = {k} micro-batches, on one process"]
    if shuffled:
        lines.append("perm = torch.randperm(len(xs))  # shuffled before they are cut")
        lines.append("micro_batches = zip(xs[perm].split(B), ys[perm].split(B))")
    else:
        lines.append("micro_batches = zip(xs.split(B), ys.split(B))  # fixed order")
    lines.append(f"# {zero}  # FORGOTTEN: last step's .grad stays" if forgot_zero else zero)
    lines.append("for xb, yb in micro_batches:")
    if forgot_scale:
        lines.append("    loss = loss_fn(model(xb), yb)  # FORGOTTEN / K: K x the gradient")
    else:
        lines.append("    loss = loss_fn(model(xb), yb) / K")
    if uneven:
        lines.append("    # the last micro-batch is short: / K weights its few samples more;")
        lines.append(f"    # the fix: loss = {SUM_CODE[loss]} / N  # N = len(xs)")
    lines.append("    loss.backward()  # p.grad += dloss/dp: backward ADDS")
    lines += step.splitlines()
    m = k // ranks
    lines += ["", f"# the same step on {ranks} ranks: torchrun --nproc-per-node {ranks} script.py"]
    lines.append("model = DDP(model)  # every rank starts from rank 0's parameters")
    lines.append(zero)
    if m == 1:
        lines.append("xb, yb = my_micro_batch  # this rank's one of the K")
        lines.append("loss = loss_fn(model(xb), yb)")
        lines.append("loss.backward()  # all-reduce: .grad = the mean over the ranks")
    else:
        lines.append(f"for i, (xb, yb) in enumerate(my_micro_batches):  # this rank's {m}")
        lines.append(f"    with model.no_sync() if i < {m - 1} else nullcontext():")
        lines.append(f"        loss = loss_fn(model(xb), yb) / {m}")
        lines.append("        loss.backward()  # the last one all-reduces")
    lines += step.splitlines()
    return "\n".join(lines)


@dataclass(frozen=True)
class ScriptSpec:
    """What a DDP script is made of (all literal values)."""

    title: str
    cfg: TrainConfig  # ``accumulate`` is K per rank
    steps: int
    x: list  # the training inputs, one row per sample
    y: list
    init: dict[str, list]  # initial parameters by name, in the model's order
    model_kind: str
    module_code: str | None  # "nn.Linear(1, 1)"; None for the by-hand w, b
    n_features: int
    n_outputs: int


def _docstring(title: str) -> str:
    text = title.replace("\\", "\\\\").replace('"', '\\"')
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    return f'''"""{text} - data-parallel training with DistributedDataParallel.

Exported from playground. Run it with torchrun, one process a rank (gloo on the CPU,
nccl when every rank has a GPU of its own):

    torchrun --standalone --nproc-per-node 2 THIS_FILE.py        # 2 ranks on this machine
    torchrun --standalone --nproc-per-node 4 THIS_FILE.py        # the 4 GPUs of a server
    torchrun --nnodes 2 --nproc-per-node 4 --node-rank 0 \\\\
        --rdzv-backend c10d --rdzv-endpoint HOST:29500 THIS_FILE.py   # on each of 2 nodes

Every rank starts from the same parameters and takes its share of each step's samples.
The last backward of a step all-reduces the gradients - DDP averages them over the
ranks - so every rank takes the same step: the step gradient accumulation over
ranks x K micro-batches takes on one process.
"""'''


def _model_lines(spec: ScriptSpec) -> list[str]:
    if spec.model_kind == "scalar":
        return [
            "class Line(nn.Module):",
            '    """x @ w + b: the by-hand model as a module (DDP wraps modules)."""',
            "",
            "    def __init__(self, d):",
            "        super().__init__()",
            "        self.w = nn.Parameter(torch.zeros(d))",
            "        self.b = nn.Parameter(torch.zeros(1))",
            "",
            "    def forward(self, x):",
            "        return x @ self.w + self.b",
            "",
            "",
        ]
    if spec.model_kind == "softmax":
        return [
            "class SoftmaxRegression(nn.Module):",
            '    """h = XW + b with W: d x C, b: 1 x C."""',
            "",
            "    def __init__(self, d, c):",
            "        super().__init__()",
            "        self.W = nn.Parameter(torch.zeros(d, c))",
            "        self.b = nn.Parameter(torch.zeros(1, c))",
            "",
            "    def forward(self, x):",
            "        return torch.matmul(x, self.W) + self.b",
            "",
            "",
        ]
    return []


def _optimizer_line(cfg: TrainConfig) -> str:
    if cfg.optimizer == "sgd":
        return (
            f"    opt = torch.optim.SGD(model.parameters(), lr={cfg.lr!r}, momentum="
            f"{cfg.momentum!r}, nesterov={cfg.nesterov!r}, weight_decay={cfg.weight_decay!r})"
        )
    if cfg.optimizer == "adam":
        return (
            f"    opt = torch.optim.Adam(model.parameters(), lr={cfg.lr!r}, betas={cfg.betas!r}, "
            f"weight_decay={cfg.weight_decay!r})"
        )
    return f"    lr = {cfg.lr!r}  # the update by hand: p -= lr * p.grad"


def _loop(spec: ScriptSpec) -> list[str]:
    cfg = spec.cfg
    out = (
        "model(xb)"
        if spec.n_outputs > 1 or spec.model_kind == "scalar"
        else "model(xb).squeeze(-1)"
    )
    zero = (
        "opt.zero_grad()"
        if cfg.optimizer != "gd"
        else "for p in model.parameters():\n    p.grad = None"
    )
    step = (
        "opt.step()"
        if cfg.optimizer != "gd"
        else "with torch.no_grad():\n    for p in model.parameters():\n        p -= lr * p.grad"
    )
    full = cfg.batch_size in (0, len(spec.x))
    if full:
        head = [
            "    # this rank's shard of the training set, in K micro-batches",
            "    shard_x, shard_y = x.tensor_split(world)[rank], y.tensor_split(world)[rank]",
            "    micro_batches = list(zip(shard_x.tensor_split(K), shard_y.tensor_split(K)))",
            "    n = len(x)",
        ]
        if cfg.loss == "sse":
            weight = ["# a sum over all samples: x world undoes DDP's average over the ranks",
                      "(loss * world).backward()"]  # fmt: skip
        else:
            weight = ["# its share of the mean over all n samples (1/K when the shards are even)",
                      "(loss * (len(xb) * world / n)).backward()"]  # fmt: skip
        body = [
            "for k, (xb, yb) in enumerate(micro_batches):",
            "    # only the last backward all-reduces; no_sync() keeps the others local",
            "    with model.no_sync() if k < len(micro_batches) - 1 else nullcontext():",
            f"        loss = loss_fn({out}, yb)",
            *("        " + w for w in weight),
        ]
    else:
        head = [
            f"    B = {cfg.batch_size}  # samples per micro-batch",
            "    n_batches = -(-len(x) // B)",
            "",
        ]
        if cfg.shuffle:
            head += [
                "    # each epoch's order of the samples, as DataLoader(shuffle=True) draws it",
                "    # (the same seed on every rank: the same order everywhere)",
                "    loader = DataLoader(TensorDataset(torch.arange(len(x))), batch_size=len(x),",
                f"                        shuffle=True, generator=torch.Generator().manual_seed({cfg.seed!r}))",
                "    drawn = [-1, None]  # the last epoch drawn and its order",
                "",
                "    def order(epoch):",
                "        while drawn[0] < epoch:",
                "            ((indices,),) = list(loader)",
                "            drawn[:] = [drawn[0] + 1, indices.to(device)]",
                "        return drawn[1]",
                "",
                "    def micro_batch(c):",
                '        """The c-th micro-batch of B samples: epoch after epoch, shuffled."""',
                "        epoch, j = divmod(c, n_batches)",
                "        index = order(epoch)[j * B:(j + 1) * B]",
                "        return x[index], y[index]",
            ]
        else:
            head += [
                "    def micro_batch(c):",
                '        """The c-th micro-batch of B samples, epoch after epoch."""',
                "        j = c % n_batches",
                "        return x[j * B:(j + 1) * B], y[j * B:(j + 1) * B]",
            ]
        body = [
            "for k in range(K):",
            "    # rank r takes micro-batches (step * world + r) * K ... + K - 1",
            "    xb, yb = micro_batch((step * world + rank) * K + k)",
            "    # only the last backward all-reduces; no_sync() keeps the others local",
            "    with model.no_sync() if k < K - 1 else nullcontext():",
            f"        loss = loss_fn({out}, yb) / K",
            "        loss.backward()",
        ]
    loop = ["", "    for step in range(STEPS):"]
    loop += ["        " + line for line in zero.splitlines()]
    loop += ["        " + line for line in body]
    loop += ["        " + line for line in step.splitlines()]
    return head + loop


def ddp_script(spec: ScriptSpec) -> str:
    """A complete training script for ``torchrun`` (see the module docstring)."""
    cfg = spec.cfg
    if spec.model_kind == "scalar":
        make = f"Line({spec.n_features})"
    elif spec.model_kind == "softmax":
        make = f"SoftmaxRegression({spec.n_features}, {spec.n_outputs})"
    else:
        assert spec.module_code is not None
        make = spec.module_code
    names = list(spec.init)
    lines = [
        _docstring(spec.title),
        "",
        "import json",
        "import os",
        "from contextlib import nullcontext",
        "",
        "import torch",
        "import torch.distributed as dist",
        "import torch.nn.functional as F",
        "from torch import nn",
        "from torch.nn.parallel import DistributedDataParallel as DDP",
        *(["from torch.utils.data import DataLoader, TensorDataset"] if cfg.shuffle else []),
        "",
        f"STEPS = {spec.steps}  # optimizer steps",
        f"K = {cfg.accumulate}  # micro-batches a rank adds up between two all-reduces",
        f"X = {spec.x!r}",
        f"Y = {spec.y!r}",
        f"NAMES = {names!r}",
        f"INIT = {[spec.init[n] for n in names]!r}  # the initial parameters, in that order",
        "",
        "",
        *_model_lines(spec),
        "def loss_fn(out, target):",
        f"    return {LOSS_CODE[cfg.loss]}",
        "",
        "",
        "def main():",
        "    local_rank = int(os.environ.get('LOCAL_RANK', 0))",
        "    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0",
        "    use_cuda = gpus >= int(os.environ.get('LOCAL_WORLD_SIZE', 1))  # a GPU for each rank",
        "    device = torch.device('cuda', local_rank) if use_cuda else torch.device('cpu')",
        "    if use_cuda:",
        "        torch.cuda.set_device(device)",
        "    dist.init_process_group('nccl' if use_cuda else 'gloo')  # torchrun's rendezvous",
        "    rank, world = dist.get_rank(), dist.get_world_size()",
        "",
        "    x = torch.tensor(X, device=device)",
        "    y = torch.tensor(Y, device=device)",
        f"    model = {make}.to(device)",
        "    with torch.no_grad():",
        "        for p, value in zip(model.parameters(), INIT):",
        "            p.copy_(torch.tensor(value))",
        "    # DDP broadcasts rank 0's parameters and all-reduces the gradients in backward()",
        "    model = DDP(model, device_ids=[local_rank] if use_cuda else None)",
        _optimizer_line(cfg),
        "",
        *_loop(spec),
        "",
        "    if rank == 0:",
        "        final = dict(zip(NAMES, (p.detach().cpu().tolist() for p in model.parameters())))",
        "        print(json.dumps({'final': final}))",
        "    dist.barrier()  # no rank closes its connections while another still uses them",
        "    dist.destroy_process_group()",
        "",
        "",
        "if __name__ == '__main__':",
        "    main()",
        "",
    ]
    return "\n".join(lines)
