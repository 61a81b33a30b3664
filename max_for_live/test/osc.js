// OSC 1.0 over UDP as Max's [udpsend] writes it and [udpreceive] reads it, for the tests that run the
// device's script against a real daemon: a list [address, ...args] becomes a message whose integral
// numbers are `i`, other numbers `f` and strings `s`; replies come back as {address, args}.
"use strict";

function pad(n) {
  return (n + 4) & ~3;
}

function str(s) {
  const raw = Buffer.from(String(s), "utf8");
  const out = Buffer.alloc(pad(raw.length));
  raw.copy(out);
  return out;
}

function encode(list) {
  const [address, ...args] = list;
  let tags = ",";
  const parts = [];
  for (const a of args) {
    if (typeof a === "number" && Number.isInteger(a)) {
      tags += "i";
      const b = Buffer.alloc(4);
      b.writeInt32BE(a);
      parts.push(b);
    } else if (typeof a === "number") {
      tags += "f";
      const b = Buffer.alloc(4);
      b.writeFloatBE(a);
      parts.push(b);
    } else {
      tags += "s";
      parts.push(str(a));
    }
  }
  return Buffer.concat([str(address), str(tags), ...parts]);
}

function readString(buf, pos) {
  const end = buf.indexOf(0, pos);
  if (end < 0) throw new Error("unterminated OSC string");
  return [buf.toString("utf8", pos, end), pad(end - pos) + pos];
}

function decode(buf) {
  if (buf.toString("latin1", 0, 8) === "#bundle\0") {
    const out = [];
    let pos = 16;
    while (pos + 4 <= buf.length) {
      const size = buf.readInt32BE(pos);
      out.push(...decode(buf.subarray(pos + 4, pos + 4 + size)));
      pos += 4 + size;
    }
    return out;
  }
  let [address, pos] = readString(buf, 0);
  let tags;
  [tags, pos] = readString(buf, pos);
  const args = [];
  for (const t of tags.slice(1)) {
    if (t === "i") { args.push(buf.readInt32BE(pos)); pos += 4; }
    else if (t === "f") { args.push(buf.readFloatBE(pos)); pos += 4; }
    else if (t === "s") { let s; [s, pos] = readString(buf, pos); args.push(s); }
    else throw new Error(`OSC type ${t} is not one the protocol uses`);
  }
  return [{address, args}];
}

module.exports = {encode, decode};
