"""A model of several kinds (KindUNet): every kind a model name, velocity, blends and layer sets; its training
data labelled by folder and labels.csv. The models here are tiny and random (with random kind embeddings, so
the kinds differ): these tests check the plumbing, bench/kit_report.py the sound."""

from __future__ import annotations

import os
import time
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf
import torch

from tad_daemon.audio.post import loudness
from tad_daemon.engine import Engine
from tad_daemon.kinds import kit_default, parse_blend
from tad_daemon.models.modelfile import ModelConfig, read_config, read_weights, save_model
from tad_daemon.models.network import KindUNet, build_unet
from tad_daemon.models.registry import model_folders, read_entry, scan
from tad_daemon.oneshot import velocity_db
from tad_daemon.protocol.table import DONE, FAIL
from tests.conftest import TINY_ARCH, make_model
from tests.daemon_util import Daemon, tad

KINDS = ["kick", "snare", "clap", "closed-hat", "tom", "hand-drum", "cowbell", "wood"]
SR = 44100


def make_kit(folder, name: str = "drums", kind: str = "kit", seed: int = 0, length: int = 32768, offers=()):
    """A tiny model of KINDS whose kind and velocity embeddings are random (a new one's are zero)."""
    torch.manual_seed(seed)
    arch = {**TINY_ARCH, "kinds": KINDS}
    net = build_unet(arch)
    with torch.no_grad():
        net.kind_embedding.normal_(0, 2.0)
        net.velocity_embedding.weight.normal_(0, 2.0)
    config = ModelConfig(arch=arch, kind=kind, length=length, source="test", default_steps=3, license="test",
                         offers=list(offers))
    path = save_model(folder / f"{name}.safetensors", net.state_dict(), config)
    os.utime(path, (time.time() - 60, time.time() - 60))  # installed before any daemon starts
    return path


def test_every_kind_is_a_model_name_and_a_file_of_ones_own_wins(tmp_path):
    make_kit(tmp_path)
    entries, problems = scan([tmp_path])
    assert not problems
    assert set(entries) == {"drums", *KINDS, "hat", "perc"}  # hat: closed hats; perc: tom, hand drum, cowbell, wood
    assert entries["clap"].kinds == ("clap",) and entries["clap"].kind == "clap"
    assert entries["perc"].kinds == ("tom", "hand-drum", "cowbell", "wood") and entries["hat"].kinds == ("closed-hat",)
    assert entries["drums"].kinds == tuple(KINDS)
    make_model(tmp_path, "kick", kind="kick")  # a file of its own, in the same folder: it is "kick"
    entries, _ = scan([tmp_path])
    assert entries["kick"].path.name == "kick.safetensors" and entries["kick"].kinds == ()
    user = tmp_path / "user"
    user.mkdir()
    make_kit(user, "my-claps", kind="clap", seed=1)  # a fine-tune of the kit on claps: one name, one kind
    entries, _ = scan(model_folders(user, bundled=False))
    assert set(entries) == {"my-claps"} and entries["my-claps"].kinds == ("clap",)


def test_a_kit_offers_only_the_kinds_the_judge_passed(tmp_path):
    """A model of several kinds whose file says `offers` is, for every purpose, a model of those kinds alone:
    the names listed, what its own name makes, what a blend may take; the rest stay inside it untrained."""
    make_kit(tmp_path, length=4096, offers=["clap", "tom"])
    entries, problems = scan([tmp_path])
    assert not problems and set(entries) == {"drums", "clap", "tom"}  # no hat, no perc: their kinds not offered
    assert entries["drums"].kinds == ("clap", "tom")
    engine = Engine("cpu", "fp32", backend="torch")
    engine.load(entries["drums"])
    engine.load(entries["clap"])
    assert {s.drum for s in engine.generate("drums", count=6, seed=0)} == {"clap", "tom"}
    with pytest.raises(ValueError, match=r"makes no 'wood' \(it makes clap, tom\)"):
        engine.generate("clap", blend={"wood": 0.5})
    with pytest.raises(ValueError, match="offers kinds the model does not make: ride"):
        ModelConfig(arch={**TINY_ARCH, "kinds": KINDS}, offers=["clap", "ride"]).check()


