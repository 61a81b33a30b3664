// The device's script against a running daemon, over real UDP: started by
// tests/test_daw_real_daemon.py with TAD_PORT (the daemon), TAD_REPLY_PORTS (two free ports),
// TAD_SAMPLES (its sample folder) and TAD_SOURCE (a drum hit to vary).
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const dgram = require("node:dgram");
const fs = require("node:fs");
const {loadDevice} = require("./max_stub.js");
const osc = require("./osc.js");

const PORT = Number(process.env.TAD_PORT);
const [REPLY_A, REPLY_B] = String(process.env.TAD_REPLY_PORTS).split(" ").map(Number);
const SAMPLES = process.env.TAD_SAMPLES;

// One device wired as in the patch: outlet 0 -> [udpsend 127.0.0.1 PORT] (a socket on a random port),
// [udpreceive REPLY] -> the inlet. The Task ticks every 2 s, as in Max.
async function wire(tagArg, replyPort) {
  const d = loadDevice({args: ["tad_drums.js", tagArg]});
  const sender = dgram.createSocket("udp4");
  const receiver = dgram.createSocket("udp4");
  await new Promise((ok) => receiver.bind(replyPort, "127.0.0.1", ok));
  receiver.on("message", (buf) => {
    for (const m of osc.decode(buf)) d.message(m.address, ...m.args);
  });
  let sent = 0;
  const flush = () => {
    for (; sent < d.out.length; sent++) {
      const m = d.out[sent];
      if (m[0] === 0 && String(m[1]).startsWith("/")) sender.send(osc.encode(m.slice(1)), PORT, "127.0.0.1");
    }
  };
  const pump = setInterval(flush, 20);
  const ticker = setInterval(() => { if (d.tasks.length) d.tick(); }, 2000);
  d.message("daemonport", PORT);
  d.message("replyport", replyPort);
  d.close = () => {
    clearInterval(pump);
    clearInterval(ticker);
    sender.close();
    receiver.close();
  };
  return d;
}

async function until(what, check, seconds, more) {
  const deadline = Date.now() + seconds * 1000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${more ? ": " + more() : ""}`);
    await new Promise((ok) => setTimeout(ok, 50));
  }
}

function isWav(path) {
  const head = fs.readFileSync(path).subarray(0, 12).toString("latin1");
  return head.startsWith("RIFF") && head.endsWith("WAVE");
}

test("TAD Drums with a running daemon: models, new one-shots, a variation, and tags between two devices", async () => {
  const a = await wire("101tad", REPLY_A);
  const b = await wire("102tad", REPLY_B);
  try {
    a.message("init");
    b.message("init");
    const up = (d) => d.context.link.reachable && d.context.link.registered;
    await until("both devices registered", () => up(a) && up(b), 30, () => a.status() + " / " + b.status());
    await until("the model list", () => a.sent(3).filter((m) => m[0] === "append").length >= 4, 30);
    const names = a.sent(3).filter((m) => m[0] === "append").map((m) => m[1]);
    assert.deepEqual(names.slice(0, 4).sort(), ["hat", "kick", "perc", "snare"]);

    a.message("modelindex", names.indexOf("snare"));
    a.message("count", 2);
    const before = b.sent(1).length;
    a.message("generate");
    await until("two new snares", () => a.sent(1).length >= 2, 120,
      () => JSON.stringify({status: a.status(), errors: a.errors, osc: a.sent(0).slice(-6), buf: a.sent(1)}));
    for (const [verb, path] of a.sent(1)) {
      assert.equal(verb, "replace");
      assert.ok(path.startsWith(SAMPLES), path);
      assert.ok(isWav(path), path);
    }
    assert.equal(b.sent(1).length, before, "device B loaded device A's results");

    a.message("strength", 0.3);
    a.message("count", 1);
    a.message("drop", process.env.TAD_SOURCE);
    await until("a variation", () => a.sent(1).length >= 3, 120);
    assert.ok(isWav(a.sent(1)[2][1]));
    assert.doesNotMatch(a.status(), /failed/);
  } finally {
    a.close();
    b.close();
  }
});

test("TAD Drums with a running daemon: more like this, tune, morph, new tail and a kit", async () => {
  const d = await wire("103tad", REPLY_A);
  try {
    d.message("init");
    await until("registered", () => d.context.link.reachable && d.context.link.registered, 30, () => d.status());
    await until("the model list", () => d.sent(3).filter((m) => m[0] === "append").length >= 4, 30);
    const names = d.sent(3).filter((m) => m[0] === "append").map((m) => m[1]);
    d.message("modelindex", names.indexOf("kick"));
    d.message("tuneindex", 22); // off, C0 ... A1
    const loaded = () => d.sent(1).map((m) => m[1]);
    const more = (n, what) => until(what, () => loaded().length >= n, 120,
      () => JSON.stringify({status: d.status(), errors: d.errors, osc: d.sent(0).slice(-4)}));
    d.message("generate");
    await more(1, "a new kick");
    assert.match(fs.readFileSync(loaded()[0]).toString("latin1"), /"note": "A1"/);
    d.message("amount", 0.2);
    d.message("more");
    await more(2, "a close relative");
    assert.match(loaded()[1], /_kick_tweak_s\d+_a0\.20_0\.wav$/);
    d.message("newtail");
    await more(3, "a new tail");
    assert.match(loaded()[2], /_kick_repaint_s/);
    d.message("position", 0.5);
    d.message("dropa", loaded()[0]);
    d.message("dropb", loaded()[1]);
    await more(4, "a morph");
    assert.match(loaded()[3], /_kick_morph_p0\.50/);
    d.message("kit");
    await more(8, "a kit of four");
    assert.deepEqual(loaded().slice(4).map((p) => p.split(/[\\/]/).pop()), ["kick.wav", "snare.wav", "hat.wav", "perc.wav"]);
    for (const path of loaded()) {
      assert.ok(path.startsWith(SAMPLES), path);
      assert.ok(isWav(path), path);
    }
    assert.doesNotMatch(d.status(), /failed/);
  } finally {
    d.close();
  }
});
