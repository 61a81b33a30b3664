// Stand-ins for the parts of Max's [js] environment that tad_drums.js uses: outlet, post, error,
// messagename, arrayfromargs, jsarguments, Task and LiveAPI. The script runs in a vm context exactly as
// written; the test drives it the way Max would (messages into the inlet, Task ticks).
"use strict";

const fs = require("node:fs");
const path = require("node:path");
const vm = require("node:vm");

const SCRIPT = path.join(__dirname, "..", "tad_drums.js");

// A tiny Live set: objects by id, each with a type (LOM class), canonical path, properties and children.
class LiveWorld {
  constructor(version) {
    this.objects = {};
    this.paths = {};
    this.calls = [];
    this.observers = [];
    this.nextId = 1;
    this.add("live_app", "Application", {}, {version: version || [12, 4, 0]});
  }

  add(pathName, type, props, extra) {
    const id = this.nextId++;
    const obj = Object.assign({id, path: pathName, type, props: props || {}}, extra || {});
    this.objects[id] = obj;
    this.paths[pathName] = id;
    return id;
  }

  resolve(spec) {
    const s = String(spec).trim();
    const m = /^id (\d+)$/.exec(s);
    if (m) return this.objects[Number(m[1])] ? Number(m[1]) : 0;
    return this.paths[s] || 0;
  }

  // Convenience builders. Returns ids.
  track(index, name) {
    return this.add(`live_set tracks ${index}`, "Track", {name, devices: []});
  }

  device(parentId, className, name) {
    const parent = this.objects[parentId];
    const index = parent.props.devices.length;
    const type = className === "OriginalSimpler" ? "SimplerDevice" :
      className === "DrumGroupDevice" ? "RackDevice" : "Device";
    const id = this.add(`${parent.path} devices ${index}`, type,
      {class_name: className, name, canonical_parent: parentId});
    parent.props.devices.push(id);
    if (className === "OriginalSimpler") {  // its sample: replace_sample puts the file there
      this.objects[id].props.multi_sample_mode = 0;
      this.objects[id].sample = this.add(`${parent.path} devices ${index} sample`, "Sample", {file_path: ""});
    }
    return id;
  }

  drumRack(trackId, name, pads) {
    // pads: [{name, note, devices: [className...]}] (note: C1 = 36 up by default); returns
    // {rack, pads: [padId], chains: [chainId]}
    const rack = this.device(trackId, "DrumGroupDevice", name);
    const rackPath = this.objects[rack].path;
    const view = this.add(`${rackPath} view`, "RackDevice.View", {selected_drum_pad: 0});
    const out = {rack, view, pads: [], chains: []};
    pads.forEach((p, i) => {
      const pad = this.add(`${rackPath} drum_pads ${p.note || 36 + i}`, "DrumPad", {name: p.name, chains: []});
      const chain = this.add(`${rackPath} chains ${i}`, "DrumChain",
        {name: p.name, devices: [], canonical_parent: rack});
      this.objects[pad].props.chains.push(chain);
      (p.devices || []).forEach((cls) => this.device(chain, cls, p.name));
      out.pads.push(pad);
      out.chains.push(chain);
    });
    this.objects[view].props.selected_drum_pad = out.pads[0];
    return out;
  }

  selectTrack(trackId) {
    this.observers.forEach((o) => {
      if (o.path === "live_set view" && o.property === "selected_track") o.callback(["selected_track", "id", trackId]);
    });
  }
}

function makeLiveAPI(world) {
  return function LiveAPI(a, b) {
    let callback = null;
    let spec = a;
    if (typeof a === "function") {
      callback = a;
      spec = b;
    }
    if (!world) throw new Error("Live API is not available outside Live");
    const id = world.resolve(spec);
    const obj = world.objects[id];
    this.id = String(id);
    this.type = obj ? obj.type : "";
    this.path = obj ? `"${obj.path}"` : "";
    this.unquotedpath = obj ? obj.path : "";
    const list = (ids) => ids.reduce((acc, x) => acc.concat(["id", x]), []);
    this.get = (prop) => {
      if (!obj) return [];
      const v = obj.props[prop];
      if (prop === "devices" || prop === "chains") return list(v || []);
      if (prop === "canonical_parent" || prop === "selected_drum_pad") return ["id", v || 0];
      return v === undefined ? [] : [v];
    };
    this.call = (fn, ...args) => {
      world.calls.push({id, fn, args});
      if (fn === "replace_sample" && obj && obj.sample && !obj.props.ignores_files) {
        world.objects[obj.sample].props.file_path = args[0];
      }
      if (obj && obj.type === "Application") {
        const [major, minor, bugfix] = obj.version;
        if (fn === "get_major_version") return major;
        if (fn === "get_minor_version") return minor;
        if (fn === "get_bugfix_version") return bugfix;
      }
      return 0;
    };
    if (callback) {
      const observer = {path: obj ? obj.path : String(spec), callback, property: ""};
      world.observers.push(observer);
      Object.defineProperty(this, "property", {
        get: () => observer.property,
        set: (p) => { observer.property = p; },
      });
    }
  };
}

