// The device's JavaScript under Node: `node --test max_for_live/test/`.
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const {LiveWorld, loadDevice, connect, SCRIPT} = require("./max_stub.js");

const OSC = 0;
const BUFFER = 1;
const MODELS = 3;
const LABEL = 4;
const RECEIVE = 6;
const HISTORY = 7;
const BLEND = 9;

test("start-up registers for replies, pings and sets the ports", () => {
  const d = loadDevice();
  d.message("init");
  assert.deepEqual(d.sent(OSC)[0], ["port", 9310]);
  assert.deepEqual(d.sent(RECEIVE)[0], ["port", 9311]);
  const notify = d.lastOsc("/tad/notify");
  assert.deepEqual(notify.slice(0, 3), ["/tad/notify", 1, 9311]);
  assert.match(d.tagOf(notify), /^017tad-[0-9a-z]+\.\d+$/);
  assert.ok(d.lastOsc("/tad/ping"));
  assert.match(d.status(), /looking for the daemon/);
  assert.equal(d.context.outlets, 10);
  assert.equal(d.context.inlets, 1);
});

test("two devices get different tags", () => {
  const a = loadDevice({args: ["tad_drums.js", "017tad"]});
  const b = loadDevice({args: ["tad_drums.js", "018tad"]});
  a.message("init");
  b.message("init");
  assert.notEqual(a.tagOf(a.lastOsc("/tad/ping")).split(".")[0], b.tagOf(b.lastOsc("/tad/ping")).split(".")[0]);
});

test("the first answer makes the daemon ready and fetches models and status", () => {
  const d = loadDevice();
  d.message("init");
  const mark = d.out.length;
  d.done("/tad/ping");
  assert.equal(d.status(), "daemon ready");
  assert.equal(d.osc("/tad/models", mark).length, 1);
  assert.equal(d.osc("/tad/status", mark).length, 1);
});

test("the model list is built in the daemon's order, whatever order the packets come in", () => {
  const d = loadDevice();
  d.message("init");
  d.done("/tad/ping");
  const tag = d.tagOf(d.lastOsc("/tad/models"));
  const mark = d.out.length;
  d.message("/tad/model", 2, 3, "hat", "hat", "cpu-small", "bundled", "CC0", tag);
  d.message("/tad/model", 0, 3, "kick", "kick", "cpu-small", "bundled", "CC0", tag);
  d.message("/tad/model", 1, 3, "snare", "snare", "cpu-small", "bundled", "CC0", tag);
  assert.equal(d.sent(MODELS, mark).length, 0, "nothing shown before /tad/done /tad/models");
  d.message("/tad/done", "/tad/models", 3, tag);
  assert.deepEqual(d.sent(MODELS, mark), [["clear"], ["append", "kick"], ["append", "snare"], ["append", "hat"], ["set", 0]]);
  assert.equal(d.lastText(LABEL), "new kick");
});

test("a refresh keeps the chosen model, and falls back when it was removed", () => {
  const d = connect(loadDevice());
  d.message("modelindex", 1);
  assert.equal(d.lastText(LABEL), "new snare");
  const mark = d.out.length;
  d.message("/tad/model/added", "my-kicks", "kick");
  const tag = d.tagOf(d.osc("/tad/models", mark)[0]);
  ["kick", "snare", "my-kicks"].forEach((n, i) => d.message("/tad/model", i, 3, n, "kick", "p", "s", "l", tag));
  d.message("/tad/done", "/tad/models", 3, tag);
  assert.deepEqual(d.sent(MODELS).slice(-1)[0], ["set", 1]);
  assert.equal(d.lastText(LABEL), "new snare");

  d.message("/tad/model/removed", "snare");
  const tag2 = d.tagOf(d.lastOsc("/tad/models"));
  d.message("/tad/model", 0, 1, "kick", "kick", "p", "s", "l", tag2);
  d.message("/tad/done", "/tad/models", 1, tag2);
  assert.equal(d.lastText(LABEL), "new kick");
});

