// TAD Drums: the Max for Live side of tad-daemon (OSC protocol v1, docs/osc.md).
//
// Runs in Max's [js] object. Written in ES5 (var, function, no arrows or template strings) because
// Max 8's [js] engine is ES5 and Max 9's [js] keeps that engine ([v8] is a separate object): one file
// for both. The tests run it under Node with stand-ins for outlet, post, Task and LiveAPI.
//
// Patch wiring (TAD Drums.maxpat): every control sends a message into the single inlet
// ("generate", "count 4", "drop <path>", ...), and [udpreceive] sends the daemon's replies in as
// messages whose selector is the OSC address ("/tad/done ..."), which land in anything().

inlets = 1;
outlets = 10;

var OUT_OSC = 0; // -> [udpsend 127.0.0.1 9310]: OSC requests, and "port N"
var OUT_BUFFER = 1; // -> [buffer~]: "replace <path>"
var OUT_STATUS = 2; // -> status [comment]: "set <text>"
var OUT_MODELS = 3; // -> model [umenu]: clear / append / set
var OUT_LABEL = 4; // -> "new" [live.text]: "text new snare"
var OUT_PROGRESS = 5; // -> progress [comment]: "set <text>"
var OUT_RECEIVE = 6; // -> [udpreceive 9311]: "port N"
var OUT_HISTORY = 7; // -> results [umenu]: clear / append / set
var OUT_TARGET = 8; // -> target [comment]: where results also go in Live
var OUT_BLEND = 9; // -> blend [umenu]: clear / append / set (the kinds the chosen model can blend in)

var TICK_MS = 2000; // heartbeat period: one /tad/ping per tick
var SILENT_TICKS_UNREACHABLE = 3; // nothing heard for this many ticks: the daemon is gone
var RENEW_TICKS = 30; // re-register every minute (registrations expire after an hour)
var HISTORY_SIZE = 16;
var SAMPLE_SECONDS = 32768 / 44100; // what the models make
// What a beat needs, each the first loaded of its names, onto its General MIDI pad of a Drum Rack (C1 = 36).
var KIT_PIECES = [["kick"], ["snare"], ["closed-hat", "hat"], ["open-hat"], ["clap"], ["tom", "perc"]];
var PAD_NOTES = {"kick": 36, "rim": 37, "snare": 38, "clap": 39, "closed-hat": 42, "hat": 42, "tom": 45,
                 "perc": 45, "open-hat": 46, "crash": 49, "ride": 51, "tambourine": 54, "cowbell": 56,
                 "hand-drum": 63, "shaker": 70, "wood": 76};
var LAYERS = 4; // velocity layers of "layers"; its round robins are the count (at most 8)
var NOTE_NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"];

// ---- state -------------------------------------------------------------------------------------

var settings = {daemonPort: 9310, replyPort: 9311, count: 1, strength: 0.5, toSimpler: 1, trainNow: 0,
                amount: 0.15, position: 0.5, tune: "", tailFrom: 0.05, velocity: 1, blendKind: "", blendAmount: 0};
var deviceTag = makeDeviceTag(typeof jsarguments !== "undefined" ? jsarguments : []);
var seq = 0;
var pending = {}; // tag -> request waiting for replies
var models = []; // [{name, kind, preset, source, license, kinds}] in the daemon's order
var incomingModels = {}; // tag -> models collected until "/tad/done /tad/models"
var selectedModel = "";
var history = []; // newest first: absolute paths of results
var lastSource = "";
var seeds = {}; // path -> {model, seed, turns} for results a seed makes again (new sounds, relatives, kit pieces)
var playing = ""; // the result in the device's sampler: what "more like this" tweaks
var morphEnds = {a: "", b: ""}; // the two files dropped on the morph zones

var link = {
    reachable: false,
    everHeard: false,
    silentTicks: SILENT_TICKS_UNREACHABLE, // start as "not yet heard"
    ticksSinceNotify: 0,
    ticks: 0,
    registered: false,
    version: "",
    device: ""
};
var heartbeat = null;
var live = {ready: false, version: null, ownTrackId: 0, followed: null, observer: null};

// ---- small helpers -----------------------------------------------------------------------------

function makeDeviceTag(args) {
    // In Max for Live "---" in an object's arguments becomes a number unique to the device instance,
    // so [js tad_drums.js ---tad] gives every TAD Drums its own tag. The random part keeps two copies
    // apart where "---" is not replaced (a plain Max patcher).
    var base = args.length > 1 ? String(args[1]) : "tad";
    base = base.replace(/[^A-Za-z0-9_-]/g, "");
    if (!base) base = "tad";
    return base + "-" + Math.floor(Math.random() * 1679616).toString(36);
}
makeDeviceTag.local = 1;

