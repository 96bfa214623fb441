// 이벤트 시간대 집중 트래픽 — event-orders (docs/design.md, "Scenarios" 1).
// USERS users, each holding the event coupon, place one order at the same
// moment (one VU per user, started together), applying the coupon; every
// REPLAY_EVERY-th user then replays the request with the same
// Idempotency-Key and must get the very same order back.
import { intEnv, judge, flag, post, thresholds, latencyTarget, ackOrder, summaryTrendStats } from '../lib/common.js';

const USERS = intEnv('USERS');
const FIRST_USER = intEnv('FIRST_USER');
const COUPON = intEnv('COUPON');
const PRODUCTS = intEnv('PRODUCTS');
const FIRST_PRODUCT = intEnv('FIRST_PRODUCT');
const REPLAY_EVERY = intEnv('REPLAY_EVERY', 10);
const AVG_MS = intEnv('AVG_MS', 50);
const DISCOUNT = 3000;

export const options = {
	scenarios: {
		event: { executor: 'per-vu-iterations', vus: USERS, iterations: 1, maxDuration: '5m' },
	},
	summaryTrendStats,
	thresholds: thresholds({
		// ours
		...latencyTarget(`avg<${AVG_MS}`),
		'outcomes{outcome:201}': [`count==${USERS + Math.floor(USERS / REPLAY_EVERY)}`],
	}, ['201']),
};

function price(productId) {
	return 10000 + (productId - FIRST_PRODUCT + 1) * 1000; // as seeded
}

export default function () {
	const userId = FIRST_USER + __VU - 1;
	const a = FIRST_PRODUCT + (userId % PRODUCTS);
	const b = FIRST_PRODUCT + ((userId * 7 + 3) % PRODUCTS);
	const items = a === b ? [{ productId: a, quantity: 2 }]
		: [{ productId: a, quantity: 1 }, { productId: b, quantity: 1 }];
	const total = a === b ? 2 * price(a) : price(a) + price(b);
	const body = { userId, items, couponId: COUPON };
	const headers = { 'Idempotency-Key': `event-${userId}` };

	const res = post('/api/orders', body, 'order', headers);
	if (judge(res, 'order', ['201']) !== '201') return;
	const o = res.json();
	if (o.status !== 'paid' || o.totalAmount !== total || o.discountAmount !== DISCOUNT
	    || o.paidAmount !== total - DISCOUNT) {
		flag('order', `user ${userId}: expected total ${total} discount ${DISCOUNT}, got ${res.body}`);
	}
	ackOrder(userId, o);

	if (userId % REPLAY_EVERY === 0) {
		const again = post('/api/orders', body, 'order-replay', headers);
		if (judge(again, 'order-replay', ['201']) === '201' && again.json('orderId') !== o.orderId) {
			flag('order-replay', `user ${userId}: replay answered order ${again.json('orderId')}, first was ${o.orderId}`);
		}
	}
}
