// Preloaded into dynalite (devstack/services.py). dynalite rethrows a request's 'error' event,
// so a client that dies mid-request (ECONNRESET, "aborted": the fault tests kill a web process
// mid-click) took the whole store down with it. A real DynamoDB drops only that request.
process.on('uncaughtException', (err) => {
  if (err && err.code === 'ECONNRESET') {
    console.error(`dropped a request its client aborted: ${err.message}`);
    return;
  }
  console.error(err);
  process.exit(1);
});

// dynalite turns each Query and Scan into a stream over a LevelDB iterator and, when the stream
// ends, closes the iterator by calling `iterator.return()`; abstract-level 3's iterators have no
// `return` (only `close()`), so no iterator was ever closed. Each one pins its LevelDB version:
// the memory grew by 400 MB a minute under the soak's clicks and the files compaction replaced
// were never deleted. This gives them the `return` dynalite calls, on the copy of abstract-level
// dynalite loads (through level and classic-level).
const { dirname } = require('path');
const from = (name, dir) => dirname(require.resolve(`${name}/package.json`, { paths: [dir] }));
const level = require(from('abstract-level', from('classic-level', from('level', from('dynalite', __dirname)))));
for (const Iterator of [level.AbstractIterator, level.AbstractKeyIterator, level.AbstractValueIterator]) {
  if (typeof Iterator.prototype.return !== 'function') {
    Iterator.prototype.return = async function () {
      await this.close();
      return { done: true, value: undefined };
    };
  }
}

// DYNALITE_MEMORY_LOG_S=N: every N seconds one line with the iterators open and
// process.memoryUsage() (V8's heap apart from LevelDB's native memory).
const every = Number(process.env.DYNALITE_MEMORY_LOG_S || 0);
if (every > 0) {
  const open = new Set();
  const { attachResource, detachResource } = level.AbstractLevel.prototype;
  level.AbstractLevel.prototype.attachResource = function (resource) {
    if (resource instanceof level.AbstractIterator || resource instanceof level.AbstractValueIterator
        || resource instanceof level.AbstractKeyIterator) open.add(resource);
    return attachResource.call(this, resource);
  };
  level.AbstractLevel.prototype.detachResource = function (resource) {
    open.delete(resource);
    return detachResource.call(this, resource);
  };
  setInterval(() => {
    const m = process.memoryUsage();
    const mb = (n) => Math.round(n / 1048576);
    console.error(`iterators open ${open.size}; memory rss ${mb(m.rss)} MB heap ${mb(m.heapUsed)}/${mb(m.heapTotal)} MB `
      + `external ${mb(m.external)} MB`);
  }, every * 1000).unref();
}