function nextTag() {
    seq += 1;
    return deviceTag + "." + seq;
}
nextTag.local = 1;

function say(text) {
    outlet(OUT_STATUS, "set", text);
}
say.local = 1;

function progressText(text) {
    outlet(OUT_PROGRESS, "set", text);
}
progressText.local = 1;

function dirname(path) {
    var p = String(path).replace(/[\/\\]+$/, "");
    var i = Math.max(p.lastIndexOf("/"), p.lastIndexOf("\\"));
    return i >= 0 ? p.substring(0, i) : "";
}
dirname.local = 1;

function basename(path) {
    var p = String(path).replace(/[\/\\]+$/, "");
    var i = Math.max(p.lastIndexOf("/"), p.lastIndexOf("\\"));
    return i >= 0 ? p.substring(i + 1) : p;
}
basename.local = 1;

function nativePath(path) {
    // [conformpath slash boot] in the patch already converts Max-style paths to the system's; a trailing
    // slash (dropped folders) is dropped so the daemon sees a plain folder path.
    var p = String(path);
    if (p.length > 1 && /[\/\\]$/.test(p) && !/^[A-Za-z]:[\/\\]$/.test(p)) p = p.replace(/[\/\\]+$/, "");
    return p;
}
nativePath.local = 1;

function modelName(name) {
    // Turn a folder name into a model name the daemon accepts (tad_daemon/names.py).
    var n = String(name).replace(/[^A-Za-z0-9_.-]+/g, "-").replace(/^[^A-Za-z0-9]+/, "");
    n = n.replace(/\.\.+/g, ".").replace(/[.-]+$/, "").substring(0, 64);
    return n || "my-model";
}
modelName.local = 1;

function flatten(args) {
    var out = [];
    for (var i = 0; i < args.length; i++) {
        if (Array.isArray(args[i])) out = out.concat(flatten(args[i]));
        else out.push(args[i]);
    }
    return out;
}
flatten.local = 1;

function formatEta(seconds) {
    var s = Math.max(0, Math.round(Number(seconds) || 0));
    var h = Math.floor(s / 3600);
    var m = Math.floor((s % 3600) / 60);
    if (h > 0) return h + "h " + (m < 10 ? "0" : "") + m + "m";
    if (m > 0) return m + "m " + (s % 60 < 10 ? "0" : "") + (s % 60) + "s";
    return s + "s";
}
formatEta.local = 1;

// ---- sending -----------------------------------------------------------------------------------

function send(address, args) {
    outlet(OUT_OSC, [address].concat(args || []));
}
send.local = 1;

// A request whose replies we wait for. kind: generate, vary, models, status, train, notify, ping.
function request(kind, address, args, expected, label) {
    var tag = nextTag();
    pending[tag] = {kind: kind, address: address, expected: expected, got: 0, label: label,
                    ticksLeft: timeoutTicks(kind, expected), sentAtTick: link.ticks};
    send(address, args.concat(["tag=" + tag]));
    return tag;
}
request.local = 1;

function makesSounds(kind) {
    return kind === "generate" || kind === "vary" || kind === "tweak" || kind === "morph" || kind === "repaint" ||
        kind === "kit" || kind === "layers";
}
makesSounds.local = 1;

function busy(kind) {
    return makesSounds(kind) || kind === "train";
}
busy.local = 1;

function timeoutTicks(kind, expected) {
    // Generation on a laptop CPU takes a second or two per sound, a morph's first encoding ten or so;
    // leave room for a busy queue.
    if (makesSounds(kind)) return 30 + 5 * expected;
    return 10;
}
timeoutTicks.local = 1;

function busyCount() {
    var n = 0;
    for (var tag in pending) if (busy(pending[tag].kind)) n += 1;
    return n;
}
busyCount.local = 1;

function tuneNotes() {
    // The tune menu's items: off, then C0 to B3 (kicks, toms and 808s live there).
    var notes = ["off"];
    for (var octave = 0; octave <= 3; octave++) {
        for (var i = 0; i < NOTE_NAMES.length; i++) notes.push(NOTE_NAMES[i] + octave);
    }
    return notes;
}
tuneNotes.local = 1;

function tuneOption() {
    return settings.tune ? ["tune=" + settings.tune] : [];
}
tuneOption.local = 1;

function hitOptions() {
    // How hard, and which kind is blended in (only what differs from a plain full hit is sent).
    var options = settings.velocity < 1 ? ["vel=" + settings.velocity.toFixed(2)] : [];
    return options.concat(blendOption());
}
hitOptions.local = 1;

