// tests/load/lib/common.js — what every scenario shares: the target, how a
// response is judged, and the thresholds of the seed and of ours.
//
// Vocabulary: an "outcome" is a response's status plus, for errors, the
// error code of its body ("201", "409 OUT_OF_STOCK", "network error").  Each
// request names the outcomes that are correct answers for it; anything else
// is "unexpected" and counts as a failure (docs/design.md, "Scenarios": a correct 409 for a
// sold-out item is a success of the system).
import http from 'k6/http';
import { SharedArray } from 'k6/data';
import { Counter, Rate } from 'k6/metrics';

export const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:18100').replace(/\/$/, '');

// http_req_failed then counts only what no request of ours ever expects.
http.setResponseCallback(http.expectedStatuses(200, 201, 409));

const unexpected = new Rate('unexpected');
const outcomes = new Counter('outcomes');
let complaints = 0;

export function intEnv(name, fallback) {
	const v = __ENV[name];
	if (v === undefined || v === '') {
		if (fallback === undefined) throw new Error(`environment variable ${name} is required`);
		return fallback;
	}
	const n = parseInt(v, 10);
	if (!Number.isFinite(n)) throw new Error(`${name}=${v} is not an integer`);
	return n;
}

export function outcomeOf(res) {
	if (res.status === 0) return 'network error';
	if (res.status < 400) return String(res.status);
	let code = '';
	try {
		code = res.json('error.code') || '';
	} catch (e) {
		code = 'non-JSON body';
	}
	return code ? `${res.status} ${code}` : String(res.status);
}

// Records the response's outcome and whether it was one of `allowed`;
// returns the outcome.  `kind` tags the request for per-kind breakdowns.
export function judge(res, kind, allowed) {
	const outcome = outcomeOf(res);
	const ok = allowed.indexOf(outcome) >= 0;
	unexpected.add(!ok, { kind });
	outcomes.add(1, { outcome, kind });
	if (!ok && complaints < 3) {
		complaints++;
		console.warn(`UNEXPECTED ${kind}: ${outcome} ${res.error || ''} ${String(res.body).slice(0, 200)}`);
	}
	return outcome;
}

// A broken promise inside a correct-looking answer (wrong amounts, a replay
// that answers another order) is as unexpected as a 500.
export function flag(kind, what) {
	unexpected.add(true, { kind });
	outcomes.add(1, { outcome: 'wrong answer', kind });
	if (complaints < 10) {
		complaints++;
		console.warn(`WRONG ${kind}: ${what}`);
	}
}

// The bearer token of every user of the scenario (tests/load/run mints them
// with frontend/commerce-token: line i is user TOKENS_FIRST_USER + i), so
// that each request is authenticated as the user it acts for.
const TOKENS = new SharedArray('tokens', () => open(__ENV.TOKENS_FILE).split('\n').filter((t) => t !== ''));
const TOKENS_FIRST_USER = intEnv('TOKENS_FIRST_USER');

export function authFor(userId) {
	const token = TOKENS[userId - TOKENS_FIRST_USER];
	if (token === undefined) throw new Error(`no token for user ${userId}`);
	return { Authorization: `Bearer ${token}` };
}

// a request that acts for nobody in particular (browsing): any user's token
const anyAuth = () => ({ Authorization: `Bearer ${TOKENS[Math.floor(Math.random() * TOKENS.length)]}` });

// body.userId names the user the request acts for, and so its token
export function post(path, body, kind, headers) {
	return http.post(`${BASE_URL}${path}`, JSON.stringify(body), {
		headers: Object.assign({ 'Content-Type': 'application/json' }, authFor(body.userId), headers || {}),
		tags: { kind, name: kind },
	});
}

// userId: the user whose data the path reads; absent, any user
export function get(path, kind, userId) {
	return http.get(`${BASE_URL}${path}`, {
		headers: userId === undefined ? anyAuth() : authFor(userId),
		tags: { kind, name: kind },
	});
}

// The seed's bar for every scenario, ours on top (extra: scenario-specific
// thresholds).  The outcomes listed get a submetric each so that the
// summary shows the status mix.
// Our latency targets (event-orders avg < 50 ms; the bursts and mixed p99 <
// 250 ms) are tighter than the seed's bar.  With STRICT=1 (tests/load/run
// --strict) they are k6 thresholds that fail the run; otherwise the runner
// reports them as met or missed beside the figures, and the exit status rests
// on the seed's bar, the exact counts and the invariants.
export function latencyTarget(expr) {
	return __ENV.STRICT === '1' ? { http_req_duration: [expr] } : {};
}

export function thresholds(extra, listedOutcomes) {
	const t = {
		// seed: average response < 1.5 s, failure rate < 1%; ours: no
		// unexpected answer at all (rate==0)
		http_req_duration: ['avg<1500'],
		http_req_failed: ['rate<0.01'],
		unexpected: ['rate<0.01', 'rate==0'],
	};
	for (const o of listedOutcomes.concat(['network error', 'wrong answer', '503 UNAVAILABLE', '504 TIMEOUT'])) {
		t[`outcomes{outcome:${o}}`] = t[`outcomes{outcome:${o}}`] || ['count>=0'];
	}
	for (const k of Object.keys(extra)) {
		t[k] = (t[k] || []).concat(extra[k]);
	}
	return t;
}

// Orders and coupons the clients were told about, for the invariant
// "every order acknowledged with 2xx exists" (tests/load/run collects
// these lines from k6's console output).
export function ackOrder(userId, body) {
	console.log(`ACK order ${body.orderId} user ${userId} paid ${body.paidAmount}`);
}

export function ackCoupon(userId, couponId, body) {
	console.log(`ACK coupon ${body.issuedCouponId} user ${userId} coupon ${couponId}`);
}

export const summaryTrendStats = ['avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max'];
