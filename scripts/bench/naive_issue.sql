SELECT bench.naive_issue(nextval('bench.uid'), :coupon);
