# Sold-out hints (extension/sold_out_hint.c) under a flood: while 32 clients
# order a hot product and ask for a coupon, other transactions give units back
# (cancelled orders, restocks, a DBA raising the coupon's quantity).  Then a
# second wave, with nobody giving back, asks for more than can be left.  If a
# hint ever outlived the units it denied, the second wave would be refused
# while units remain: instead every unit ever available ends up held, exactly
# min(asked, supplied).  Then: hints are gone after a restart and after a
# crash, are per database, and a server without the preload has none and
# answers the same.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use CommerceInvariants;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $users = 6_000;
my $clients = 32;
my $stock = 100;
my $coupon_quantity = 100;
my $price = 1_000;

my $node = commerce_node('sold_out_hint', 5464);
is(sql_value($node, 'SELECT commerce.sold_out_hints_active()'), 't', 'hints are active with the preload');
$node->safe_psql('postgres', qq{
	INSERT INTO tap.participants
	SELECT g, commerce.create_user('buyer-' || g) FROM generate_series(1, $users) g;
	SELECT commerce.charge_balance(user_id, 100 * $price) FROM tap.participants;
	CREATE TABLE tap.raised (units integer NOT NULL);
});
my $product = sql_value($node, "SELECT tap.product('hot', $price, $stock, 16)");
my $coupon = sql_value($node, "SELECT commerce.create_coupon('HOT-COUPON', 'fixed', 100, $coupon_quantity)");

# a random participant cancels one of their paid orders; a DBA raises the
# coupon's quantity by one unit (the total and one bucket, as one change)
my %givers = (
	'004_cancel@3' => qq{\\set n random(1, $users)
SELECT tap.cancel_random(user_id) FROM tap.participants WHERE n = :n;
},
	'004_restock@2' => "SELECT tap.restock($product, 1);\n",
	'004_raise@2' => qq{\\set b random(0, 63)
BEGIN;
UPDATE commerce.coupons SET total_quantity = total_quantity + 1 WHERE id = $coupon;
UPDATE commerce.coupon_buckets SET quantity = quantity + 1 WHERE coupon_id = $coupon AND bucket = :b;
INSERT INTO tap.raised VALUES (1);
COMMIT;
},
);

# wave 1: 32 clients x 80 calls, most of them refused, racing the givers
$node->pgbench(
	"-n -c $clients -j 2 -t 80",
	0,
	[ qr{number of transactions actually processed: ${\($clients * 80)}\b} ],
	[],
	'wave 1: orders and coupon requests racing cancels, restocks and raises',
	{
		'004_order@10' => "SELECT tap.order_next($product);\n",
		'004_issue@10' => "SELECT tap.issue_next($coupon);\n",
		%givers,
	});
my $restocked = sql_value($node, "SELECT count(*) FROM tap.outcome WHERE op = 'restock' AND sqlstate = '00000'");
my $cancelled = sql_value($node, "SELECT count(*) FROM tap.outcome WHERE op = 'cancel' AND sqlstate = '00000'");
my $raised = sql_value($node, 'SELECT count(*) FROM tap.raised');
note "wave 1 gave back: $cancelled cancelled orders, $restocked restocked units, $raised coupon units";
ok($cancelled > 0 && $restocked > 0 && $raised > 0, 'units were given back during the flood');
my $orders_1 = sql_value($node, "SELECT count(*) FROM tap.outcome WHERE op = 'order'");
my $issues_1 = sql_value($node, "SELECT count(*) FROM tap.outcome WHERE op = 'issue'");
ok($orders_1 > $stock && $issues_1 > $coupon_quantity, "wave 1 asked for more than the supply ($orders_1 orders, $issues_1 requests)");

# wave 2: nobody gives back; more requests than anything that can be left
$node->pgbench(
	"-n -c $clients -j 2 -t 30",
	0,
	[ qr{number of transactions actually processed: ${\($clients * 30)}\b} ],
	[],
	'wave 2: orders and coupon requests only',
	{
		'004_order2' => "SELECT tap.order_next($product);\n",
		'004_issue2' => "SELECT tap.issue_next($coupon);\n",
	});

