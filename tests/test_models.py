"""Presets, the fused attention, model files and the registry."""

from __future__ import annotations

import math

import pytest
import torch

from tad_daemon.models.modelfile import ModelConfig, read_config, save_model
from tad_daemon.models.network import build_unet, parameter_count
from tad_daemon.models.presets import PRESETS, architecture
from tad_daemon.models.registry import load_net, read_entry, scan
from tad_daemon.names import NameError_, check_name, is_within
from tests.conftest import TINY_ARCH, make_model


def test_seed_preset_is_the_seed_architecture():
    net = build_unet(architecture("tiny-audio-diffusion"))
    assert parameter_count(net) == 31_574_724  # the seed's 31.57 M


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_presets_build_and_fused_attention_matches_the_original(preset):
    arch = architecture(preset)
    torch.manual_seed(0)
    fused = build_unet(arch).eval()
    plain = build_unet(arch, fused_attention=False).eval()
    assert fused.state_dict().keys() == plain.state_dict().keys()
    plain.load_state_dict(fused.state_dict())
    x, t = torch.randn(1, 2, 4096), torch.tensor([0.7])
    with torch.no_grad():
        torch.testing.assert_close(fused(x, t), plain(x, t), atol=1e-4, rtol=1e-4)


def test_model_file_round_trip_in_fp16(tmp_path):
    path = make_model(tmp_path, "a", kind="kick")
    entry = read_entry(path)
    assert entry.name == "a" and entry.config.kind == "kick" and entry.config.arch == TINY_ARCH
    net = load_net(entry, torch.device("cpu"))
    half = save_model(tmp_path / "b.safetensors", net.state_dict(), entry.config, dtype=torch.float16)
    assert half.stat().st_size < path.stat().st_size * 0.6
    net16 = load_net(read_entry(half), torch.device("cpu"))
    assert next(net16.parameters()).dtype == torch.float32
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind


def test_a_shared_layer_is_stored_once(tmp_path):
    from safetensors import safe_open

    from tad_daemon.models.modelfile import read_weights

    net = load_net(read_entry(make_model(tmp_path, "a")), torch.device("cpu"))
    params = sum(p.numel() for p in net.parameters())  # each shared parameter once
    assert params < sum(t.numel() for t in net.state_dict().values())  # the U-Net does share one layer
    path = save_model(tmp_path / "b.safetensors", net.state_dict(), read_entry(tmp_path / "a.safetensors").config)
    with safe_open(str(path), framework="pt") as f:
        assert sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys()) == params
    again = load_net(read_entry(path), torch.device("cpu"))  # strict load: every name is there again
    for (name, a), b in zip(net.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), name
    assert read_weights(path).keys() == net.state_dict().keys()


def test_scan_skips_broken_files_and_user_folder_overrides_bundled(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    make_model(a, "kick", kind="kick")
    make_model(b, "kick", kind="snare")
    good = make_model(b, "snare")
    (b / "broken.safetensors").write_bytes(good.read_bytes()[:5000])  # half-copied
    (b / "notes.txt").write_text("not a model")
    (b / ".hidden.safetensors").write_bytes(good.read_bytes())
    entries, problems = scan([a, b, tmp_path / "missing"])
    assert sorted(entries) == ["kick", "snare"]
    assert entries["kick"].config.kind == "snare"
    assert len(problems) == 1 and "broken.safetensors" in problems[0]


def test_files_without_our_config_are_refused(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, path)
    with pytest.raises(ValueError, match="config"):
        read_config(path)
    with pytest.raises(ValueError, match="multiple"):
        ModelConfig(arch=TINY_ARCH, length=1000).check()
    with pytest.raises(ValueError, match="default_schedule"):
        ModelConfig(arch=TINY_ARCH, default_schedule="cosine").check()


@pytest.mark.parametrize("bad", ["", "../x", "a/b", "a\\b", "/etc", "con", "LPT1.txt", ".hidden", "a..b", "x" * 65,
                                 "trailing.", "tab\tname", "ünï", "kick\n", "x\n"])
def test_unsafe_names_are_refused(bad):
    with pytest.raises(NameError_):
        check_name(bad)


def test_safe_names_and_roots(tmp_path):
    assert check_name("my-kicks_v2.1") == "my-kicks_v2.1"
    assert is_within(tmp_path / "a" / "b", tmp_path)
    assert not is_within(tmp_path / ".." / "x", tmp_path)


def test_a_header_asking_for_a_huge_or_different_net_is_refused_before_anything_is_built(tmp_path, monkeypatch):
    import json

    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from tad_daemon.models import registry

    def only_on_meta(arch):  # building for real would allocate what the header asks for
        assert torch.get_default_device().type == "meta", "built before the header was checked"
        return build_unet(arch)

    monkeypatch.setattr(registry, "build_unet", only_on_meta)
    path = make_model(tmp_path, "a")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    weights = load_file(str(path))  # as stored: a shared layer once
    for name, change in (("huge", {"channels": [2048] * len(TINY_ARCH["channels"])}),
                         ("other", {"channels": [c * 2 for c in TINY_ARCH["channels"]]})):
        config = json.loads(meta["tad"])
        config["arch"] = {**config["arch"], **change}
        bad = tmp_path / f"{name}.safetensors"
        save_file({k: v.contiguous() for k, v in weights.items()}, str(bad),
                  metadata={**meta, "tad": json.dumps(config)})
        with pytest.raises(ValueError, match="M parameters, more than" if name == "huge" else "do not match"):
            load_net(read_entry(bad), torch.device("cpu"))
