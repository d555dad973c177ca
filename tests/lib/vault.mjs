// The vault's sealed format (src/vault.h) in node:crypto, so tests can
// store secrets the server opens, and open what the server stored:
//
//   "v1.<keyid>.<base64(nonce || ciphertext || tag)>"
//   AES-256-GCM, 96-bit nonce, 128-bit tag,
//   AAD = "conch-vault-v1\n" + keyid + "\n" + team_id + "\n" + purpose

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

const NONCE = 12;
const TAG = 16;

function aad(keyId, teamId, purpose) {
	return Buffer.from(`conch-vault-v1\n${keyId}\n${teamId}\n${purpose}`, 'utf8');
}

// "ID:BASE64KEY[,ID:BASE64KEY...]" -> Map id -> 32-byte Buffer.
export function parseTokenKeys(text) {
	const keys = new Map();
	for (const part of String(text).split(',')) {
		const m = part.trim().match(/^(\d+):([A-Za-z0-9+/=]+)$/);
		if (!m) throw new Error(`token_keys: malformed entry ${JSON.stringify(part)}`);
		const key = Buffer.from(m[2], 'base64');
		if (key.length !== 32) throw new Error(`token_keys: key ${m[1]} is ${key.length} bytes, not 32`);
		keys.set(Number(m[1]), key);
	}
	return keys;
}

export function makeTokenKeys(ids = [1]) {
	return ids.map((id) => `${id}:${randomBytes(32).toString('base64')}`).join(',');
}

// Seals with the highest key id of tokenKeys (as the server does).
export function seal(tokenKeys, plaintext, teamId, purpose) {
	const keys = parseTokenKeys(tokenKeys);
	const keyId = Math.max(...keys.keys());
	const nonce = randomBytes(NONCE);
	const c = createCipheriv('aes-256-gcm', keys.get(keyId), nonce, { authTagLength: TAG });
	c.setAAD(aad(keyId, teamId, purpose));
	const ct = Buffer.concat([c.update(plaintext, 'utf8'), c.final()]);
	const blob = Buffer.concat([nonce, ct, c.getAuthTag()]);
	return `v1.${keyId}.${blob.toString('base64')}`;
}

// Returns the plaintext, or throws when the value does not open.
export function open(tokenKeys, sealed, teamId, purpose) {
	const m = String(sealed).match(/^v1\.(\d+)\.([A-Za-z0-9+/=]+)$/);
	if (!m) throw new Error('vault: not a sealed value');
	const keyId = Number(m[1]);
	const key = parseTokenKeys(tokenKeys).get(keyId);
	if (!key) throw new Error(`vault: no key ${keyId}`);
	const blob = Buffer.from(m[2], 'base64');
	if (blob.length < NONCE + TAG) throw new Error('vault: too short');
	const d = createDecipheriv('aes-256-gcm', key, blob.subarray(0, NONCE), { authTagLength: TAG });
	d.setAAD(aad(keyId, teamId, purpose));
	d.setAuthTag(blob.subarray(blob.length - TAG));
	return Buffer.concat([d.update(blob.subarray(NONCE, blob.length - TAG)), d.final()]).toString('utf8');
}

export function keyOf(sealed) {
	const m = String(sealed).match(/^v1\.(\d+)\./);
	return m ? Number(m[1]) : -1;
}
