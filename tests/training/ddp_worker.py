"""Run by test_loop.py under torchrun: a tiny DDP training on the CPU (gloo backend)."""

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))

from test_loop import BlurPairs  # noqa: E402

from enhance.training.loop import TrainConfig, train  # noqa: E402

if __name__ == "__main__":
    out_dir = sys.argv[1]
    cfg = TrainConfig(depth=1, width=4, batch_size=4, max_steps=4, lr=1e-3, warmup_steps=1, eval_interval=2,
                      eval_samples=4, out_dir=out_dir, seed=1, device="cpu", num_threads=1)  # fmt: skip
    result = train(cfg, BlurPairs(seed=0), BlurPairs(seed=1, n_samples=4), progress=False)
    state = {"world": int(os.environ["WORLD_SIZE"]), "step": result["step"], "model": result["model"].state_dict()}
    torch.save(state, os.path.join(out_dir, f"rank{os.environ['RANK']}.pt"))