function blendOption() {
    var m = selectedEntry();
    if (!settings.blendKind || settings.blendAmount <= 0 || !m || m.kinds.indexOf(settings.blendKind) < 0) return [];
    return ["blend=" + settings.blendKind + ":" + settings.blendAmount.toFixed(2)];
}
blendOption.local = 1;

function selectedEntry() {
    for (var i = 0; i < models.length; i++) if (models[i].name === selectedModel) return models[i];
    return null;
}
selectedEntry.local = 1;

function register() {
    request("notify", "/tad/notify", [1, settings.replyPort], 1, "register");
    link.ticksSinceNotify = 0;
}
register.local = 1;

function requestModels() {
    request("models", "/tad/models", [], 1, "models");
}
requestModels.local = 1;

function requestStatus() {
    request("status", "/tad/status", [], 1, "status");
}
requestStatus.local = 1;

function ready(what) {
    // Requests while the daemon is away would only time out: say why at once instead.
    if (link.reachable) return true;
    say("daemon not reachable on 127.0.0.1:" + settings.daemonPort + ": start it with 'tad-daemon serve' (" +
        what + " not sent)");
    return false;
}
ready.local = 1;

// ---- heartbeat ---------------------------------------------------------------------------------

function tick() {
    link.ticks += 1;
    link.silentTicks += 1;
    link.ticksSinceNotify += 1;
    if (link.reachable && link.silentTicks >= SILENT_TICKS_UNREACHABLE) lostDaemon();
    // Unregistered clients never see replies (they go to [udpsend]'s own port), so while the daemon
    // is silent we register on every tick; once it answers, renewing once a minute is enough.
    if (!link.reachable || link.ticksSinceNotify >= RENEW_TICKS) register();
    request("ping", "/tad/ping", [], 1, "ping");
    expireRequests();
}

function expireRequests() {
    for (var tag in pending) {
        var r = pending[tag];
        r.ticksLeft -= 1;
        if (r.ticksLeft > 0) continue;
        delete pending[tag];
        if (busy(r.kind)) {
            say(r.label + ": no answer from the daemon (" + r.got + " of " + r.expected + " arrived)");
            error("TAD Drums: " + r.label + " timed out\n");
        }
    }
}
expireRequests.local = 1;

function heard() {
    link.silentTicks = 0;
    if (!link.reachable) foundDaemon();
}
heard.local = 1;

function foundDaemon() {
    link.reachable = true;
    var restarted = link.everHeard;
    link.everHeard = true;
    // A restarted daemon never answers what its predecessor was asked, but a daemon that was only
    // slow still will: keep such requests, with a short timeout that says what probably happened.
    for (var tag in pending) {
        var r = pending[tag];
        if (restarted && busy(r.kind) && r.sentAtTick < link.ticks) {
            r.ticksLeft = Math.min(r.ticksLeft, SILENT_TICKS_UNREACHABLE + 2);
            r.label += " (sent before the daemon went away)";
        }
    }
    say(restarted ? "daemon is back" : "daemon ready");
    requestModels();
    requestStatus();
}
foundDaemon.local = 1;

function lostDaemon() {
    link.reachable = false;
    link.registered = false;
    say("daemon not reachable on 127.0.0.1:" + settings.daemonPort + ": start it with 'tad-daemon serve'");
}
lostDaemon.local = 1;

function start() {
    if (heartbeat) return;
    outlet(OUT_OSC, "port", settings.daemonPort);
    outlet(OUT_RECEIVE, "port", settings.replyPort);
    say("looking for the daemon on 127.0.0.1:" + settings.daemonPort + "...");
    heartbeat = new Task(tick, this);
    heartbeat.interval = TICK_MS;
    heartbeat.repeat();
    tick();
}
start.local = 1;

// ---- messages from the patch -------------------------------------------------------------------

function loadbang() {
    start();
}

function init() {
    // From [live.thisdevice]: the Live API may be used from now on.
    live.ready = true;
    detectLive();
    start();
}

function notifydeleted() {
    // The device is being removed: stop the heartbeat and tell the daemon to stop sending.
    if (heartbeat) heartbeat.cancel();
    heartbeat = null;
    send("/tad/notify", [0, settings.replyPort]);
}

function count(n) {
    settings.count = Math.max(1, Math.min(64, Math.round(n)));
}

function strength(x) {
    settings.strength = Math.max(0, Math.min(1, Number(x)));
}

function tosimpler(on) {
    settings.toSimpler = on ? 1 : 0;
}

function trainnow(on) {
    settings.trainNow = on ? 1 : 0;
}

function daemonport(n) {
    n = Math.round(n);
    if (n < 1 || n > 65535 || n === settings.daemonPort) return;
    settings.daemonPort = n;
    outlet(OUT_OSC, "port", n);
    if (heartbeat) register();
}

