// The floor under every scenario: VUS virtual users, started together, each
// send one GET /healthz (no database).  What this costs k6 and the daemon is
// the part of a scenario's latency that is not the database's.
import { intEnv, get, judge, thresholds, summaryTrendStats } from '../lib/common.js';

const VUS = intEnv('VUS');

export const options = {
	scenarios: { probe: { executor: 'per-vu-iterations', vus: VUS, iterations: 1, maxDuration: '5m' } },
	summaryTrendStats,
	thresholds: thresholds({}, ['200']),
};

export default function () {
	judge(get('/healthz', 'healthz'), 'healthz', ['200']);
}
