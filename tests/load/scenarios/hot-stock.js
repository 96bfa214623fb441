// 인기 상품 재고 실시간 차감 — hot-stock (docs/design.md, "Scenarios" 3).
// USERS users order one unit each of one product with STOCK units, all at
// once: exactly min(USERS, STOCK) get 201, the rest 409 OUT_OF_STOCK.  Uses
// the seed's single-item body {userId, productId, quantity}.
import exec from 'k6/execution';
import { intEnv, judge, flag, post, thresholds, latencyTarget, ackOrder, summaryTrendStats } from '../lib/common.js';

const USERS = intEnv('USERS');
const FIRST_USER = intEnv('FIRST_USER');
const STOCK = intEnv('STOCK');
const PRODUCT = intEnv('PRODUCT');
const VUS = Math.min(intEnv('VUS', USERS), USERS);
const P99_MS = intEnv('P99_MS', 250);
const PRICE = 89000;

export const options = {
	scenarios: {
		rush: { executor: 'shared-iterations', vus: VUS, iterations: USERS, maxDuration: '10m' },
	},
	summaryTrendStats,
	thresholds: thresholds({
		// ours
		...latencyTarget(`p(99)<${P99_MS}`),
		'outcomes{outcome:201}': [`count==${Math.min(USERS, STOCK)}`],
	}, ['201', '409 OUT_OF_STOCK']),
};

export default function () {
	const userId = FIRST_USER + exec.scenario.iterationInTest;
	const res = post('/api/orders', { userId, productId: PRODUCT, quantity: 1 }, 'order');
	if (judge(res, 'order', ['201', '409 OUT_OF_STOCK']) === '201') {
		const o = res.json();
		if (o.status !== 'paid' || o.totalAmount !== PRICE || o.paidAmount !== PRICE || o.discountAmount !== 0) {
			flag('order', `user ${userId}: 201 with ${res.body}`);
		}
		ackOrder(userId, o);
	}
}
