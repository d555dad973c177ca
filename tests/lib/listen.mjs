// An HTTP server on 127.0.0.1 at a free port, for the fake Slack and Stripe:
// it tracks its sockets so close() can cut hung connections at once.
import http from 'node:http';

export const HOST = '127.0.0.1';

export async function listenLocal(handler, sockets) {
	const server = http.createServer(handler);
	server.on('connection', (s) => {
		sockets.add(s);
		s.on('close', () => sockets.delete(s));
	});
	await new Promise((resolve, reject) => {
		server.once('error', reject);
		server.listen(0, HOST, resolve);
	});
	return server;
}