function replyport(n) {
    n = Math.round(n);
    if (n < 1 || n > 65535 || n === settings.replyPort) return;
    if (heartbeat) send("/tad/notify", [0, settings.replyPort]);
    settings.replyPort = n;
    outlet(OUT_RECEIVE, "port", n);
    if (heartbeat) register();
}

function modelindex(i) {
    var m = models[Math.round(i)];
    if (!m) return;
    selectedModel = m.name;
    outlet(OUT_LABEL, "text", "new " + m.name);
    showBlends(m);
}

function showBlends(m) {
    // The kinds the chosen model's file makes (a model of several kinds): what its sound can be blended with.
    outlet(OUT_BLEND, "clear");
    outlet(OUT_BLEND, "append", m.kinds.length ? "blend: off" : "blend: one kind");
    var keep = 0;
    for (var i = 0; i < m.kinds.length; i++) {
        outlet(OUT_BLEND, "append", m.kinds[i]);
        if (m.kinds[i] === settings.blendKind) keep = i + 1;
    }
    outlet(OUT_BLEND, "set", keep);
}
showBlends.local = 1;

function blendindex(i) {
    var m = selectedEntry();
    i = Math.round(i);
    settings.blendKind = m && i >= 1 && i <= m.kinds.length ? m.kinds[i - 1] : "";
}

function blend(x) {
    settings.blendAmount = Math.max(0, Math.min(1, Number(x)));
}

function vel(x) {
    settings.velocity = Math.max(0.01, Math.min(1, Number(x)));
}

function generate() {
    if (!selectedModel) {
        say(models.length ? "choose a model first" : "no models yet: is the daemon running?");
        return;
    }
    if (!ready("new " + selectedModel)) return;
    var n = settings.count;
    request("generate", "/tad/generate", [selectedModel, n, -1, 0].concat(tuneOption(), hitOptions()), n,
            "new " + selectedModel);
    say("new " + selectedModel + (n > 1 ? " x" + n : "") + "...");
}

function drop(path) {
    // A file from [live.drop] (Live's browser or an audio clip's file): vary it.
    lastSource = nativePath(path);
    vary();
}

function vary() {
    if (!lastSource) {
        say("drop a sample on the zone to vary it");
        return;
    }
    if (!selectedModel) {
        say("choose a model to vary with");
        return;
    }
    if (!ready("vary")) return;
    var n = settings.count;
    var label = "vary " + basename(lastSource);
    request("vary", "/tad/vary", [selectedModel, lastSource, settings.strength, n, -1].concat(tuneOption(), hitOptions()),
            n, label);
    say(label + " with " + selectedModel + "...");
}

function amount(x) {
    settings.amount = Math.max(0, Math.min(1, Number(x)));
}

function position(x) {
    settings.position = Math.max(0, Math.min(1, Number(x)));
}

function tuneindex(i) {
    var note = tuneNotes()[Math.round(i)];
    settings.tune = note && note !== "off" ? note : "";
}

function more() {
    // "More like this": close relatives of the sound playing (its model and seed, and a relative's turns, so
    // its relatives lie `amount` away from it, not from the sound it came from).
    var made = seeds[playing];
    if (!made) {
        say(playing ? basename(playing) + " was not made from a seed (a variation, morph or dropped file): " +
            "'more like this' needs a new sound" : "make a new sound first: 'more like this' makes its relatives");
        return;
    }
    if (!ready("more like this")) return;
    var n = settings.count;
    var label = "more like " + made.model + " " + made.seed + (made.turns ? " (a relative)" : "");
    var turns = made.turns ? ["turns=" + made.turns] : [];
    request("tweak", "/tad/tweak", [made.model, made.seed, settings.amount, n].concat(tuneOption(), hitOptions(), turns),
            n, label);
    say(label + "...");
}

function dropa(path) {
    morphEnds.a = nativePath(path);
    morphWhenReady();
}

function dropb(path) {
    morphEnds.b = nativePath(path);
    morphWhenReady();
}

function morphWhenReady() {
    if (morphEnds.a && morphEnds.b) morph();
    else say("morph: now drop a sound on " + (morphEnds.a ? "B" : "A"));
}
morphWhenReady.local = 1;

function morph() {
    // One sound between the two dropped ones, at the position dial (0: A, 1: B).
    if (!morphEnds.a || !morphEnds.b) {
        say("drop a sound on each morph zone (A and B) first");
        return;
    }
    if (!selectedModel) {
        say("choose a model to morph with");
        return;
    }
    if (!ready("morph")) return;
    var label = "morph " + Math.round(100 * settings.position) + "% " + basename(morphEnds.a) + " > " +
        basename(morphEnds.b);
    request("morph", "/tad/morph", [selectedModel, morphEnds.a, morphEnds.b, settings.position, 1], 1, label);
    say(label + "...");
}