my $supply = $stock + $restocked;
my $held = sql_value($node, "SELECT coalesce(sum(oi.quantity), 0) FROM commerce.order_items oi
	JOIN commerce.orders o ON o.id = oi.order_id WHERE oi.product_id = $product AND o.status = 'paid'");
is($held, $supply, "every unit supplied is held by a paid order: $stock + $restocked restocked (and the $cancelled cancelled ones sold again)");
is(sql_value($node, "SELECT sum(quantity) FROM commerce.stock_buckets WHERE product_id = $product"), 0,
	'no unit is left in stock');
my $orders = outcomes($node, 'order');
note explain $orders;
is(($orders->{'00000'} // 0) - $cancelled, $held, 'orders placed minus those cancelled = units held');
is(($orders->{'00000'} // 0) + ($orders->{PC409} // 0), sql_value($node, "SELECT count(*) FROM tap.outcome WHERE op = 'order'"),
	'every order was placed or refused OUT_OF_STOCK');

my $issued = sql_value($node, "SELECT count(*) FROM commerce.issued_coupons WHERE coupon_id = $coupon");
is($issued, $coupon_quantity + $raised, "every coupon unit is issued: $coupon_quantity + $raised raised");
is(sql_value($node, "SELECT sum(quantity) FROM commerce.coupon_buckets WHERE coupon_id = $coupon"), 0,
	'no coupon unit is left');
my $issues = outcomes($node, 'issue');
note explain $issues;
is($issues->{'00000'} // 0, $issued, 'each successful request holds one coupon');
is(($issues->{'00000'} // 0) + ($issues->{PC410} // 0), sql_value($node, "SELECT count(*) FROM tap.outcome WHERE op = 'issue'"),
	'every coupon request was issued or refused COUPON_SOLD_OUT');
is(sql_value($node, "SELECT string_agg(kind, ',' ORDER BY kind) FROM commerce.sold_out_hints()"), 'coupon,stock',
	'both are hinted sold out at the end (the refusals went through hints)');
check_invariants($node);

# the same answers while hinted: the holder, an unknown user
my $holder = sql_value($node, "SELECT user_id FROM commerce.issued_coupons WHERE coupon_id = $coupon LIMIT 1");
my ($rc, $out, $err) = $node->psql('postgres', "SELECT commerce.issue_coupon($holder, $coupon)");
like($err, qr/coupon already issued/, 'a holder still hears COUPON_ALREADY_ISSUED');
($rc, $out, $err) = $node->psql('postgres', "SELECT commerce.issue_coupon(999999, $coupon)");
like($err, qr/user not found/, 'an unknown user still hears NOT_FOUND');

# per database: another database's tables have hints of their own
$node->safe_psql('postgres', 'CREATE DATABASE other');
$node->safe_psql('other', 'CREATE EXTENSION pg_commerce');
is($node->safe_psql('other', 'SELECT count(*) FROM commerce.sold_out_hints()'), 0,
	'another database starts without hints');

# gone after a restart
$node->restart;
is(sql_value($node, 'SELECT count(*) FROM commerce.sold_out_hints()'), 0, 'no hint after a restart');
($rc, $out, $err) = $node->psql('postgres', "SELECT commerce.decrement_stock($product, 1)");
like($err, qr/out of stock/, 'still out of stock after the restart');
is(sql_value($node, 'SELECT kind FROM commerce.sold_out_hints()'), 'stock', 'the refusal set the hint again');

# gone after a crash: kill -9 a server process, the postmaster reinitialises
# shared memory (the test framework turns restart_after_crash off)
$node->append_conf('postgresql.conf', 'restart_after_crash = on');
$node->reload;
my $victim = sql_value($node, "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'");
kill 'KILL', $victim;
$node->poll_query_until('postgres', "SELECT EXISTS (SELECT FROM pg_stat_activity
	WHERE backend_type = 'checkpointer' AND pid <> $victim)")
  or die 'the server did not come back after the crash';
ok($node->log_contains(qr/checkpointer process \(PID $victim\) was terminated by signal 9/),
	'the server went through crash recovery');
is(sql_value($node, 'SELECT count(*) FROM commerce.sold_out_hints()'), 0, 'no hint after a crash');
is(sql_value($node, "SELECT sum(quantity) FROM commerce.stock_buckets WHERE product_id = $product"), 0,
	'stock unchanged by the crash');
$node->stop;

# without the preload: no hints, the same answers, exact counts
my $plain = commerce_node('no_preload', 5467, preload => 0);
is(sql_value($plain, 'SELECT commerce.sold_out_hints_active()'), 'f', 'no hints without the preload');
$plain->safe_psql('postgres', qq{
	INSERT INTO tap.participants
	SELECT g, commerce.create_user('buyer-' || g) FROM generate_series(1, 500) g;
	SELECT commerce.charge_balance(user_id, 100 * $price) FROM tap.participants;
});
my $plain_product = sql_value($plain, "SELECT tap.product('plain', $price, 50, 8)");
$plain->pgbench("-n -c $clients -j 2 -t 16", 0,
	[ qr{number of transactions actually processed: ${\($clients * 16)}\b} ], [],
	'without the preload: 512 orders for 50 units',
	{ '004_plain_order' => "SELECT tap.order_next($plain_product);\n" });
is(outcomes($plain, 'order')->{'00000'}, 50, 'exactly 50 orders placed');
is(sql_value($plain, 'SELECT count(*) FROM commerce.sold_out_hints()'), 0, 'and no hint kept');
check_invariants($plain);
$plain->stop;

done_testing();