def test_kinds_share_one_net_and_each_makes_its_own(tmp_path):
    make_kit(tmp_path, length=4096)
    entries, _ = scan([tmp_path])
    engine = Engine("cpu", "fp32", backend="torch")
    for name in ("clap", "tom", "perc", "drums"):
        engine.load(entries[name])
    assert engine.get("clap").net is engine.get("tom").net  # one file, one net
    clap, tom = engine.generate("clap", seed=3)[0], engine.generate("tom", seed=3)[0]
    assert (clap.drum, tom.drum) == ("clap", "tom") and not np.allclose(clap.audio, tom.audio)
    again = engine.generate("clap", seed=3)[0]
    np.testing.assert_array_equal(again.audio, clap.audio)
    # A mixture makes one of its kinds per seed; the file's own name, any of them.
    assert {s.drum for s in engine.generate("perc", count=4, seed=0)} == {"tom", "hand-drum", "cowbell", "wood"}
    assert {s.drum for s in engine.generate("drums", count=8, seed=0)} == set(KINDS)
    # Velocity and blends change the sound; the metadata says what was asked.
    soft = engine.generate("clap", seed=3, velocity=0.3)[0]
    assert soft.velocity == 0.3 and not np.allclose(soft.audio, clap.audio)
    blended = engine.generate("clap", seed=3, blend={"tom": 1.0})[0]
    np.testing.assert_allclose(blended.audio, tom.audio, atol=1e-5)  # all the way to the other kind
    assert blended.blend == {"tom": 1.0} and engine.generate("clap", seed=3, blend={"tom": 0.3})[0].drum == "clap"
    with pytest.raises(ValueError, match="makes no 'ride'"):
        engine.generate("clap", blend={"ride": 0.5})
    make_model(tmp_path / "one", "kick", kind="kick")
    engine.load(read_entry(tmp_path / "one" / "kick.safetensors"))
    with pytest.raises(ValueError, match="nothing to blend"):
        engine.generate("kick", blend={"tom": 0.5})
    assert engine.generate("kick", seed=1, velocity=0.5)[0].velocity == 0.5  # a level only, for one kind


def test_guidance_pushes_the_kind_away_from_any_kind(tmp_path):
    """v = v(any kind) + g (v(kind) - v(any kind)), from one batch; g = 1 is the model as trained; the scale is
    the model file's own (ModelConfig.guidance) unless the engine is given one."""
    make_kit(tmp_path, length=4096)
    entries, _ = scan([tmp_path])
    plain = Engine("cpu", "fp32", backend="torch")
    plain.load(entries["clap"])
    net = plain.get("clap").net
    x, t = torch.randn(2, 2, 4096), torch.full((2,), 0.7)
    kinds = torch.zeros(2, len(KINDS))
    kinds[:, KINDS.index("clap")] = 1.0
    cond = {"kinds": kinds, "velocity": torch.tensor([1.0, 0.4])}
    with torch.no_grad():
        v_kind = net(x, t, **cond)
        v_any = net(x, t, torch.zeros_like(kinds), torch.full((2,), -1.0))
        assert not torch.allclose(v_kind, v_any)
        torch.testing.assert_close(plain._net_fn(plain.get("clap"), cond)(x, t), v_kind)
        for engine_scale in (2.5, None):
            guided = Engine("cpu", "fp32", backend="torch", guidance=engine_scale)
            entry = entries["clap"]
            if engine_scale is None:  # the file's own scale
                entry = replace(entry, config=replace(entry.config, guidance=2.5))
            guided.load(entry)
            got = guided._net_fn(guided.get("clap"), cond)(x, t)
            torch.testing.assert_close(got, v_any + 2.5 * (v_kind - v_any), rtol=1e-4, atol=1e-4)
    one = make_model(tmp_path / "one", "kick", kind="kick")  # a model of one kind has nothing to guide by
    guided = Engine("cpu", "fp32", backend="torch", guidance=3.0)
    guided.load(read_entry(one))
    assert guided._net_fn(guided.get("kick"), {})(x, t).shape == x.shape
    guided.load(entries["clap"])
    assert not np.allclose(guided.generate("clap", seed=1)[0].audio, plain.generate("clap", seed=1)[0].audio)


def test_new_kit_takes_what_a_beat_needs_among_the_models_there_are():
    assert kit_default({"kick", "snare", "hat", "perc"}) == ("kick", "snare", "hat", "perc")  # the bundled ones
    with_kit = {"kick", "snare", "hat", "perc", "drums", "clap", "tom", "crash"}  # and a kit offering three kinds
    assert kit_default(with_kit) == ("kick", "snare", "hat", "clap", "tom")
    assert kit_default({*with_kit, "closed-hat", "open-hat"}) == ("kick", "snare", "closed-hat", "open-hat", "clap",
                                                                  "tom")
    assert kit_default({"my-kicks"}) == ()