test("'new snare' x3: one request, three replies, each loaded into the sampler", () => {
  const d = connect(loadDevice());
  d.message("modelindex", 1);
  d.message("count", 3);
  const mark = d.out.length;
  d.message("generate");
  const req = d.lastOsc("/tad/generate");
  assert.deepEqual(req.slice(0, 5), ["/tad/generate", "snare", 3, -1, 0]);
  const tag = d.tagOf(req);
  const paths = [1, 2, 3].map((i) => `/home/u/Music/tad-daemon/snare/2026112${i}-101500-123_snare_s${i}.wav`);
  d.message("/tad/done", "/tad/generate", paths[0], "snare", 1, 12, "dpmpp-2m", 0, tag);
  assert.match(d.status(), /2 more coming/);
  d.message("/tad/done", "/tad/generate", paths[1], "snare", 2, 12, "dpmpp-2m", 1, tag);
  d.message("/tad/done", "/tad/generate", paths[2], "snare", 3, 12, "dpmpp-2m", 0, tag);
  assert.deepEqual(d.sent(BUFFER, mark), paths.map((p) => ["replace", p]));
  assert.doesNotMatch(d.status(), /more coming/);
  assert.deepEqual(d.sent(HISTORY).slice(-2), [["append", "20261121-101500-123_snare_s1.wav"], ["set", 0]]);
  // Picking an older result from the history loads it again.
  d.message("historyindex", 2);
  assert.deepEqual(d.sent(BUFFER).slice(-1)[0], ["replace", paths[0]]);
  // A fourth reply with the same tag (a stray duplicate) is not loaded: the request is complete.
  const before = d.sent(BUFFER).length;
  d.message("/tad/done", "/tad/generate", "/tmp/extra.wav", "snare", 4, 12, "dpmpp-2m", 0, tag);
  assert.equal(d.sent(BUFFER).length, before);
});

test("replies meant for another device or client are ignored", () => {
  const d = connect(loadDevice());
  d.message("generate");
  const mark = d.out.length;
  d.message("/tad/done", "/tad/generate", "/tmp/other.wav", "kick", 5, 12, "dpmpp-2m", 0, "018tad-zz.4");
  d.message("/tad/done", "/tad/generate", "/tmp/untagged.wav", "kick", 5, 12, "dpmpp-2m", 0);
  d.message("/tad/fail", "/tad/generate", "unknown model 'x'", "018tad-zz.5");
  assert.equal(d.sent(BUFFER, mark).length, 0);
  assert.equal(d.errors.length, 0);
  assert.doesNotMatch(d.status(), /failed/);
});

test("/tad/fail is shown to the user and ends the request", () => {
  const d = connect(loadDevice());
  d.message("count", 4);
  d.message("generate");
  const tag = d.tagOf(d.lastOsc("/tad/generate"));
  d.message("/tad/fail", "/tad/generate", "busy", "kick", tag);
  assert.equal(d.status(), "new kick failed: busy");
  assert.match(d.errors.join(""), /new kick failed: busy/);
  // A late success for the failed request is not loaded.
  d.message("/tad/done", "/tad/generate", "/tmp/late.wav", "kick", 1, 12, "dpmpp-2m", 0, tag);
  assert.equal(d.sent(BUFFER).length, 0);
});

test("daemon gone: status says so, requests are not sent, and it recovers when the daemon is back", () => {
  const d = connect(loadDevice());
  for (let i = 0; i < 3; i++) d.tick();
  assert.match(d.status(), /not reachable on 127\.0\.0\.1:9310.*tad-daemon serve/);

  // While unreachable the device re-registers on every tick (a restarted daemon forgot it).
  let mark = d.out.length;
  d.tick();
  d.tick();
  assert.equal(d.osc("/tad/notify", mark).length, 2);

  mark = d.out.length;
  d.message("generate");
  assert.equal(d.osc("/tad/generate", mark).length, 0);
  assert.match(d.status(), /not reachable.*not sent/);

  // The daemon restarts: its first reply brings the device back and refreshes the model list.
  mark = d.out.length;
  d.tick();
  d.done("/tad/ping");
  assert.equal(d.status(), "daemon is back");
  assert.equal(d.osc("/tad/models", mark).length, 1);
  d.message("generate");
  assert.equal(d.osc("/tad/generate", mark).length, 1);
});

test("a request the restarted daemon never got times out with a clear message", () => {
  const d = connect(loadDevice());
  d.message("generate");
  for (let i = 0; i < 4; i++) d.tick(); // daemon killed: silence
  assert.match(d.status(), /not reachable/);
  d.done("/tad/ping"); // a new daemon answers
  for (let i = 0; i < 6; i++) {
    d.tick();
    d.done("/tad/ping");
  }
  assert.match(d.status(), /new kick \(sent before the daemon went away\): no answer/);
});

