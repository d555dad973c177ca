// Block Kit's limits, checked on what conch sends: a message has at most 50
// blocks, a view at most 100; a text object at most 3,000 characters (a
// section's text; a context element likewise); a button label at most 75,
// an action_id at most 255, a button value at most 2,000 (conch keeps its
// values under 255); a view's title, submit and close labels at most 24; an
// actions block at most 25 elements; a message's top-level text at most
// 40,000. Returns a list of problems ("" path: the whole thing); [] when fine.

const LIMITS = {
	messageBlocks: 50,
	viewBlocks: 100,
	text: 3000,
	buttonLabel: 75,
	actionId: 255,
	buttonValue: 255,
	viewLabel: 24,
	actionsElements: 25,
	messageText: 40000,
};

function chars(s) {
	return [...String(s)].length;
}

function checkText(obj, path, max, out) {
	if (obj === undefined || obj === null) return;
	if (typeof obj !== 'object' || typeof obj.text !== 'string' || !['mrkdwn', 'plain_text'].includes(obj.type))
		out.push(`${path}: not a text object`);
	else if (obj.text.length === 0) out.push(`${path}: empty text`);
	else if (chars(obj.text) > max) out.push(`${path}: ${chars(obj.text)} characters, over ${max}`);
}

function checkElement(el, path, out) {
	if (el.type === 'button') {
		checkText(el.text, `${path}.text`, LIMITS.buttonLabel, out);
		if (el.text?.type !== 'plain_text') out.push(`${path}.text: a button label is plain_text`);
	}
	if (el.action_id !== undefined && chars(el.action_id) > LIMITS.actionId) out.push(`${path}.action_id: too long`);
	if (el.value !== undefined && chars(el.value) > LIMITS.buttonValue) out.push(`${path}.value: ${chars(el.value)} characters`);
}

function checkBlocks(blocks, max, out) {
	if (!Array.isArray(blocks)) return;
	if (blocks.length > max) out.push(`blocks: ${blocks.length}, over ${max}`);
	blocks.forEach((b, i) => {
		const path = `blocks[${i}]`;
		if (b.type === 'section') {
			checkText(b.text, `${path}.text`, LIMITS.text, out);
			(b.fields || []).forEach((f, j) => checkText(f, `${path}.fields[${j}]`, 2000, out));
			if (b.accessory) checkElement(b.accessory, `${path}.accessory`, out);
		} else if (b.type === 'context') {
			(b.elements || []).forEach((e, j) => e.type !== 'image' && checkText(e, `${path}.elements[${j}]`, LIMITS.text, out));
		} else if (b.type === 'actions') {
			if ((b.elements || []).length > LIMITS.actionsElements) out.push(`${path}: too many elements`);
			(b.elements || []).forEach((e, j) => checkElement(e, `${path}.elements[${j}]`, out));
		} else if (b.type === 'input') {
			checkText(b.label, `${path}.label`, 2000, out);
			if (b.element) checkElement(b.element, `${path}.element`, out);
		} else if (b.type === 'header') {
			checkText(b.text, `${path}.text`, 150, out);
		}
	});
}

function parse(v) {
	if (typeof v !== 'string') return v;
	try {
		return JSON.parse(v);
	} catch {
		return undefined;
	}
}

export function messageProblems(msg) {
	const out = [];
	if (msg.text !== undefined && chars(msg.text) > LIMITS.messageText) out.push('text: over 40,000 characters');
	checkBlocks(parse(msg.blocks), LIMITS.messageBlocks, out);
	return out;
}

export function viewProblems(view) {
	const out = [];
	view = parse(view);
	checkBlocks(view.blocks, LIMITS.viewBlocks, out);
	for (const k of ['title', 'submit', 'close']) checkText(view[k], k, LIMITS.viewLabel, out);
	return out;
}

// Every message and view the fake Slack recorded (chat.postMessage,
// chat.postEphemeral, chat.update, views.publish, views.open) and every
// response_url post: a list of "method: problem".
export function blockKitProblems(slack) {
	const out = [];
	for (const m of ['chat.postMessage', 'chat.postEphemeral', 'chat.update'])
		for (const c of slack.calls(m)) for (const p of messageProblems(c.body || {})) out.push(`${m}: ${p}`);
	for (const m of ['views.publish', 'views.open'])
		for (const c of slack.calls(m)) if (c.body?.view) for (const p of viewProblems(c.body.view)) out.push(`${m}: ${p}`);
	return out;
}