def test_blend_weights_mix_the_kind_embeddings():
    assert parse_blend("tom:0.3") == {"tom": 0.3}
    assert parse_blend(" tom:0.25, clap:0.5") == {"tom": 0.25, "clap": 0.5}
    for bad, reason in [("tom", "KIND:WEIGHT"), ("tom:0", "above 0"), ("tom:x", "above 0"), (":0.3", "KIND"),
                        ("tom:0.6,clap:0.6", "more than 1"), ("tom:0.1,tom:0.2", "twice")]:
        with pytest.raises(ValueError, match=reason):
            parse_blend(bad)
    net = build_unet({**TINY_ARCH, "kinds": ["kick", "tom"]})
    assert isinstance(net, KindUNet)
    with torch.no_grad():
        net.kind_embedding.copy_(torch.tensor([[1.0], [3.0]]).expand(2, net.kind_embedding.shape[1]))
    features = net.conditioning(torch.tensor([[0.7, 0.3]]), torch.tensor([-1.0]))
    assert torch.allclose(features, torch.full_like(features, 0.7 * 1 + 0.3 * 3))


def test_velocity_sets_the_level_as_real_layers_do():
    assert velocity_db(None) == 0.0 and velocity_db(1.0) == 0.0
    # The General MIDI soundfonts' layers at MIDI velocity 45, 75 and 105 (bench/real_drums.py's corpus).
    assert [velocity_db(v / 127) for v in (45, 75, 105)] == pytest.approx([-18.0, -9.2, -3.3], abs=0.1)


def test_layers_one_drum_at_each_velocity_with_its_takes(tmp_path, home):
    make_kit(home / "models", length=32768)
    out = tad(home, "layers", "snare", "--velocities", "3", "--round-robins", "2", "--seed", "5", "--steps", "2",
              "--out", str(tmp_path / "set"))
    assert out.returncode == 0, out.stderr
    files = [p for p in out.stdout.split()]
    assert [os.path.basename(p) for p in files] == [
        "snare_v042_rr1.wav", "snare_v042_rr2.wav", "snare_v085_rr1.wav", "snare_v085_rr2.wav",
        "snare_v127_rr1.wav", "snare_v127_rr2.wav"]
    audio = [sf.read(p)[0].T for p in files]
    levels = [loudness(a.astype(np.float32), SR) for a in audio]
    for i, v in enumerate((1 / 3, 2 / 3, 1.0)):  # one loudness for the set, then each at its velocity's level
        for take in (0, 1):
            assert levels[2 * i + take] - levels[-1] == pytest.approx(velocity_db(v), abs=0.6)
    assert not np.allclose(audio[4], audio[5])  # the takes differ
    bad = tad(home, "layers", "snare", "--velocities", "40")
    assert bad.returncode == 2


def test_kinds_over_osc(tmp_path):
    home = tmp_path / "home"
    make_kit(home / "models")
    d = Daemon(home).start()
    c = d.client()
    try:
        listed = [m.args[2] for m in c.request("/tad/models") if m.address == "/tad/model"]
        assert set(listed) == {"drums", *KINDS, "hat", "perc"}
        (r,) = c.request("/tad/generate", "clap", 1, 7, "vel=0.5", "blend=tom:0.3")
        assert r.address == DONE and r.args[2:4] == ["clap", 7]
        from tad_daemon.audio.wav import read_metadata

        meta = read_metadata(r.args[1])
        assert (meta["drum"], meta["velocity"], meta["blend"], meta["velocity_db"]) == ("clap", 0.5, {"tom": 0.3},
                                                                                        -12.04)
        replies = c.request("/tad/layers", "tom", 2, 2, 9, "tag=l")
        assert [m.address for m in replies] == [DONE] * 4
        assert [(m.args[4], m.args[5], m.args[-1]) for m in replies] == [
            (0.5, 0, "l"), (0.5, 1, "l"), (1.0, 0, "l"), (1.0, 1, "l")]
        assert len({os.path.dirname(m.args[1]) for m in replies}) == 1
        assert os.path.dirname(os.path.dirname(replies[0].args[1])) == str(home / "samples" / "layers")
        for request, reason in [(("/tad/generate", "clap", "blend=tom"), "blend: expected KIND:WEIGHT"),
                                (("/tad/generate", "clap", "blend=ride:0.2"), "makes no 'ride'"),
                                (("/tad/generate", "clap", "vel=0"), "vel must be between 0.01 and 1"),
                                (("/tad/layers", "tom", 17), "velocities must be between 1 and 16")]:
            (r,) = c.request(*request)
            assert r.address == FAIL and reason in r.args[1], (request, r.args)
    finally:
        c.close()
        d.stop()