test("a request that gets no answer at all times out", () => {
  const d = connect(loadDevice());
  d.message("generate");
  for (let i = 0; i < 40; i++) {
    d.tick();
    d.done("/tad/ping"); // the daemon is alive but never answers the generate
  }
  assert.match(d.status(), /new kick: no answer from the daemon \(0 of 1 arrived\)/);
});

test("registration is renewed once a minute while the daemon answers", () => {
  const d = connect(loadDevice());
  const mark = d.out.length;
  for (let i = 0; i < 30; i++) {
    d.tick();
    d.done("/tad/ping");
  }
  assert.equal(d.osc("/tad/notify", mark).length, 1);
});

test("a dropped file is varied with the chosen model, strength and count", () => {
  const d = connect(loadDevice());
  d.message("modelindex", 1);
  d.message("strength", 0.3);
  d.message("count", 2);
  d.message("drop", "/Users/me/Samples/My Snare 01.wav");
  const req = d.lastOsc("/tad/vary");
  assert.deepEqual(req.slice(0, 6), ["/tad/vary", "snare", "/Users/me/Samples/My Snare 01.wav", 0.3, 2, -1]);
  const tag = d.tagOf(req);
  d.message("/tad/done", "/tad/vary", "/out/a.wav", "snare", 7, 0.3, "/Users/me/Samples/My Snare 01.wav", tag);
  assert.deepEqual(d.sent(BUFFER).slice(-1)[0], ["replace", "/out/a.wav"]);
  assert.match(d.status(), /vary My Snare 01\.wav: a\.wav \(1 more coming\)/);
  // "vary again" re-sends the last dropped file.
  d.message("vary");
  assert.equal(d.osc("/tad/vary").length, 2);
});

test("a dropped folder queues a fine-tune from the chosen model", () => {
  const d = connect(loadDevice());
  d.message("trainnow", 1);
  d.message("folder", "/Users/me/My Kicks!/");
  const req = d.lastOsc("/tad/train");
  assert.deepEqual(req.slice(0, 6), ["/tad/train", "My-Kicks", "/Users/me/My Kicks!", "kick", 0, 1]);
  d.done("/tad/train", "job-7", "My-Kicks", "queued");
  assert.equal(d.status(), "fine-tune My-Kicks queued (job job-7, queued)");
  d.message("/tad/progress", "job-7", "My-Kicks", 120, 400, 0.0412, 3725);
  assert.equal(d.progress(), "fine-tune My-Kicks: 120/400 (30%), loss 0.041, 1h 02m left");
  d.message("/tad/job/state", "job-7", "My-Kicks", "done", "");
  assert.equal(d.progress(), "fine-tune My-Kicks: done");
});

test("changing the reply port moves the registration", () => {
  const d = connect(loadDevice());
  const mark = d.out.length;
  d.message("replyport", 9400);
  assert.deepEqual(d.osc("/tad/notify", mark).map((m) => m.slice(0, 3)), [["/tad/notify", 0, 9311], ["/tad/notify", 1, 9400]]);
  assert.deepEqual(d.sent(RECEIVE).slice(-1)[0], ["port", 9400]);
});

test("removing the device unregisters and stops the heartbeat", () => {
  const d = connect(loadDevice());
  d.message("notifydeleted");
  assert.deepEqual(d.lastOsc("/tad/notify"), ["/tad/notify", 0, 9311]);
  assert.ok(!d.tasks.some((t) => t.running));
});

// ---- Live API: Simpler via replace_sample on Live 12.4+ ------------------------------------------

function liveSet(version) {
  const w = new LiveWorld(version);
  w.add("live_set view", "Song.View", {});
  const own = w.track(0, "TAD");
  const me = w.device(own, "PluginDevice", "TAD Drums");
  w.paths["this_device"] = me;
  const drums = w.track(1, "Drums");
  const simplerTrack = w.track(2, "Snare");
  const simpler = w.device(simplerTrack, "OriginalSimpler", "Snare");
  return {w, own, me, drums, simplerTrack, simpler};
}

function replaceCalls(w) {
  return w.calls.filter((c) => c.fn === "replace_sample");
}

