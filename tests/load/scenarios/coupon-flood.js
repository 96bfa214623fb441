// 쿠폰 발급 요청 폭주 — coupon-flood (docs/design.md, "Scenarios" 2).
// USERS distinct users ask at once for a coupon limited to QUANTITY: exactly
// min(USERS, QUANTITY) get 201, the rest 409 COUPON_SOLD_OUT.  Every
// DUP_EVERY-th user sends two identical requests at the same moment (the
// same user's race), and every winner asks once more afterwards, which must
// be answered 409 COUPON_ALREADY_ISSUED.
//
// Concurrency: VUS virtual users share the USERS iterations, so at most VUS
// requests are in flight; the runner sets VUS to what k6 holds here.
import exec from 'k6/execution';
import http from 'k6/http';
import { BASE_URL, authFor, intEnv, judge, flag, post, thresholds, latencyTarget, ackCoupon, summaryTrendStats } from '../lib/common.js';

const USERS = intEnv('USERS');
const FIRST_USER = intEnv('FIRST_USER');
const QUANTITY = intEnv('QUANTITY');
const COUPON = intEnv('COUPON');
const VUS = Math.min(intEnv('VUS', USERS), USERS);
const DUP_EVERY = intEnv('DUP_EVERY', 10);
const P99_MS = intEnv('P99_MS', 250);

export const options = {
	scenarios: {
		flood: { executor: 'shared-iterations', vus: VUS, iterations: USERS, maxDuration: '10m' },
	},
	summaryTrendStats,
	thresholds: thresholds({
		// ours
		...latencyTarget(`p(99)<${P99_MS}`),
		'outcomes{outcome:201}': [`count==${Math.min(USERS, QUANTITY)}`],
	}, ['201', '409 COUPON_SOLD_OUT', '409 COUPON_ALREADY_ISSUED']),
};

const FIRST = ['201', '409 COUPON_SOLD_OUT'];
// of two simultaneous requests of one user, the loser may see either 409
const RACE = ['201', '409 COUPON_SOLD_OUT', '409 COUPON_ALREADY_ISSUED'];

function won(userId, res) {
	const body = res.json();
	if (body.userId !== userId || body.couponId !== COUPON || !body.issuedCouponId) {
		flag('issue', `user ${userId}: 201 with ${res.body}`);
		return;
	}
	ackCoupon(userId, COUPON, body);
}

export default function () {
	const userId = FIRST_USER + exec.scenario.iterationInTest;
	const body = { userId, couponId: COUPON };
	let winners = 0;
	if (userId % DUP_EVERY === 0) {
		const req = {
			method: 'POST', url: `${BASE_URL}/api/coupons/issue`, body: JSON.stringify(body),
			params: {
				headers: Object.assign({ 'Content-Type': 'application/json' }, authFor(userId)),
				tags: { kind: 'issue', name: 'issue' },
			},
		};
		for (const res of http.batch([req, req])) {
			if (judge(res, 'issue', RACE) === '201') {
				winners++;
				won(userId, res);
			}
		}
		if (winners > 1) flag('issue', `user ${userId} was issued the coupon twice`);
	} else {
		const res = post('/api/coupons/issue', body, 'issue');
		if (judge(res, 'issue', FIRST) === '201') {
			winners++;
			won(userId, res);
		}
	}
	if (winners > 0) {
		judge(post('/api/coupons/issue', body, 'issue-again'), 'issue-again', ['409 COUPON_ALREADY_ISSUED']);
	}
}