// Load tad_drums.js into a fresh context. options: {world, args}
function loadDevice(options) {
  const opts = options || {};
  const out = []; // [outletIndex, ...atoms]
  const posts = [];
  const errors = [];
  const tasks = [];

  function Task(fn, obj) {
    this.fn = fn;
    this.obj = obj;
    this.interval = 500;
    this.running = false;
    this.repeat = () => { this.running = true; };
    this.schedule = () => { this.running = true; };
    this.cancel = () => { this.running = false; };
    tasks.push(this);
  }

  const context = {
    jsarguments: opts.args || ["tad_drums.js", "017tad"],
    outlet: (n, ...atoms) => {
      out.push([n].concat(atoms.length === 1 && Array.isArray(atoms[0]) ? atoms[0] : atoms));
    },
    post: (...a) => posts.push(a.join(" ")),
    error: (...a) => errors.push(a.join(" ")),
    arrayfromargs: (args) => Array.prototype.slice.call(args),
    messagename: "",
    Task,
    LiveAPI: makeLiveAPI(opts.world),
    Math,
    String,
    Number,
  };
  vm.createContext(context);
  vm.runInContext(fs.readFileSync(SCRIPT, "utf8"), context, {filename: SCRIPT});

  const device = {
    context,
    out,
    posts,
    errors,
    tasks,
    world: opts.world,
    // A message into the inlet, dispatched as Max does: a function of that name, else anything().
    message(selector, ...args) {
      context.messagename = selector;
      const fn = context[selector];
      if (typeof fn === "function" && !fn.local) return fn.apply(context, args);
      return context.anything.apply(context, args);
    },
    tick() {
      const task = tasks.find((t) => t.running);
      if (!task) throw new Error("no running Task");
      task.fn.call(task.obj);
    },
    // Everything sent out of an outlet since `since` (an index into out).
    sent(outletIndex, since) {
      return out.slice(since || 0).filter((m) => m[0] === outletIndex).map((m) => m.slice(1));
    },
    osc(address, since) {
      return device.sent(0, since).filter((m) => m[0] === address);
    },
    lastOsc(address) {
      const all = device.osc(address);
      if (!all.length) throw new Error(`no ${address} was sent`);
      return all[all.length - 1];
    },
    tagOf(message) {
      const t = message[message.length - 1];
      if (!String(t).startsWith("tag=")) throw new Error(`untagged request ${message.join(" ")}`);
      return String(t).slice(4);
    },
    lastText(outletIndex) {
      const all = device.sent(outletIndex).filter((m) => m[0] === "set" || m[0] === "text");
      return all.length ? String(all[all.length - 1][1]) : "";
    },
    status() { return device.lastText(2); },
    progress() { return device.lastText(5); },
    target() { return device.lastText(8); },
    // Answer the last request sent to `address` as the daemon would: "/tad/done <address> args... tag".
    done(address, ...args) {
      const tag = device.tagOf(device.lastOsc(address));
      device.message("/tad/done", address, ...args, tag);
      return tag;
    },
  };
  return device;
}

// Bring a device to "daemon ready" with the given models, as after a normal start.
function connect(device, modelNames, kinds) {
  // `kinds`: what every model's file makes (a model of several kinds), the /tad/model reply's last field.
  device.message("init");
  device.done("/tad/ping");
  const tag = device.tagOf(device.lastOsc("/tad/models"));
  const names = modelNames || ["kick", "snare", "hat", "perc"];
  names.forEach((name, i) => {
    device.message("/tad/model", i, names.length, name, name, "cpu-small", "bundled", "CC0", "onnx fp32",
                   (kinds || []).join(","), tag);
  });
  device.message("/tad/done", "/tad/models", names.length, tag);
  return device;
}

module.exports = {LiveWorld, loadDevice, connect, SCRIPT};
