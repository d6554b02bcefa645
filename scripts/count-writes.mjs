// Preload (`node --import ./scripts/count-writes.mjs ...`) that counts the socket writes of a
// process and prints them when it exits: `write` calls (one chunk) and `writev` calls (several
// chunks gathered, e.g. by the hub's per-turn batching) with their mean chunk count. Used by
// scripts/workers-cpu.mjs with WORKERS_CPU_COUNT_WRITES=1; a cluster's workers inherit it.
import cluster from 'node:cluster';
import net from 'node:net';

let writes = 0;
let writevs = 0;
let chunks = 0;
const writev = net.Socket.prototype._writev;
net.Socket.prototype._writev = function (data, callback) {
  writevs++;
  chunks += data.length;
  return writev.call(this, data, callback);
};
const write = net.Socket.prototype._write;
net.Socket.prototype._write = function (data, encoding, callback) {
  writes++;
  return write.call(this, data, encoding, callback);
};
let reported = false;
function report() {
  if (reported) return;
  reported = true;
  const role = cluster.isPrimary ? 'primary or single process' : `worker ${cluster.worker?.id ?? '?'}`;
  const mean = writevs === 0 ? 0 : chunks / writevs;
  process.stderr.write(
    `[${role}, pid ${process.pid}] write ${writes}, writev ${writevs} (${mean.toFixed(1)} chunks each)\n`,
  );
}
process.on('exit', report);
process.on('SIGTERM', report);
