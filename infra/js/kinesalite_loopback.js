// kinesalite on 127.0.0.1 only: its cli.js listens on every interface, which would let anyone on
// the network put records into the local cloud's streams. Usage: node kinesalite_loopback.js
// <kinesalite package dir> <port>. Streams are ready at once and up to 1000 shards are allowed,
// as the local cloud ran cli.js before.
const [kinesalite, port] = process.argv.slice(2);
const server = require(kinesalite)({
  createStreamMs: 0,
  deleteStreamMs: 0,
  updateStreamMs: 0,
  shardLimit: 1000,
});
server.listen(Number(port), "127.0.0.1", () => {
  console.log("Listening at http://127.0.0.1:%s", port);
});