function newtail() {
    // Keep the newest result's attack (up to tailfrom seconds) and let its model remake the rest.
    var path = history[0];
    if (!path) {
        say("make or load a sound first: 'new tail' remakes the newest one's body and tail");
        return;
    }
    if (!selectedModel) {
        say("choose a model to remake the tail with");
        return;
    }
    if (!ready("new tail")) return;
    var n = settings.count;
    var label = "new tail for " + basename(path);
    request("repaint", "/tad/repaint", [selectedModel, path, settings.tailFrom, SAMPLE_SECONDS, 1.0, n, -1], n, label);
    say(label + "...");
}

function tailfrom(x) {
    settings.tailFrom = Math.max(0, Math.min(0.5, Number(x)));
}

function kitNames() {
    // Each piece of a beat's kit, as the first of its names the daemon has loaded.
    var loaded = {};
    for (var i = 0; i < models.length; i++) loaded[models[i].name] = true;
    var names = [];
    for (var p = 0; p < KIT_PIECES.length; p++) {
        for (var k = 0; k < KIT_PIECES[p].length; k++) {
            if (loaded[KIT_PIECES[p][k]]) {
                names.push(KIT_PIECES[p][k]);
                break;
            }
        }
    }
    return names;
}
kitNames.local = 1;

function kit() {
    // What a beat needs (kick, snare, closed and open hat, clap, tom: those loaded) that belong together,
    // loudness matched by the daemon: onto their General MIDI pads of the Drum Rack (Live 12.4+), else into
    // the sampler and the results list.
    var names = kitNames();
    if (!names.length) {
        say("no kick, snare, hat, clap or tom model is loaded: a kit needs them");
        return;
    }
    if (!ready("kit")) return;
    var vel = settings.velocity < 1 ? ["vel=" + settings.velocity.toFixed(2)] : [];
    request("kit", "/tad/kit", [names.join(","), -1].concat(tuneOption(), vel), names.length, "kit");
    say("kit of " + names.join(", ") + "...");
}

function layers() {
    // The chosen model's drum as a sampler instrument: LAYERS velocities soft to hard, `count` round robins
    // each (at most 8), in one folder the browser shows; the hardest first take plays here.
    if (!selectedModel) {
        say("choose a model first");
        return;
    }
    if (!ready("layers")) return;
    var takes = Math.min(8, settings.count);
    var label = "layers of " + selectedModel;
    request("layers", "/tad/layers", [selectedModel, LAYERS, takes, -1].concat(tuneOption(), blendOption()),
            LAYERS * takes, label);
    say(label + " (" + LAYERS + " velocities x " + takes + ")...");
}

function folder(path) {
    // A folder from the fine-tune [dropfile]: queue a fine-tune of the chosen model on it.
    var dir = nativePath(path);
    var name = modelName(basename(dir));
    if (!ready("fine-tune " + name)) return;
    request("train", "/tad/train", [name, dir, selectedModel, 0, settings.trainNow], 1, "fine-tune " + name);
    say("queueing fine-tune " + name + (selectedModel ? " from " + selectedModel : "") + "...");
}

function historyindex(i) {
    var path = history[Math.round(i)];
    if (path) load(path);
}

function refresh() {
    if (!ready("refresh")) return;
    requestModels();
    requestStatus();
}

// ---- replies from the daemon ------------------------------------------------------------------

function anything() {
    var address = messagename;
    var args = arrayfromargs(arguments);
    if (String(address).indexOf("/tad/") !== 0) {
        post("TAD Drums: unknown message " + address + "\n");
        return;
    }
    heard();
    if (address === "/tad/done" || address === "/tad/fail" || address === "/tad/model" || address === "/tad/job") {
        reply(address, args);
    } else {
        broadcast(address, args);
    }
}

