"""CUDA graphs of a U-Net's forward: one per batch size, captured when first needed and replayed after.

On a GPU a small U-Net is launch-bound: replaying its forward from a graph saves most of a one-shot's time
(bench/gpu.py measures it; docs/benchmarks.md). A graph fixes shapes,
so batches are padded up to the next captured size (1, 2, 4, 8, 16) and anything a graph cannot serve (a
bigger batch, another length, gradients, a capture that failed) runs eagerly, as before.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch

log = logging.getLogger(__name__)

SIZES = (1, 2, 4, 8, 16)

Captured = tuple[Callable[[], None], torch.Tensor, object]  # (replay, static output, memory pool)
Capture = Callable[[Callable, torch.Tensor, torch.Tensor, object], Captured]  # (fn, static x, static t, pool)


def cuda_capture(fn: Callable, x: torch.Tensor, t: torch.Tensor, pool) -> Captured:
    """Capture `fn(x, t)` as a CUDA graph (warmed up on a side stream first, as torch asks); the graphs of
    one net share a memory pool: they never run at the same time."""
    side = torch.cuda.Stream(x.device)
    side.wait_stream(torch.cuda.current_stream(x.device))
    with torch.cuda.stream(side):
        for _ in range(3):
            fn(x, t)
    torch.cuda.current_stream(x.device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, pool=pool):
        out = fn(x, t)
    return graph.replay, out, graph.pool()


class GraphedNet:
    """`net(x, t)` with bf16/fp16 autocast (`dtype`, None for fp32), from a graph per batch size.

    `capture` is how a graph is made (cuda_capture on a GPU; tests pass a stand-in, so the choice of sizes,
    padding and fallbacks is tested without one).
    """

    def __init__(self, net: torch.nn.Module, dtype: torch.dtype | None, sizes: tuple[int, ...] = SIZES,
                 capture: Capture | None = None):
        self.net, self.dtype, self.sizes, self.capture = net, dtype, tuple(sorted(sizes)), capture
        self.graphs: dict[tuple, tuple] = {}  # (size, item shape, device): (replay, static x, t, out)
        self.failed: set[tuple] = set()
        self.pool = None

    def eager(self, x: torch.Tensor, t: torch.Tensor, **cond: torch.Tensor) -> torch.Tensor:
        # No autocast weight cache: its casts would be freed after capture while the graph still reads them.
        with torch.autocast(x.device.type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None,
                            cache_enabled=False):
            return self.net(x, t, **cond)

    def size_for(self, batch: int) -> int | None:
        """The captured size a batch is padded to, or None (eager)."""
        return next((s for s in self.sizes if s >= batch), None)

    def __call__(self, x: torch.Tensor, t: torch.Tensor, **cond: torch.Tensor) -> torch.Tensor:
        if cond:  # a model of several kinds runs eagerly: it is small, and its graphs would need more inputs
            return self.eager(x, t, **cond)
        size = self.size_for(x.shape[0])
        key = (size, tuple(x.shape[1:]), str(x.device), x.dtype)
        if size is None or key in self.failed or torch.is_grad_enabled():
            return self.eager(x, t)
        graph = self.graphs.get(key) or self._capture(key, x, t)
        if graph is None:
            return self.eager(x, t)
        replay, static_x, static_t, out = graph
        b = x.shape[0]
        static_x[:b].copy_(x)
        static_t[:b].copy_(t)
        if b < size:  # the padding repeats the first item: sane values, and its outputs are dropped
            static_x[b:].copy_(x[:1].expand(size - b, *x.shape[1:]))
            static_t[b:].copy_(t[:1].expand(size - b))
        replay()
        return out[:b].clone()  # the next replay overwrites `out`

    def _capture(self, key: tuple, x: torch.Tensor, t: torch.Tensor) -> tuple | None:
        size = key[0]
        static_x = torch.zeros((size, *x.shape[1:]), device=x.device, dtype=x.dtype)
        static_t = torch.full((size,), 0.5, device=t.device, dtype=t.dtype)
        try:
            capture = self.capture or cuda_capture
            replay, out, self.pool = capture(self.eager, static_x, static_t, self.pool)
        except Exception as e:  # a graph is an optimisation: whatever stops it, eager still works
            log.warning("CUDA graph of batch %d not captured (%s); that size runs eagerly", size, e)
            self.failed.add(key)
            return None
        log.info("CUDA graph captured for batch %d", size)
        self.graphs[key] = (replay, static_x, static_t, out)
        return self.graphs[key]