test("Live 12.4: the result also goes into the Simpler on the last selected track", () => {
  const s = liveSet([12, 4, 0]);
  const d = connect(loadDevice({world: s.w}));
  s.w.selectTrack(s.own); // clicking the device selects its own track: nothing to follow yet
  assert.match(d.target(), /select a track with a Simpler/);
  s.w.selectTrack(s.simplerTrack);
  s.w.selectTrack(s.own);
  assert.equal(d.target(), "results also go to Simpler \"Snare\"");
  d.message("generate");
  d.done("/tad/generate", "/out/new snare.wav", "kick", 1, 12, "dpmpp-2m", 0);
  assert.deepEqual(replaceCalls(s.w), [{id: s.simpler, fn: "replace_sample", args: ["/out/new snare.wav"]}]);
  assert.deepEqual(d.sent(BUFFER).slice(-1)[0], ["replace", "/out/new snare.wav"]);
});

test("Live 12.4: 'loaded' only when the Simpler holds the file; a multisample Simpler is left alone", () => {
  const s = liveSet([12, 4, 0]);
  const d = connect(loadDevice({world: s.w}));
  s.w.selectTrack(s.simplerTrack);
  d.message("generate");
  d.done("/tad/generate", "/out/a.wav", "kick", 1, 12, "dpmpp-2m", 0);
  assert.equal(d.target(), "loaded into Simpler \"Snare\"");
  s.w.objects[s.simpler].props.ignores_files = true; // Live refused it (a file it cannot read, say)
  d.message("generate");
  d.done("/tad/generate", "/out/b.wav", "kick", 2, 12, "dpmpp-2m", 0);
  assert.match(d.target(), /^not loaded into Simpler "Snare": Live did not take the file \(its sample is \/out\/a.wav\)/);
  s.w.objects[s.simpler].props.multi_sample_mode = 1;
  const calls = replaceCalls(s.w).length;
  d.message("generate");
  d.done("/tad/generate", "/out/c.wav", "kick", 3, 12, "dpmpp-2m", 0);
  assert.match(d.target(), /multisample mode/);
  assert.equal(replaceCalls(s.w).length, calls, "no replace_sample on a multisample Simpler");
  assert.deepEqual(d.sent(BUFFER).slice(-1)[0], ["replace", "/out/c.wav"]); // it still plays in the device
});

test("a second init (the device re-initialised) keeps one selection observer", () => {
  const s = liveSet([12, 4, 0]);
  const d = connect(loadDevice({world: s.w}));
  d.message("init");
  assert.equal(s.w.observers.length, 1);
  assert.equal(d.tasks.filter((t) => t.running).length, 1);
});

test("Live 12.4: on a Drum Rack the selected pad's Simpler gets it", () => {
  const s = liveSet([12, 4, 1]);
  const kit = s.w.drumRack(s.drums, "Kit", [{name: "C1", devices: ["OriginalSimpler"]},
    {name: "D1", devices: ["OriginalSimpler"]}]);
  s.w.objects[kit.view].props.selected_drum_pad = kit.pads[1];
  const d = connect(loadDevice({world: s.w}));
  s.w.selectTrack(s.drums);
  d.message("generate");
  d.done("/tad/generate", "/out/k.wav", "kick", 1, 12, "dpmpp-2m", 0);
  const padSimpler = s.w.objects[kit.chains[1]].props.devices[0];
  assert.deepEqual(replaceCalls(s.w).map((c) => c.id), [padSimpler]);
  assert.equal(d.target(), "loaded into pad D1 of \"Kit\"");
});

test("Live 12.4: a pad or track with a Drum Sampler is named, with why nothing is loaded there", () => {
  const s = liveSet([12, 4, 1]);
  const kit = s.w.drumRack(s.drums, "Kit", [{name: "C1", devices: ["DrumCell"]}]);
  const d = connect(loadDevice({world: s.w}));
  s.w.selectTrack(s.drums);
  d.message("generate");
  d.done("/tad/generate", "/out/k.wav", "kick", 1, 12, "dpmpp-2m", 0);
  assert.equal(replaceCalls(s.w).length, 0);
  assert.match(d.target(), /^not loaded: pad C1 of "Kit" holds a Drum Sampler.*only Simpler/);
  assert.deepEqual(d.sent(BUFFER).slice(-1)[0], ["replace", "/out/k.wav"]);  // it still plays in TAD Drums
  const lone = s.w.track(3, "Cell");
  s.w.device(lone, "DrumCell", "Drum Sampler");
  s.w.selectTrack(lone);
  assert.match(d.target(), /^results play here; this track holds a Drum Sampler/);
  assert.equal(kit.pads.length, 1);
});

