# 5,000 single-unit orders, 64 at a time, against a product with stock 100 in 16 buckets: exactly 100 succeed, stock ends at 0 and is never negative.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use CommerceInvariants;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $orders = 5_000;
my $stock = 100;
my $price = 1_000;
my $clients = 64;
my $per_client = int(($orders + $clients - 1) / $clients);

my $node = commerce_node('hot_stock', 5462);
$node->safe_psql('postgres', qq{
	INSERT INTO tap.participants
	SELECT g, commerce.create_user('buyer-' || g) FROM generate_series(1, $orders) g;
	SELECT commerce.charge_balance(user_id, 10 * $price) FROM tap.participants;
});
my $product = sql_value($node, "SELECT tap.product('hot', $price, $stock, 16)");

$node->safe_psql('postgres', 'CREATE TABLE tap.stock_seen (total bigint, lowest integer)');

$node->pgbench(
	"-n -c $clients -j 2 -t $per_client -D product=$product",
	0,
	[ qr{number of transactions actually processed: ${\($clients * $per_client)}\b} ],
	[],
	'pgbench: 5,000 single-unit orders from 64 clients',
	{
		# each client also samples the committed stock after its order
		'002_order' => q{SELECT tap.order_next(:product);
INSERT INTO tap.stock_seen SELECT sum(quantity), min(quantity) FROM commerce.stock_buckets WHERE product_id = :product;
},
	});

my $got = outcomes($node, 'order');
note explain $got;
is($got->{'00000'}, $stock, 'exactly 100 orders succeeded');
is(($got->{'00000'} // 0) + ($got->{PC409} // 0), $orders,
	'every other order was answered OUT_OF_STOCK');
is($got->{'40P01'} // 0, 0, 'no order failed with a deadlock');
is(sql_value($node, 'SELECT count(DISTINCT user_id) FROM tap.outcome'), $orders,
	'each of the 5,000 users ordered exactly once');
is(sql_value($node, "SELECT sum(quantity) FROM commerce.stock_buckets WHERE product_id = $product"), 0,
	'stock ends at 0');
is(sql_value($node, "SELECT min(quantity) FROM commerce.stock_buckets WHERE product_id = $product"), 0,
	'no bucket is negative');
is(sql_value($node, q{SELECT count(*) || '/' || count(*) FILTER (WHERE total < 0 OR lowest < 0) FROM tap.stock_seen}),
	$clients * $per_client . '/0', 'the stock sampled during the run was never negative');
is(sql_value($node, "SELECT count(*) || '/' || coalesce(sum(oi.quantity), 0) FROM commerce.order_items oi WHERE oi.product_id = $product"),
	"$stock/$stock", '100 order lines of one unit each');
is(sql_value($node, "SELECT count(*) FROM commerce.users WHERE balance = 9 * $price"), $stock,
	'100 buyers paid once; nobody else was charged');
check_invariants($node);

$node->stop;
done_testing();
