# 10,000 distinct users asking once each, 64 at a time, for a coupon of 1,000: exactly 1,000 issued, none twice, every refusal COUPON_SOLD_OUT.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use CommerceInvariants;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $users = 10_000;
my $quantity = 1_000;
my $clients = 64;
my $per_client = int(($users + $clients - 1) / $clients);	# turns past $users do nothing

my $node = commerce_node('coupon_flood', 5461);
$node->safe_psql('postgres', qq{
	INSERT INTO tap.participants
	SELECT g, commerce.create_user('flood-' || g) FROM generate_series(1, $users) g;
});
my $coupon = sql_value($node,
	"SELECT commerce.create_coupon('FLOOD', 'fixed', 1000, $quantity, now() - interval '1 minute')");

$node->pgbench(
	"-n -c $clients -j 2 -t $per_client -D coupon=$coupon",
	0,
	[ qr{number of transactions actually processed: ${\($clients * $per_client)}\b} ],
	[],
	'pgbench: 10,000 coupon requests from 64 clients',
	{ '001_issue' => 'SELECT tap.issue_next(:coupon);' });

my $got = outcomes($node, 'issue');
note explain $got;
is($got->{'00000'}, $quantity, 'exactly 1,000 requests were answered "issued"');
is(($got->{'00000'} // 0) + ($got->{PC410} // 0), $users,
	'every other request was answered COUPON_SOLD_OUT');
is($got->{'40P01'} // 0, 0, 'no request failed with a deadlock');
is(sql_value($node, 'SELECT count(DISTINCT user_id) FROM tap.outcome'), $users,
	'each of the 10,000 users asked exactly once');
is(sql_value($node, "SELECT count(*) || '/' || count(DISTINCT user_id) FROM commerce.issued_coupons WHERE coupon_id = $coupon"),
	"$quantity/$quantity", '1,000 issued coupons, to 1,000 different users');
is(sql_value($node, "SELECT sum(quantity) FROM commerce.coupon_buckets WHERE coupon_id = $coupon"), 0,
	'the coupon buckets sum to 0');
is(sql_value($node, q{SELECT count(*) FROM tap.outcome o WHERE o.sqlstate = '00000'
	AND NOT EXISTS (SELECT FROM commerce.issued_coupons ic WHERE ic.user_id = o.user_id)}), 0,
	'every user told "issued" holds the coupon');
check_invariants($node);

$node->stop;
done_testing();