test("Live 12.4: TAD Drums inside a Drum Rack pad loads into the rack's selected pad", () => {
  const w = new LiveWorld([13, 0, 0]);
  w.add("live_set view", "Song.View", {});
  const track = w.track(0, "Drums");
  const kit = w.drumRack(track, "Kit", [{name: "C1", devices: []}, {name: "D1", devices: ["OriginalSimpler"]}]);
  const me = w.device(kit.chains[0], "PluginDevice", "TAD Drums");
  w.paths["this_device"] = me;
  w.objects[kit.view].props.selected_drum_pad = kit.pads[1];
  const d = connect(loadDevice({world: w}));
  d.message("generate");
  d.done("/tad/generate", "/out/k.wav", "kick", 1, 12, "dpmpp-2m", 0);
  assert.deepEqual(replaceCalls(w).map((c) => c.id), [w.objects[kit.chains[1]].props.devices[0]]);

  // The selected pad is TAD Drums' own pad: nothing to replace there.
  w.objects[kit.view].props.selected_drum_pad = kit.pads[0];
  d.message("generate");
  d.done("/tad/generate", "/out/k2.wav", "kick", 1, 12, "dpmpp-2m", 0);
  assert.equal(replaceCalls(w).length, 1);
});

for (const version of [[12, 3, 5], [11, 3, 0]]) {
  test(`Live ${version.join(".")}: only the internal sampler, no replace_sample`, () => {
    const s = liveSet(version);
    const d = connect(loadDevice({world: s.w}));
    s.w.selectTrack(s.simplerTrack);
    d.message("generate");
    d.done("/tad/generate", "/out/k.wav", "kick", 1, 12, "dpmpp-2m", 0);
    assert.deepEqual(d.sent(BUFFER).slice(-1)[0], ["replace", "/out/k.wav"]);
    assert.equal(replaceCalls(s.w).length, 0);
    assert.equal(s.w.observers.length, 0);
    assert.match(d.target(), /Simpler needs 12\.4/);
  });
}

test("the Simpler switch turns replace_sample off", () => {
  const s = liveSet([12, 4, 0]);
  const d = connect(loadDevice({world: s.w}));
  s.w.selectTrack(s.simplerTrack);
  d.message("tosimpler", 0);
  d.message("generate");
  d.done("/tad/generate", "/out/k.wav", "kick", 1, 12, "dpmpp-2m", 0);
  assert.equal(replaceCalls(s.w).length, 0);
});

test("outside Live (no Live API) the device still works", () => {
  const d = connect(loadDevice({world: null}));
  d.message("generate");
  d.done("/tad/generate", "/out/k.wav", "kick", 1, 12, "dpmpp-2m", 0);
  assert.deepEqual(d.sent(BUFFER).slice(-1)[0], ["replace", "/out/k.wav"]);
});

test("'more like this' tweaks the sound playing, with the amount, count and tuning chosen", () => {
  const d = connect(loadDevice());
  d.message("more");
  assert.match(d.status(), /make a new sound first/);
  d.message("drop", "/samples/mine.wav");
  d.done("/tad/vary", "/out/var.wav", "kick", 5, 0.5, "/samples/mine.wav", "");
  d.message("more");
  assert.match(d.status(), /var.wav was not made from a seed/);
  d.message("modelindex", 0);
  d.message("generate");
  d.done("/tad/generate", "/out/kick_s77.wav", "kick", 77, 12, "dpmpp-2m", 0, "");
  d.message("amount", 0.1);
  d.message("count", 2);
  d.message("tuneindex", 10); // off, C0 ... A0
  const mark = d.out.length;
  d.message("more");
  const req = d.lastOsc("/tad/tweak");
  assert.deepEqual(req.slice(0, 6), ["/tad/tweak", "kick", 77, 0.1, 2, "tune=A0"]);
  const tag = d.tagOf(req);
  assert.ok(!req.some((a) => String(a).startsWith("turns="))); // a new sound: its seed alone
  d.message("/tad/done", "/tad/tweak", "/out/t0.wav", "kick", 77, 0.1, 0, "61 Hz -> A0", "78:0.1", tag);
  d.message("/tad/done", "/tad/tweak", "/out/t1.wav", "kick", 77, 0.1, 1, "61 Hz -> A0", "79:0.1", tag);
  assert.deepEqual(d.sent(BUFFER, mark), [["replace", "/out/t0.wav"], ["replace", "/out/t1.wav"]]);
  d.message("historyindex", 3); // the variation again: no seed makes it
  d.message("more");
  assert.match(d.status(), /not made from a seed/);
  d.message("historyindex", 1); // a relative (t1): relatives of it, not of the sound it came from
  d.message("more");
  assert.equal(d.lastOsc("/tad/tweak")[2], 77);
  assert.ok(d.lastOsc("/tad/tweak").includes("turns=79:0.1"));
  assert.match(d.status(), /more like kick 77 \(a relative\)/);
  d.message("generate");
  assert.equal(d.lastOsc("/tad/generate")[5], "tune=A0"); // new sounds are tuned too
  d.message("tuneindex", 0);
  d.message("generate");
  assert.ok(String(d.lastOsc("/tad/generate")[5]).startsWith("tag="));
});

