# A mixed run at 64 clients (orders of 1-3 items, half with coupons, some with reused idempotency keys; cancels; charges; coupon requests; decrements; restocks) keeps every invariant and never answers outside the error table.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use CommerceInvariants;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $users = 200;
my $products = 20;
my $seconds = $ENV{TAP_MIXED_SECONDS} // 20;

my $node = commerce_node('mixed', 5463);
$node->safe_psql('postgres', qq{
	SELECT commerce.charge_balance(commerce.create_user('mixed-' || g), 1000000)
	FROM generate_series(1, $users) g;
	-- two hot products that run out (and get restocked), the rest plentiful
	SELECT tap.product('hot-' || g, 5000, 40, 16) FROM generate_series(1, 2) g;
	SELECT tap.product('item-' || g, 1000 * g, 100000, 8) FROM generate_series(3, $products) g;
	SELECT commerce.create_coupon('FIX2000', 'fixed', 2000, 1000);
	SELECT commerce.create_coupon('PCT10', 'percent', 10, 1000, max_discount => 5000);
	SELECT commerce.create_coupon('MIN30K', 'fixed', 500, 1000, min_order_amount => 30000);
	SELECT commerce.create_coupon('PCT50', 'percent', 50, 1000);
	SELECT commerce.create_coupon('FEW', 'fixed', 1000, 50);
	-- everybody holds the first four; FEW is contested during the run
	SELECT commerce.issue_coupon(u, c) FROM generate_series(1, $users) u, generate_series(1, 4) c;
});
is(sql_value($node, 'SELECT max(id) FROM commerce.users') . '/' .
   sql_value($node, 'SELECT max(id) FROM commerce.products') . '/' .
   sql_value($node, 'SELECT max(id) FROM commerce.coupons'),
	"$users/$products/5", 'fixture ids are 1..n, as the pgbench scripts assume');

$node->pgbench(
	"-n -c 64 -j 2 -T $seconds -D users=$users -D products=$products",
	0,
	[ qr{number of transactions actually processed: [1-9]\d*} ],
	[],
	"pgbench: mixed traffic for $seconds s from 64 clients",
	{
		'003_order@10' => q{
\set uid random(1, :users)
\set n random(1, 3)
\set p1 random(1, :products)
\set p2 random(1, :products)
\set p3 random(1, :products)
\set q random(1, 3)
\set c random(0, 9)
\set k random(-20, 20)
SELECT tap.order_mixed(:uid, :n, :p1, :p2, :p3, :q, :c, :k);
},
		'003_cancel@3' => q{
\set uid random(1, :users)
SELECT tap.cancel_random(:uid);
},
		'003_charge@2' => q{
\set uid random(1, :users)
\set amount random(1000, 100000)
SELECT tap.charge(:uid, :amount);
},
		'003_issue@2' => q{
\set uid random(1, :users)
\set c random(1, 5)
SELECT tap.issue(:uid, :c);
},
		'003_decrement@1' => q{
\set p random(1, :products)
\set q random(1, 2)
SELECT tap.decrement(:p, :q);
},
		'003_restock@1' => q{
\set p random(1, 2)
\set q random(1, 5)
SELECT tap.restock(:p, :q);
},
	});

my %seen = map { split /\|/ } split /\n/, sql_value($node,
	q{SELECT op || ':' || sqlstate, count(*) FROM tap.outcome GROUP BY 1 ORDER BY 1});
note explain \%seen;

# what each operation may answer: success or a row of the error table that fits it
my %allowed = (
	order => [qw(00000 PC402 PC409 PC422 PC424)],
	cancel => [qw(00000)],
	charge => [qw(00000)],
	issue => [qw(00000 PC410 PC411)],
	decrement => [qw(00000 PC409)],
	restock => [qw(00000)],
);
my @unexpected = grep {
	my ($op, $state) = split /:/;
	$state ne '40P01' && !grep { $_ eq $state } @{ $allowed{$op} // [] }
} sort keys %seen;
is_deeply(\@unexpected, [], 'every call succeeded or failed with an expected row of the error table');
my $deadlocks = 0;
$deadlocks += $seen{$_} for grep { /:40P01$/ } keys %seen;
is($deadlocks, 0, 'no call failed with a deadlock');

# the run exercised what it claims to
cmp_ok($seen{'order:00000'} // 0, '>=', 100, 'orders were placed');
cmp_ok($seen{'cancel:00000'} // 0, '>=', 10, 'orders were cancelled');
cmp_ok($seen{'charge:00000'} // 0, '>=', 10, 'wallets were charged');
cmp_ok(sql_value($node, q{SELECT count(*) FROM commerce.orders WHERE issued_coupon_id IS NOT NULL}),
	'>=', 10, 'orders used coupons');
cmp_ok(sql_value($node, q{SELECT count(*) FROM commerce.orders o WHERE (SELECT count(*) FROM commerce.order_items i WHERE i.order_id = o.id) > 1}),
	'>=', 10, 'orders had several items');
cmp_ok(sql_value($node, q{SELECT count(*) FROM commerce.orders WHERE idempotency_key IS NOT NULL}),
	'>=', 10, 'orders carried idempotency keys');
# only coupon 5 (quantity 50) can sell out; issued coupons are never taken back
my $few = sql_value($node, q{SELECT count(*) FROM commerce.issued_coupons WHERE coupon_id = 5});
if ($seen{'issue:PC410'})
{
	is($few, 50, 'COUPON_SOLD_OUT was answered only after all 50 units of the contested coupon were issued');
}
else
{
	cmp_ok($few, '<=', 50, 'the contested coupon was not oversold');
}

check_invariants($node);

$node->stop;
done_testing();