function reply(address, args) {
    // The tag is the last argument of every reply to a tagged request; replies to other clients
    // (or to other TAD Drums devices) arrive here too once registered, and are ignored.
    var tag = args.length ? String(args[args.length - 1]) : "";
    var r = pending[tag];
    if (!r) return;
    var body = args.slice(0, args.length - 1);
    if (address === "/tad/model") {
        if (!incomingModels[tag]) incomingModels[tag] = [];
        incomingModels[tag].push({index: body[0], name: String(body[2]), kind: String(body[3]),
                                  preset: String(body[4]), source: String(body[5]), license: String(body[6]),
                                  kinds: body.length > 8 && String(body[8]) ? String(body[8]).split(",") : []});
        return;
    }
    if (address === "/tad/job") return;
    if (address === "/tad/fail") {
        delete pending[tag];
        delete incomingModels[tag];
        failed(r, String(body[1]));
        return;
    }
    var command = String(body[0]);
    r.got += 1;
    if (r.got >= r.expected) delete pending[tag];
    if (command === "/tad/generate" || command === "/tad/tweak" || command === "/tad/kit") {
        seeds[String(body[1])] = {model: String(body[2]), seed: Number(body[3]),
                                  turns: command === "/tad/tweak" && body.length > 7 ? String(body[7]) : ""};
    }
    if (command === "/tad/kit") {
        var where = toPad(PAD_NOTES[String(body[2])], String(body[1]));
        if (!where) play(String(body[1])); // never over the Simpler's sound: a kit's pads
        remember(String(body[1]));
        say("kit: " + body[2] + (where ? " on " + where : "") +
            (r.expected - r.got > 0 ? " (" + (r.expected - r.got) + " more coming)" : ""));
    } else if (command === "/tad/layers") {
        remember(String(body[1]));
        if (r.got >= r.expected) {
            play(String(body[1])); // the hardest hit's last take
            say(r.label + ": " + r.expected + " files in " + basename(dirname(String(body[1]))) +
                " (the browser shows the folder; names say velocity and take)");
        }
    } else if (makesSounds(r.kind)) {
        load(String(body[1]));
        var remaining = r.expected - r.got;
        say(r.label + ": " + basename(body[1]) + (remaining > 0 ? " (" + remaining + " more coming)" : ""));
    } else if (command === "/tad/models") {
        setModels(incomingModels[tag] || []);
        delete incomingModels[tag];
    } else if (command === "/tad/status") {
        link.version = String(body[1]);
        link.device = String(body[2]);
        if (!busyCount()) say("daemon " + link.version + " on " + link.device + ", " + body[3] + " model(s)");
        if (body.length >= 9 && typeof body[7] === "string" && body[7] !== "") {
            progressText("running: " + body[7] + " " + Math.round(Number(body[8]) * 100) + "%");
        }
    } else if (command === "/tad/notify") {
        link.registered = true;
    } else if (command === "/tad/train") {
        say("fine-tune " + body[2] + " queued (job " + body[1] + ", " + body[3] + ")");
    }
}
reply.local = 1;

function failed(r, message) {
    if (r.kind === "ping" || r.kind === "status") return;
    say(r.label + " failed: " + message);
    error("TAD Drums: " + r.label + " failed: " + message + "\n");
}
failed.local = 1;

function broadcast(address, args) {
    if (address === "/tad/progress") {
        // s:job_id s:name i:step i:total f:loss f:eta_seconds
        var pct = args[3] > 0 ? Math.floor(100 * args[2] / args[3]) : 0;
        progressText("fine-tune " + args[1] + ": " + args[2] + "/" + args[3] + " (" + pct + "%), loss " +
                     Number(args[4]).toFixed(3) + ", " + formatEta(args[5]) + " left");
    } else if (address === "/tad/job/state") {
        progressText("fine-tune " + args[1] + ": " + args[2] + (String(args[3]) ? " (" + args[3] + ")" : ""));
    } else if (address === "/tad/model/added" || address === "/tad/model/removed") {
        requestModels();
    }
}
broadcast.local = 1;

function setModels(list) {
    list.sort(function (a, b) { return a.index - b.index; });
    models = list;
    outlet(OUT_MODELS, "clear");
    var keep = -1;
    for (var i = 0; i < models.length; i++) {
        outlet(OUT_MODELS, "append", models[i].name);
        if (models[i].name === selectedModel) keep = i;
    }
    if (keep < 0 && models.length) keep = 0;
    if (keep >= 0) {
        outlet(OUT_MODELS, "set", keep);
        modelindex(keep);
    } else {
        selectedModel = "";
        outlet(OUT_LABEL, "text", "new");
    }
}
setModels.local = 1;

// ---- results: the device's own sampler, and Simpler on Live 12.4+ ------------------------------

function play(path) {
    outlet(OUT_BUFFER, "replace", path);
    playing = path;
}
play.local = 1;

function load(path) {
    play(path);
    remember(path);
    if (settings.toSimpler && live.ready) toSimpler(path);
}
load.local = 1;

function remember(path) {
    var i = history.indexOf(path);
    if (i >= 0) history.splice(i, 1);
    history.unshift(path);
    if (history.length > HISTORY_SIZE) history.length = HISTORY_SIZE;
    outlet(OUT_HISTORY, "clear");
    for (var k = 0; k < history.length; k++) outlet(OUT_HISTORY, "append", basename(history[k]));
    outlet(OUT_HISTORY, "set", history.indexOf(path));
}
remember.local = 1;

function first(value) {
    return Array.isArray(value) ? value[0] : value;
}
first.local = 1;

