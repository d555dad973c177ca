// The API's OpenAPI description (assets/openapi.json) for tests: the
// document is checked with a real OpenAPI 3.1 validator, and answers are
// checked with ajv against the schema the document gives for their path,
// method and status.

import { readFileSync } from 'node:fs';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { Validator } from '@seriousme/openapi-schema-validator';

export const OPENAPI_PATH = new URL('../../assets/openapi.json', import.meta.url).pathname;
export const openapi = JSON.parse(readFileSync(OPENAPI_PATH, 'utf8'));

const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema(openapi, 'openapi');

// { valid, errors } from @seriousme/openapi-schema-validator.
export async function validateDocument(doc = openapi) {
	return new Validator().validate(doc);
}

const pointer = (parts) => '#/' + parts.map((p) => String(p).replace(/~/g, '~0').replace(/\//g, '~1')).join('/');

// The document's path template for a concrete path under /api/v1 ("/things/qa%2Feu/dibs").
export function templateOf(path) {
	const segs = path.split('?')[0].split('/').slice(1);
	for (const t of Object.keys(openapi.paths)) {
		const ts = t.split('/').slice(1);
		if (ts.length === segs.length && ts.every((x, i) => x.startsWith('{') || x === segs[i])) return t;
	}
	return null;
}

const seen = new Set();
export const covered = () => new Set(seen);

// Throws unless json is what the document says (method, path, status) answers.
export function checkAnswer(method, path, status, json) {
	const t = templateOf(path);
	if (!t) throw new Error(`${method} ${path}: not in the OpenAPI description`);
	const op = openapi.paths[t][method.toLowerCase()];
	if (!op) throw new Error(`${method} ${t}: no such operation in the OpenAPI description`);
	let parts = ['paths', t, method.toLowerCase(), 'responses', String(status)];
	let resp = op.responses[String(status)];
	if (!resp) throw new Error(`${method} ${t}: status ${status} is not described`);
	if (resp.$ref) {
		parts = resp.$ref.slice(2).split('/');
		resp = parts.reduce((o, k) => o[k], openapi);
	}
	const validate = ajv.compile({ $ref: `openapi${pointer([...parts, 'content', 'application/json', 'schema'])}` });
	if (!validate(json)) throw new Error(`${method} ${path} ${status}: ${JSON.stringify(json)} does not match: ${ajv.errorsText(validate.errors)}`);
	seen.add(`${method.toUpperCase()} ${t} ${status}`);
	return json;
}