test("two drop zones and the position dial morph between two sounds", () => {
  const d = connect(loadDevice());
  d.message("modelindex", 1);
  d.message("dropa", "/samples/a.wav");
  assert.match(d.status(), /now drop a sound on B/);
  d.message("position", 0.25);
  d.message("dropb", "/samples/b.wav");
  const req = d.lastOsc("/tad/morph");
  assert.deepEqual(req.slice(0, 6), ["/tad/morph", "snare", "/samples/a.wav", "/samples/b.wav", 0.25, 1]);
  d.message("/tad/done", "/tad/morph", "/out/m.wav", "snare", 0.25, "/samples/a.wav", "/samples/b.wav",
            d.tagOf(req));
  assert.deepEqual(d.sent(BUFFER).slice(-1)[0], ["replace", "/out/m.wav"]);
  d.message("position", 0.75); // turning the dial again asks for the new position
  d.message("morph");
  assert.equal(d.lastOsc("/tad/morph")[4], 0.75);
});

test("'new tail' keeps the newest result's attack and remakes the rest", () => {
  const d = connect(loadDevice());
  d.message("newtail");
  assert.match(d.status(), /make or load a sound first/);
  d.message("generate");
  d.done("/tad/generate", "/out/k.wav", "kick", 3, 12, "dpmpp-2m", 0, "");
  d.message("tailfrom", 0.03);
  d.message("newtail");
  const req = d.lastOsc("/tad/repaint");
  assert.deepEqual(req.slice(0, 5), ["/tad/repaint", "kick", "/out/k.wav", 0.03, 32768 / 44100]);
});

