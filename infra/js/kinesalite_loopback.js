// kinesalite on 127.0.0.1 only: its cli.js listens on every interface, which would let anyone on
// the network put records into the local cloud's streams. Usage: node kinesalite_loopback.js
// <kinesalite package dir> <port>. Streams are ready at once and up to 1000 shards are allowed,
// as the local cloud ran cli.js before.
const path = require("path");
const [kinesalite, port] = process.argv.slice(2);

// GetShardIterator AT_TIMESTAMP: kinesalite never answers when no record of the shard arrived at
// or after the timestamp (its search for the first one waits forever). Kinesis then gives an
// iterator at the shard's end, as LATEST does: the same here, before kinesalite loads the action.
const actionPath = require.resolve(path.join(kinesalite, "actions", "getShardIterator"));
const db = require(path.join(kinesalite, "db"));
const getShardIterator = require(actionPath);
require.cache[actionPath].exports = function atTimestampAnswered(store, data, cb) {
  if (data.ShardIteratorType !== "AT_TIMESTAMP" || data.Timestamp == null) {
    return getShardIterator(store, data, cb);
  }
  let shardIx;
  try {
    shardIx = db.resolveShardId(data.ShardId).shardIx;
  } catch (e) {
    return getShardIterator(store, data, cb);
  }
  let found = false;
  let done = false;
  const answer = () => {
    if (done) return;
    done = true;
    // A future timestamp is refused by kinesalite's own checks, found or not.
    const future = data.Timestamp * 1000 > Date.now();
    getShardIterator(store, found || future ? data : { ...data, ShardIteratorType: "LATEST", Timestamp: undefined }, cb);
  };
  const records = store
    .getStreamDb(data.StreamName)
    .createReadStream({ gt: db.shardIxToHex(shardIx), lt: db.shardIxToHex(shardIx + 1) });
  records.on("data", (item) => {
    if (item.value.ApproximateArrivalTimestamp >= data.Timestamp) {
      found = true;
      records.destroy();
      answer();
    }
  });
  records.on("end", answer);
  records.on("close", answer);
  records.on("error", answer);
};

const server = require(kinesalite)({
  createStreamMs: 0,
  deleteStreamMs: 0,
  updateStreamMs: 0,
  shardLimit: 1000,
});
server.listen(Number(port), "127.0.0.1", () => {
  console.log("Listening at http://127.0.0.1:%s", port);
});