function idOf(value) {
    // LiveAPI.get of a child gives ["id", 7]; lists give ["id", 7, "id", 9].
    var a = Array.isArray(value) ? value : [value];
    return a.length >= 2 && a[0] === "id" ? Number(a[1]) : 0;
}
idOf.local = 1;

function idsOf(value) {
    var a = Array.isArray(value) ? value : [];
    var ids = [];
    for (var i = 0; i + 1 < a.length; i += 2) if (a[i] === "id" && Number(a[i + 1])) ids.push(Number(a[i + 1]));
    return ids;
}
idsOf.local = 1;

function api(idOrPath) {
    var a = new LiveAPI(typeof idOrPath === "number" ? "id " + idOrPath : idOrPath);
    return Number(a.id) ? a : null;
}
api.local = 1;

function detectLive() {
    try {
        var app = api("live_app");
        live.version = {major: Number(first(app.call("get_major_version"))),
                        minor: Number(first(app.call("get_minor_version"))),
                        bugfix: Number(first(app.call("get_bugfix_version")))};
    } catch (e) {
        live.version = null;
    }
    if (!canReplaceSample()) {
        outlet(OUT_TARGET, "set", "results play here" +
               (live.version ? " (Live " + live.version.major + "." + live.version.minor + ": Simpler needs 12.4)" : ""));
        return;
    }
    live.ownTrackId = ownTrackId();
    if (!live.observer) {
        try {
            live.observer = new LiveAPI(selectedTrackChanged, "live_set view");
            live.observer.property = "selected_track";
        } catch (e2) {
            live.observer = null;
        }
    }
    showTarget();
}

function canReplaceSample() {
    var v = live.version;
    return !!v && (v.major > 12 || (v.major === 12 && v.minor >= 4));
}
canReplaceSample.local = 1;

function ownTrackId() {
    var a = api("this_device");
    for (var depth = 0; a && depth < 12; depth++) {
        if (a.type === "Track") return Number(a.id);
        a = api(idOf(a.get("canonical_parent")));
    }
    return 0;
}
ownTrackId.local = 1;

function selectedTrackChanged() {
    // Observer callback: ["selected_track", "id", N]. Reading is allowed here, changing the set is not.
    var args = flatten(arrayfromargs(arguments));
    var i = args.indexOf("id");
    var trackId = i >= 0 ? Number(args[i + 1]) : 0;
    if (!trackId || trackId === live.ownTrackId) return;
    var device = samplerDeviceOn(trackId);
    if (device) {
        live.followed = device;
        showTarget();
    }
}

function classOf(a) {
    return String(first(a.get("class_name")));
}
classOf.local = 1;

function nameOf(a) {
    return String(first(a.get("name")));
}
nameOf.local = 1;

function samplerDeviceOn(containerId) {
    // The first Simpler or Drum Rack in a track's or chain's devices.
    var c = api(containerId);
    if (!c) return 0;
    var ids = idsOf(c.get("devices"));
    for (var i = 0; i < ids.length; i++) {
        var d = api(ids[i]);
        if (!d) continue;
        var cls = classOf(d);
        if (cls === "OriginalSimpler" || cls === "DrumGroupDevice" || cls === "DrumCell") return ids[i];
    }
    return 0;
}
samplerDeviceOn.local = 1;

// Live's API loads a file into Simpler only (Simpler.replace_sample, Live 12.4+); a Drum Sampler (DrumCell)
// has no such call, so a pad holding one is named with the reason instead of silently skipped.
var DRUM_SAMPLER_WHY = " holds a Drum Sampler, which Live cannot load a file into from a device (only Simpler): " +
    "drag the new file onto it, or use a Simpler there";

function simplerIn(deviceId, ownDeviceId) {
    // A Simpler: itself; a Drum Rack: the Simpler on its selected pad (unless that pad holds us).
    // {id: 0, where} when the target holds a Drum Sampler: `where` then says why nothing is loaded.
    var d = api(deviceId);
    if (!d) return null;
    var cls = classOf(d);
    if (cls === "OriginalSimpler") return {id: deviceId, where: "Simpler \"" + nameOf(d) + "\""};
    if (cls === "DrumCell") return {id: 0, where: "this track" + DRUM_SAMPLER_WHY};
    if (cls !== "DrumGroupDevice") return null;
    var view = api(String(d.unquotedpath) + " view");
    var pad = view ? api(idOf(view.get("selected_drum_pad"))) : null;
    if (!pad) return null;
    var chains = idsOf(pad.get("chains"));
    for (var c = 0; c < chains.length; c++) {
        var chain = api(chains[c]);
        var devices = chain ? idsOf(chain.get("devices")) : [];
        if (devices.indexOf(ownDeviceId) >= 0) return null;
        var drumSampler = false;
        for (var k = 0; k < devices.length; k++) {
            var s = api(devices[k]);
            if (s && classOf(s) === "OriginalSimpler") {
                return {id: devices[k], where: "pad " + nameOf(pad) + " of \"" + nameOf(d) + "\""};
            }
            if (s && classOf(s) === "DrumCell") drumSampler = true;
        }
        if (drumSampler) return {id: 0, where: "pad " + nameOf(pad) + " of \"" + nameOf(d) + "\"" + DRUM_SAMPLER_WHY};
    }
    return null;
}
simplerIn.local = 1;

