// Last-resort cleanup of what tests started (PostgreSQL clusters, conch
// processes) when a test process exits without stopping them, including on
// SIGINT/SIGTERM (the test runner's cancellation), where Node would
// otherwise skip 'exit' handlers.

const KEY = Symbol.for('conch.tests.cleanup');

function registry() {
	if (!globalThis[KEY]) {
		const fns = new Set();
		globalThis[KEY] = fns;
		const run = () => {
			for (const fn of [...fns]) {
				try {
					fn();
				} catch {}
			}
			fns.clear();
		};
		process.on('exit', run);
		for (const [sig, num] of [['SIGINT', 2], ['SIGTERM', 15], ['SIGHUP', 1]]) {
			process.once(sig, () => {
				run();
				process.exit(128 + num);
			});
		}
	}
	return globalThis[KEY];
}

// Registers a synchronous fn to run at exit; returns a function removing it.
export function onExit(fn) {
	const fns = registry();
	fns.add(fn);
	return () => fns.delete(fn);
}
