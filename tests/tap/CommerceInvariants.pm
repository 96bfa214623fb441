# Shared set-up and checks of the pg_commerce TAP tests.
#
#   commerce_node($name, $port [, preload => 0])
#                                 a started node with pg_commerce, the
#                                 bookkeeping of tests/invariant_input.sql and
#                                 the fixture schema `tap` (fixture.sql) in
#                                 database postgres; pg_commerce is in
#                                 shared_preload_libraries (sold-out hints)
#                                 unless preload => 0
#   check_invariants($node)       one ok() per invariant of docs/design.md
#                                 (tests/invariants.sql, shared with the load
#                                 tests), with the offenders as diag
#   outcomes($node, $op)          { sqlstate => count } of tap.outcome for $op
#   sql_value($node, $sql)        the single value a query returns
package CommerceInvariants;

use strict;
use warnings;

use Exporter 'import';
use File::Basename qw(dirname);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT = qw(commerce_node check_invariants outcomes sql_value);

my $here = dirname(__FILE__);
my $tests = "$here/..";

sub commerce_node
{
	my ($name, $port, %options) = @_;
	my $preload = $options{preload} // 1;
	my $node = PostgreSQL::Test::Cluster->new($name, port => $port);
	$node->init;
	$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pg_commerce'") if $preload;
	# durability is not what these tests are about; concurrency is
	$node->append_conf('postgresql.conf', <<CONF);
max_connections = 100
shared_buffers = 128MB
fsync = off
synchronous_commit = off
full_page_writes = off
log_lock_waits = on
deadlock_timeout = 1s
CONF
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION pg_commerce');
	$node->safe_psql('postgres', "\\i $tests/invariant_input.sql");
	$node->safe_psql('postgres', slurp_file("$here/fixture.sql"));
	return $node;
}

sub check_invariants
{
	my ($node) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $rows = $node->safe_psql('postgres', "\\i $tests/invariants.sql",
		extra_params => [ '-F', "\x1f" ]);
	my $count = 0;
	for my $row (split /\n/, $rows)
	{
		my ($name, $ok, $detail) = split /\x1f/, $row, 3;
		ok($ok eq 't', "invariant: $name") or diag($detail);
		$count++;
	}
	ok($count >= 15, "all $count invariant checks ran");
	return;
}

sub outcomes
{
	my ($node, $op) = @_;
	my %count = map { split /\|/ } split /\n/, $node->safe_psql('postgres',
		"SELECT sqlstate, count(*) FROM tap.outcome WHERE op = '$op' GROUP BY 1 ORDER BY 1");
	return \%count;
}

sub sql_value
{
	my ($node, $sql) = @_;
	return $node->safe_psql('postgres', $sql);
}

1;
