SELECT bench.flood_issue(nextval('bench.uid'), :coupon);
