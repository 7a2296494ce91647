// ioredis and node-redis against a running server: connect (each sends CLIENT SETINFO, and
// ioredis waits for INFO as its ready check), XADD, XRANGE, then check that the server saw
// the library names. Usage: node clients.mjs PORT
import Redis from "ioredis";
import { createClient } from "redis";

const port = Number(process.argv[2]);
const deadline = setTimeout(() => {
  console.error("timed out");
  process.exit(2);
}, 20000);

const io = new Redis({ host: "127.0.0.1", port, lazyConnect: true, maxRetriesPerRequest: 1 });
await io.connect();  // resolves once the INFO ready check has passed
const id = await io.xadd("io-stream", "*", "lib", "ioredis");
const entries = await io.xrange("io-stream", "-", "+");
if (entries.length !== 1 || entries[0][0] !== id || entries[0][1][1] !== "ioredis") {
  throw new Error("ioredis XRANGE: " + JSON.stringify(entries));
}

const nr = createClient({ socket: { host: "127.0.0.1", port } });
nr.on("error", (e) => console.error("node-redis:", e.message));
await nr.connect();
const nid = await nr.xAdd("nr-stream", "*", { lib: "node-redis" });
const nentries = await nr.xRange("nr-stream", "-", "+");
if (nentries.length !== 1 || nentries[0].id !== nid || nentries[0].message.lib !== "node-redis") {
  throw new Error("node-redis XRANGE: " + JSON.stringify(nentries));
}

// multi(): MULTI/EXEC, over keys on different shards.
const ioTx = await io.multi().xadd("tx-a", "1-1", "f", "v").xadd("tx-b", "1-1", "f", "v").xlen("tx-a").exec();
if (JSON.stringify(ioTx) !== JSON.stringify([[null, "1-1"], [null, "1-1"], [null, 1]])) {
  throw new Error("ioredis multi: " + JSON.stringify(ioTx));
}
const nrTx = await nr.multi().xAdd("tx-c", "1-1", { f: "v" }).xAdd("tx-d", "1-1", { f: "v" }).xLen("tx-c").exec();
if (JSON.stringify(nrTx) !== JSON.stringify(["1-1", "1-1", 1])) {
  throw new Error("node-redis multi: " + JSON.stringify(nrTx));
}

// Pub/Sub: each library's subscribe API, a message from the other library.
const ioSub = new Redis({ host: "127.0.0.1", port, maxRetriesPerRequest: 1 });
const ioGot = new Promise((resolve) => ioSub.on("message", (channel, message) => resolve([channel, message])));
await ioSub.subscribe("io-news");
if ((await nr.publish("io-news", "from node-redis")) !== 1) throw new Error("node-redis PUBLISH count");
const ioMessage = await ioGot;
if (JSON.stringify(ioMessage) !== JSON.stringify(["io-news", "from node-redis"])) {
  throw new Error("ioredis subscribe: " + JSON.stringify(ioMessage));
}
const nrSub = nr.duplicate();
nrSub.on("error", (e) => console.error("node-redis subscriber:", e.message));
await nrSub.connect();
const nrGot = new Promise((resolve) => nrSub.pSubscribe("nr-*", (message, channel) => resolve([channel, message])));
for (let i = 0; i < 200 && (await io.pubsub("NUMPAT")) !== 1; ++i) await new Promise((r) => setTimeout(r, 10));
if ((await io.publish("nr-events", "from ioredis")) !== 1) throw new Error("ioredis PUBLISH count");
const nrMessage = await nrGot;
if (JSON.stringify(nrMessage) !== JSON.stringify(["nr-events", "from ioredis"])) {
  throw new Error("node-redis pSubscribe: " + JSON.stringify(nrMessage));
}
await nrSub.quit();
ioSub.disconnect();

const list = await io.client("LIST");
for (const lib of ["lib-name=ioredis", "lib-name=node-redis"]) {
  if (!list.includes(lib)) throw new Error("CLIENT LIST lacks " + lib + ":\n" + list);
}
await nr.quit();
await io.quit();
clearTimeout(deadline);
console.log("ioredis and node-redis OK");
