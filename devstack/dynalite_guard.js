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
