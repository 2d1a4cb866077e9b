"""The order a training run draws its images in: a per-domain order reshuffled every epoch,
whose state a checkpoint carries so that a resumed run sees the same batches, and the gathering
of one batch from any of the data sets."""

from __future__ import annotations

from collections.abc import Sequence

import torch


class EpochSampler:
    """Random order over a dataset, reshuffled each epoch, with a state that can be saved."""

    def __init__(self, size: int, seed: int):
        if size < 1:
            raise ValueError("cannot sample from an empty dataset")
        self.size = size
        self.generator = torch.Generator().manual_seed(seed)
        self.order = torch.randperm(size, generator=self.generator)
        self.position = 0

    def next_indices(self, count: int) -> list[int]:
        out = []
        while len(out) < count:
            if self.position >= self.size:
                self.order = torch.randperm(self.size, generator=self.generator)
                self.position = 0
            take = min(count - len(out), self.size - self.position)
            out.extend(self.order[self.position:self.position + take].tolist())
            self.position += take
        return out


def gather_batch(dataset, indices: Sequence[int]) -> torch.Tensor:
    batch = getattr(dataset, "batch", None)
    if callable(batch):  # array-backed datasets: one indexing op instead of B __getitem__ calls
        out = batch(indices)
        return out[0] if isinstance(out, (tuple, list)) else out
    items = [dataset[i] for i in indices]
    items = [it[0] if isinstance(it, (tuple, list)) else it for it in items]
    return torch.stack(items)

