SELECT commerce.issue_coupon(nextval('bench.uid'), :coupon);