function findSimpler() {
    // 1. TAD Drums inside a Drum Rack pad: the rack's selected pad. 2. The Simpler or Drum Rack on the
    // last other track the user selected (clicking TAD Drums selects its own track, so we follow).
    var me = api("this_device");
    var myId = me ? Number(me.id) : 0;
    var parent = me ? api(idOf(me.get("canonical_parent"))) : null;
    if (parent && parent.type !== "Track") {
        var rack = api(idOf(parent.get("canonical_parent")));
        if (rack) {
            var inRack = simplerIn(Number(rack.id), myId);
            if (inRack) return inRack;
        }
    }
    if (live.followed) return simplerIn(live.followed, myId);
    return null;
}
findSimpler.local = 1;

function showTarget() {
    var t = canReplaceSample() ? findSimpler() : null;
    outlet(OUT_TARGET, "set", t ? (t.id ? "results also go to " : "results play here; ") + t.where :
           "results play here; select a track with a Simpler or Drum Rack to load them there too");
}
showTarget.local = 1;

function kitRack() {
    // The Drum Rack a kit fills: the one TAD Drums sits in, else the one on the last selected track.
    var me = api("this_device");
    var parent = me ? api(idOf(me.get("canonical_parent"))) : null;
    var rack = parent && parent.type !== "Track" ? api(idOf(parent.get("canonical_parent"))) : null;
    if (rack && classOf(rack) === "DrumGroupDevice") return rack;
    var followed = live.followed ? api(live.followed) : null;
    return followed && classOf(followed) === "DrumGroupDevice" ? followed : null;
}
kitRack.local = 1;

function toPad(note, path) {
    // A kit's sound into the Simpler on the Drum Rack's pad `note`: a description of where, or "".
    if (!settings.toSimpler || !live.ready || !canReplaceSample()) return "";
    var rack = kitRack();
    var pad = rack && note ? api(String(rack.unquotedpath) + " drum_pads " + note) : null;
    if (!pad) return "";
    var chains = idsOf(pad.get("chains"));
    for (var c = 0; c < chains.length; c++) {
        var chain = api(chains[c]);
        var devices = chain ? idsOf(chain.get("devices")) : [];
        for (var k = 0; k < devices.length; k++) {
            var s = api(devices[k]);
            if (s && classOf(s) === "OriginalSimpler") {
                var problem = loadInto(s, path);
                if (!problem) return "pad " + nameOf(pad);
                outlet(OUT_TARGET, "set", "pad " + nameOf(pad) + ": " + problem);
                return "";
            }
        }
    }
    outlet(OUT_TARGET, "set", "pad " + nameOf(pad) + " has no Simpler: the kit's " + basename(path) +
           " is in the results list");
    return "";
}
toPad.local = 1;

function toSimpler(path) {
    if (!canReplaceSample()) return;
    var t = findSimpler();
    if (!t) return;
    if (!t.id) {  // a Drum Sampler: say why it was not loaded there
        outlet(OUT_TARGET, "set", "not loaded: " + t.where);
        return;
    }
    var problem = loadInto(api(t.id), path);
    outlet(OUT_TARGET, "set", problem ? "not loaded into " + t.where + ": " + problem : "loaded into " + t.where);
}
toSimpler.local = 1;

function samePath(a, b) {
    return String(a).replace(/\\/g, "/") === String(b).replace(/\\/g, "/");
}
samePath.local = 1;

function loadInto(simpler, path) {
    // Simpler.replace_sample, then a look at what the Simpler holds: "" when it holds the file now, else why
    // not. A Simpler in multisample mode is left alone (replace_sample would replace its whole map).
    if (Number(first(simpler.get("multi_sample_mode")))) return "it is in multisample mode (left as it is)";
    try {
        simpler.call("replace_sample", path);
    } catch (e) {
        return String(e);
    }
    var sample = api(String(simpler.unquotedpath) + " sample");
    var now = sample ? String(first(sample.get("file_path")) || "") : "";
    return samePath(now, path) ? "" : "Live did not take the file (its sample is " + (now || "none") + ")";
}
loadInto.local = 1;
