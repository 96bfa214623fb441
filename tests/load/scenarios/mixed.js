// mixed — sustained traffic (docs/design.md, "Scenarios" 4, ours): browsing, orders and coupon
// requests at a constant arrival rate of RATE per second for DURATION; the
// capacity figure.  An iteration is one request, drawn by weight.
import { intEnv, judge, flag, get, post, thresholds, latencyTarget, ackOrder, summaryTrendStats } from '../lib/common.js';

const USERS = intEnv('USERS');
const FIRST_USER = intEnv('FIRST_USER');
const COUPON = intEnv('COUPON');
const PRODUCTS = intEnv('PRODUCTS');
const FIRST_PRODUCT = intEnv('FIRST_PRODUCT');
const RATE = intEnv('RATE', 2000);
const DURATION = __ENV.DURATION || '60s';
const P99_MS = intEnv('P99_MS', 250);

export const options = {
	scenarios: {
		mixed: {
			executor: 'constant-arrival-rate', rate: RATE, timeUnit: '1s', duration: DURATION,
			preAllocatedVUs: Math.max(10, Math.ceil(RATE / 5)), maxVUs: Math.max(50, RATE * 2),
		},
	},
	summaryTrendStats,
	thresholds: thresholds({
		// ours: the rate was held, and latency stayed interactive
		...latencyTarget(`p(99)<${P99_MS}`),
		dropped_iterations: ['count==0'],
	}, ['200', '201', '409 COUPON_ALREADY_ISSUED']),
};

const rand = (n) => Math.floor(Math.random() * n);
const anyUser = () => FIRST_USER + rand(USERS);
const anyProduct = () => FIRST_PRODUCT + rand(PRODUCTS);

// weight, action
const MIX = [
	[30, () => judge(get(`/api/products?category=category-${rand(10)}&limit=20`, 'list'), 'list', ['200'])],
	[20, () => judge(get(`/api/products/${anyProduct()}`, 'product'), 'product', ['200'])],
	[5, () => judge(get('/api/products/popular?days=3&limit=5', 'popular'), 'popular', ['200'])],
	[25, order],
	[10, () => judge(post('/api/coupons/issue', { userId: anyUser(), couponId: COUPON }, 'issue'),
		'issue', ['201', '409 COUPON_ALREADY_ISSUED'])],
	[5, () => { const u = anyUser(); judge(get(`/api/users/${u}/balance`, 'balance', u), 'balance', ['200']); }],
	[5, () => { const u = anyUser(); judge(get(`/api/users/${u}/coupons`, 'coupons', u), 'coupons', ['200']); }],
];
const TOTAL = MIX.reduce((s, m) => s + m[0], 0);

function order() {
	const userId = anyUser();
	const n = 1 + rand(3);
	const seen = {};
	const items = [];
	for (let i = 0; i < n; i++) {
		const p = anyProduct();
		if (!seen[p]) {
			seen[p] = true;
			items.push({ productId: p, quantity: 1 + rand(2) });
		}
	}
	const res = post('/api/orders', { userId, items }, 'order',
		{ 'Idempotency-Key': `mixed-${__VU}-${__ITER}-${Date.now()}` });
	if (judge(res, 'order', ['201']) === '201') {
		const o = res.json();
		if (o.status !== 'paid' || o.totalAmount - o.discountAmount !== o.paidAmount) {
			flag('order', `user ${userId}: 201 with ${res.body}`);
		}
		ackOrder(userId, o);
	}
}

export default function () {
	let r = rand(TOTAL);
	for (const [w, action] of MIX) {
		if (r < w) {
			action();
			return;
		}
		r -= w;
	}
}