def test_training_labels_kinds_by_folder_and_labels_csv(tmp_path):
    from tad_daemon.training.dataset import prepare
    from tad_daemon.training.settings import TrainConfig
    from tad_daemon.training.train import repeats, train

    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    for kind, n in (("kick", 4), ("clap", 1), ("nothing", 1)):
        (data / kind).mkdir(parents=True)
        for i in range(n):
            hit = rng.standard_normal((2048, 2)) * np.exp(-np.arange(2048) / 300)[:, None]
            sf.write(data / kind / f"{i}.wav", (0.3 * hit).astype(np.float32), SR)
    (data / "labels.csv").write_text("file,kind,velocity\nkick/0.wav,,0.5\nnothing/0.wav,clap,\n")
    d = prepare(data, 2048, kinds=["kick", "clap"])
    assert d.kind_counts() == {"kick": 4, "clap": 2} and d.audio.shape[0] == 6
    assert sorted(d.velocity.tolist()) == [-1.0] * 5 + [0.5]
    assert repeats(d, 1.0).tolist() == [2 if k == 1 else 1 for k in d.kinds.tolist()]  # claps twice an epoch
    (data / "nothing" / "1.wav").write_bytes((data / "kick" / "1.wav").read_bytes())
    assert any("no kind" in reason for _, reason in prepare(data, 2048, kinds=["kick", "clap"]).summary.skipped)
    # A new model of several kinds from a one-kind base: trains, and generates each kind by name.
    make_model(tmp_path / "models", "base", length=2048)
    cfg = TrainConfig(name="drums", data=str(data), out=str(tmp_path / "run"), base="base",
                      models_dir=str(tmp_path / "models"), kinds=["kick", "clap"], steps=2, micro_batch=2,
                      accumulation=1, balance=1.0, threads=1)
    result = train(cfg)
    config = read_config(result.model)
    assert config.kind == "kit" and config.arch["kinds"] == ["kick", "clap"] and config.length == 2048
    # Fine-tuning it on a folder of one kind: the folder's files are that kind; the model makes it by name,
    # with its base's guidance, offering what its base offered and that kind.
    save_model(result.model, read_weights(result.model), replace(config, offers=["kick"], guidance=2.0))
    mine = tmp_path / "mine"
    mine.mkdir()
    for i in range(2):
        (mine / f"{i}.wav").write_bytes((data / "kick" / f"{i}.wav").read_bytes())
    tuned = train(TrainConfig(name="my-claps", data=str(mine), out=str(tmp_path / "run2"), base=str(result.model),
                              kind="clap", steps=1, micro_batch=2, accumulation=1, threads=1))
    entry = read_entry(tuned.model)
    assert (entry.kind, entry.kinds) == ("clap", ("clap",))
    assert (entry.config.offers, entry.config.guidance) == (["kick", "clap"], 2.0)


def test_onnx_runs_a_model_of_several_kinds_once_for_all_its_names(tmp_path):
    make_kit(tmp_path, length=4096)
    entries, _ = scan([tmp_path])
    torch_engine = Engine("cpu", "fp32", backend="torch")
    onnx_engine = Engine("cpu", "fp32", backend="onnx", cache_dir=tmp_path / "cache")
    for name in ("clap", "tom"):
        torch_engine.load(entries[name])
        onnx_engine.load(entries[name], wait=True)
    assert onnx_engine.get("tom").backend == "onnx" and onnx_engine.get("tom").net is onnx_engine.get("clap").net
    assert len(list((tmp_path / "cache").glob("*.onnx"))) == 1  # one export for every name of the file
    for name, velocity in (("clap", None), ("tom", 0.4)):
        want = torch_engine.generate(name, seed=2, steps=3, velocity=velocity)[0].audio
        got = onnx_engine.generate(name, seed=2, steps=3, velocity=velocity)[0].audio
        np.testing.assert_allclose(got, want, atol=1e-3)
