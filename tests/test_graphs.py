"""CUDA graphs in the engine, without a GPU: which batch sizes are captured, the padding, and every way back
to eager (a batch too big, gradients, another length, a capture that fails). A stand-in capture records the
function once and replays it on its fixed buffers, as a graph does."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tad_daemon.engine import Engine
from tad_daemon.models import graphs
from tad_daemon.models.graphs import GraphedNet
from tad_daemon.models.registry import read_entry
from tests.conftest import make_model


class FakeCapture:
    """Records captures; a replay runs the function again on the same input and output buffers."""

    def __init__(self, fail: bool = False):
        self.sizes, self.replays, self.fail = [], 0, fail

    def __call__(self, fn, x, t, pool):
        if self.fail:
            raise RuntimeError("operation not permitted when stream is capturing")
        self.sizes.append(x.shape[0])
        out = fn(x, t).clone()

        def replay():
            self.replays += 1
            out.copy_(fn(x, t))

        return replay, out, pool or "pool"


class Net(torch.nn.Module):
    def forward(self, x, t):
        return x * t.view(-1, 1, 1) + x.mean(dim=(1, 2), keepdim=True)  # per item, like the U-Net


def batch(n: int, length: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(n)
    return torch.randn(n, 2, length, generator=g), torch.rand(n, generator=g)


def test_batches_are_padded_to_the_captured_sizes_and_each_size_is_captured_once():
    cap = FakeCapture()
    net = GraphedNet(Net(), None, capture=cap)
    with torch.inference_mode():
        for n in (3, 4, 1, 3, 16, 9):
            x, t = batch(n)
            assert torch.allclose(net(x, t), Net()(x, t), atol=1e-6)
    assert cap.sizes == [4, 1, 16] and cap.replays == 6
    assert [net.size_for(n) for n in (1, 2, 3, 5, 16, 17)] == [1, 2, 4, 8, 16, None]


def test_what_a_graph_cannot_serve_runs_eagerly():
    cap = FakeCapture()
    net = GraphedNet(Net(), None, capture=cap)
    with torch.inference_mode():
        x, t = batch(17)
        assert torch.allclose(net(x, t), Net()(x, t))  # bigger than the largest size
        net(*batch(2, 64))
        net(*batch(2, 128))  # another length: its own graph
    assert cap.sizes == [2, 2] and len(net.graphs) == 2
    x, t = batch(2)
    x.requires_grad_(True)
    net(x, t).sum().backward()  # gradients: eager, never a graph
    assert x.grad is not None and cap.replays == 2


def test_a_failed_capture_falls_back_to_eager_and_is_not_retried(caplog):
    cap = FakeCapture(fail=True)
    net = GraphedNet(Net(), None, capture=cap)
    with torch.inference_mode():
        for _ in range(3):
            x, t = batch(2)
            assert torch.allclose(net(x, t), Net()(x, t))
    assert len(net.failed) == 1 and not net.graphs
    assert sum("not captured" in r.message for r in caplog.records) == 1


@pytest.mark.parametrize("capture", ["fake", "real"])
def test_the_engine_gives_the_same_sounds_with_graphs(tmp_path, monkeypatch, capture):
    """With a stand-in capture the graphs serve; with torch's own on a machine without CUDA, capturing
    fails and the engine goes on eagerly. The sounds are the same either way."""
    model = read_entry(make_model(tmp_path, "m", length=4096))
    plain = Engine("cpu", "fp32", backend="torch", cuda_graphs=True)
    assert not plain.cuda_graphs  # only on CUDA devices
    plain.load(model)
    want = [s.audio for s in plain.generate("m", 3, seed=5, steps=3)]
    graphed = Engine("cpu", "fp32", backend="torch")
    graphed.cuda_graphs = True  # as on a CUDA device
    cap = FakeCapture()
    if capture == "fake":
        monkeypatch.setattr(graphs, "cuda_capture", cap)
    loaded = graphed.load(model)
    assert isinstance(loaded.net, GraphedNet) and "with CUDA graphs" in loaded.describe()
    got = [s.audio for s in graphed.generate("m", 3, seed=5, steps=3)]
    for a, b in zip(want, got):
        np.testing.assert_allclose(a, b, atol=1e-5)
    if capture == "fake":
        assert cap.sizes == [4] and cap.replays == 3  # one batch of 3 padded to 4, three steps
    else:
        assert loaded.net.failed and not loaded.net.graphs
