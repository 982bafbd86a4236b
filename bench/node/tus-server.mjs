// The @tus/server anchor of the graphattach benchmark: a tus 1.0 server with FileStore on
// 127.0.0.1 only. Usage: node tus-server.mjs PORT DIRECTORY
import http from 'node:http';
import { Server } from '@tus/server';
import { FileStore } from '@tus/file-store';

const [port, directory] = process.argv.slice(2);
if (!port || !directory) {
  console.error('usage: node tus-server.mjs PORT DIRECTORY');
  process.exit(2);
}
const tus = new Server({
  path: '/files',
  relativeLocation: true,
  datastore: new FileStore({ directory }),
});
const server = http.createServer((req, res) => {
  if (req.url === '/health') {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end('ok');
    return;
  }
  tus.handle(req, res);
});
server.keepAliveTimeout = 120000;
// @tus/server 2.4.5 on Node 20 sometimes throws "ReadableStream is already closed" from undici
// after a GET has been answered, outside any request: log it and keep serving instead of dying.
process.on('uncaughtException', (err) => {
  console.error(`uncaught exception (kept serving): ${err && err.stack ? err.stack : err}`);
});
server.listen(Number(port), '127.0.0.1', () => console.log(`tus listening on 127.0.0.1:${port}`));
