// A ctid bus client written from docs/protocol.md alone.
// usage: node subscriber.mjs <pub endpoint> <req endpoint> <prefix> <quiet ms>
// Subscribes to <prefix>, takes a snapshot, then prints one JSON line per event with
// seq > snapshot.seq (the Clone pattern), and exits after <quiet ms> without events.
import { Subscriber, Dealer } from "zeromq";
import { encode, decode } from "@msgpack/msgpack";

const [pub, req, prefix, quietMs] = process.argv.slice(2);
const sub = new Subscriber();
sub.connect(pub);
sub.subscribe(prefix);

const dealer = new Dealer();
dealer.connect(req);

// Buffer events while the snapshot is on its way.
const buffered = [];
let snapshot = null;
let quietTimer = null;

function arm() {
  clearTimeout(quietTimer);
  quietTimer = setTimeout(() => {
    sub.close();
    dealer.close();
    process.exit(0);
  }, Number(quietMs));
}

function emit(topic, event) {
  if (event.seq > snapshot.seq && event.epoch === snapshot.epoch) {
    process.stdout.write(JSON.stringify({ topic, event }) + "\n");
  }
}

async function events() {
  for await (const [topic, body] of sub) {
    const event = decode(body);
    const t = topic.toString("utf8");
    if (snapshot === null) buffered.push([t, event]);
    else emit(t, event);
    arm();
  }
}

async function main() {
  const loop = events();
  process.stdout.write(JSON.stringify({ ready: true }) + "\n");
  // Give the subscription a moment to reach the daemon before asking for the snapshot.
  await new Promise((r) => setTimeout(r, 300));
  await dealer.send(encode({ op: "snapshot", id: "node-1" }));
  const [reply] = await dealer.receive();
  const answer = decode(reply);
  if (!answer.ok || answer.id !== "node-1") {
    process.stderr.write("snapshot failed: " + JSON.stringify(answer) + "\n");
    process.exit(2);
  }
  snapshot = answer.result;
  process.stdout.write(JSON.stringify({ snapshot: { seq: snapshot.seq, calls: snapshot.calls.length } }) + "\n");
  for (const [t, e] of buffered) emit(t, e);
  arm();
  await loop;
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack || err) + "\n");
  process.exit(1);
});