test("Live 12.4: a kit fills its General MIDI pads of the Drum Rack, and says which pad has no Simpler", () => {
  const s = liveSet([12, 4, 1]);
  const rack = s.w.drumRack(s.drums, "Kit", [{name: "C1", note: 36, devices: ["OriginalSimpler"]},
    {name: "D1", note: 38, devices: ["OriginalSimpler"]}, {name: "D#1", note: 39, devices: ["OriginalSimpler"]},
    {name: "F#1", note: 42, devices: ["DrumCell"]}, {name: "A1", note: 45, devices: ["OriginalSimpler"]}]);
  const d = connect(loadDevice({world: s.w}), ["snare", "kick", "perc", "hat", "clap", "ride"]);
  s.w.selectTrack(s.drums);
  d.message("kit");
  const req = d.lastOsc("/tad/kit");
  // What a beat needs, those loaded: kick, snare, a closed hat (hat), no open hat, a clap, a tom (perc).
  assert.deepEqual(req.slice(0, 3), ["/tad/kit", "kick,snare,hat,clap,perc", -1]);
  const tag = d.tagOf(req);
  ["kick", "snare", "hat", "clap", "perc"].forEach((m) => {
    d.message("/tad/done", "/tad/kit", `/kits/k/${m}.wav`, m, 5, "", tag);
    if (m === "hat") assert.match(d.target(), /pad F#1 has no Simpler/);
  });
  const simplers = [0, 1, 2, 4].map((i) => s.w.objects[rack.chains[i]].props.devices[0]);
  assert.deepEqual(replaceCalls(s.w).map((c) => [c.id, c.args[0]]),
                   [[simplers[0], "/kits/k/kick.wav"], [simplers[1], "/kits/k/snare.wav"],
                    [simplers[2], "/kits/k/clap.wav"], [simplers[3], "/kits/k/perc.wav"]]);
  assert.deepEqual(d.sent(BUFFER), [["replace", "/kits/k/hat.wav"]]); // the pad it could not fill
  assert.equal(d.sent(HISTORY).filter((m) => m[0] === "append").slice(-5).length, 5);
});

test("outside a Drum Rack a kit plays in the device and fills the results list", () => {
  const d = connect(loadDevice(), ["kick", "hat"]);
  d.message("kit");
  const req = d.lastOsc("/tad/kit");
  assert.equal(req[1], "kick,hat");
  const tag = d.tagOf(req);
  d.message("/tad/done", "/tad/kit", "/kits/k/kick.wav", "kick", 5, "", tag);
  d.message("/tad/done", "/tad/kit", "/kits/k/hat.wav", "hat", 5, "", tag);
  assert.deepEqual(d.sent(BUFFER), [["replace", "/kits/k/kick.wav"], ["replace", "/kits/k/hat.wav"]]);
  const none = connect(loadDevice(), ["ride"]);
  none.message("kit");
  assert.match(none.status(), /no kick, snare, hat, clap or tom/);
});

test("velocity and a blend go with new sounds; a model of one kind offers no blend", () => {
  const kinds = ["kick", "snare", "tom", "clap"];
  const d = connect(loadDevice(), ["kick", "tom", "my-kick"], kinds);
  assert.deepEqual(d.sent(BLEND).slice(-7), [["clear"], ["append", "blend: off"], ["append", "kick"],
    ["append", "snare"], ["append", "tom"], ["append", "clap"], ["set", 0]]);
  d.message("generate");
  assert.deepEqual(d.lastOsc("/tad/generate").slice(0, 5), ["/tad/generate", "kick", 1, -1, 0]);
  assert.equal(d.lastOsc("/tad/generate").length, 6, "a plain full hit sends no options");
  d.message("vel", 0.5);
  d.message("blendindex", 3); // tom
  d.message("blend", 0.3);
  d.message("generate");
  assert.deepEqual(d.lastOsc("/tad/generate").slice(5, 7), ["vel=0.50", "blend=tom:0.30"]);
  d.message("more");
  assert.match(d.status(), /make a new sound first/);
  d.message("kit");
  assert.ok(d.lastOsc("/tad/kit").includes("vel=0.50"));
  const one = connect(loadDevice(), ["kick"]);
  assert.deepEqual(one.sent(BLEND).slice(-3), [["clear"], ["append", "blend: one kind"], ["set", 0]]);
  one.message("blendindex", 1);
  one.message("blend", 0.5);
  one.message("generate");
  assert.equal(one.lastOsc("/tad/generate").length, 6, "no blend for a model of one kind");
});

test("layers: four velocities of the chosen model, the count's round robins, into the results", () => {
  const d = connect(loadDevice(), ["snare"], ["snare", "tom"]);
  d.message("count", 2);
  d.message("layers");
  const req = d.lastOsc("/tad/layers");
  assert.deepEqual(req.slice(0, 5), ["/tad/layers", "snare", 4, 2, -1]);
  const tag = d.tagOf(req);
  let k = 0;
  for (const v of [0.25, 0.5, 0.75, 1.0]) {
    for (const take of [0, 1]) {
      d.message("/tad/done", "/tad/layers", `/layers/set/snare_v${Math.round(127 * v)}_rr${take + 1}.wav`, "snare", 5,
                v, take, "", tag);
      k += 1;
    }
  }
  assert.equal(k, 8);
  assert.deepEqual(d.sent(BUFFER), [["replace", "/layers/set/snare_v127_rr2.wav"]]);
  assert.match(d.status(), /8 files in set/);
  d.message("count", 20);
  d.message("layers");
  assert.equal(d.lastOsc("/tad/layers")[3], 8, "at most 8 round robins");
});

test("the script stays within ES5, which Max 8's [js] runs", () => {
  const code = fs.readFileSync(SCRIPT, "utf8")
    .replace(/\/\/.*$/gm, "")
    .replace(/"(?:[^"\\\n]|\\.)*"/g, '""');
  for (const [what, pattern] of [["let", /\blet\s/], ["const", /\bconst\s/], ["arrow function", /=>/],
    ["template string", /`/], ["class", /\bclass\s/], ["spread", /\.\.\.\w/], ["for...of", /\bof\s/],
    ["includes()", /\.includes\(/], ["startsWith()", /\.startsWith\(/]]) {
    assert.doesNotMatch(code, pattern, `${what} is not ES5`);
  }
});
