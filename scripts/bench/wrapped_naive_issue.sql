SELECT bench.flood_naive_issue(nextval('bench.uid'), :coupon);
