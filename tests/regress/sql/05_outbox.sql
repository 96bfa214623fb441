-- The outbox holds one event per change, claimed with a lease and acked once.
\set SHOW_CONTEXT never

SELECT event_type, count(*) FROM commerce.outbox GROUP BY event_type ORDER BY event_type;
SELECT payload FROM commerce.outbox WHERE event_type = 'order_placed' ORDER BY id LIMIT 1;

SELECT count(*) AS claimed FROM commerce.claim_events(5);
-- claimed events are not claimed again while their lease runs
SELECT count(*) AS claimed_again FROM commerce.claim_events(100) WHERE event_id <= 5;
SELECT commerce.ack_events(ARRAY[1, 2, 3]::bigint[]);
SELECT commerce.ack_events(ARRAY[1, 2, 3]::bigint[]);
-- an expired lease makes unacked events claimable again
UPDATE commerce.outbox SET claimed_until = now() - interval '1 second' WHERE acked_at IS NULL;
SELECT array_agg(event_id ORDER BY event_id) FROM commerce.claim_events(3);
SELECT commerce.claim_events(0);
SELECT commerce.claim_events(1, interval '0');

-- In order per aggregate: an event is claimed only with every earlier
-- undelivered event of its aggregate.  Start from a delivered outbox and
-- five events of three aggregates: order 900 (placed, cancelled), order 901
-- (placed, cancelled) and issued coupon 900, another aggregate than order
-- 900 although the id is the same.
SELECT commerce.ack_events(ARRAY(SELECT id FROM commerce.outbox)) > 0 AS all_delivered;
INSERT INTO commerce.outbox (event_type, aggregate_id, payload) VALUES
	('order_placed', 900, '{}'), ('order_placed', 901, '{}'), ('coupon_issued', 900, '{}'),
	('order_cancelled', 900, '{}'), ('order_cancelled', 901, '{}');
CREATE TEMP VIEW events AS
	SELECT id, event_type || ':' || aggregate_id AS event FROM commerce.outbox WHERE acked_at IS NULL;
-- one relay takes order 900's first event ...
SELECT array_agg(event_type || ':' || aggregate_id) AS first_relay FROM commerce.claim_events(1);
-- ... so the next claim holds its cancellation back and takes the rest, in id order
SELECT array_agg(event) AS second_relay, bool_and(event_id > prev) AS in_id_order
FROM (SELECT event_type || ':' || aggregate_id AS event, event_id,
             lag(event_id, 1, 0::bigint) OVER () AS prev
      FROM commerce.claim_events(10)) c;
SELECT count(*) AS while_the_first_is_out FROM commerce.claim_events(10);
-- delivered, it lets the cancellation go
SELECT commerce.ack_events(ARRAY(SELECT id FROM events WHERE event = 'order_placed:900'));
SELECT array_agg(event_type || ':' || aggregate_id) AS after_the_ack FROM commerce.claim_events(10);

-- release_events ends running leases at once (a failed delivery): released
-- events are claimable again without waiting for the lease
SELECT commerce.release_events(ARRAY(SELECT id FROM events WHERE event LIKE '%:901' OR event = 'coupon_issued:900'));
SELECT array_agg(event_type || ':' || aggregate_id) AS reclaimed FROM commerce.claim_events(10);
-- it counts only running leases of undelivered events
SELECT commerce.release_events(ARRAY(SELECT id FROM commerce.outbox WHERE acked_at IS NOT NULL LIMIT 3));
SELECT commerce.release_events(ARRAY[]::bigint[]);
-- an event whose earlier one is still leased stays back even when released
SELECT commerce.release_events(ARRAY(SELECT id FROM events WHERE event = 'order_cancelled:901'));
SELECT count(*) AS behind_a_lease FROM commerce.claim_events(10);
-- an expired lease: the earlier event is free again and both go together
UPDATE commerce.outbox SET claimed_until = now() - interval '1 second'
WHERE id = (SELECT id FROM events WHERE event = 'order_placed:901');
SELECT array_agg(event_type || ':' || aggregate_id) AS after_expiry FROM commerce.claim_events(10);

-- extend_events: a relay still waiting for Kafka keeps its running leases;
-- an expired lease (another relay may hold the event) is not extended
SELECT commerce.extend_events(ARRAY(SELECT id FROM events WHERE event LIKE '%:901'), interval '1 hour') AS extended;
SELECT bool_and(claimed_until > now() + interval '59 minutes') AS extended_an_hour
FROM commerce.outbox WHERE id IN (SELECT id FROM events WHERE event LIKE '%:901');
UPDATE commerce.outbox SET claimed_until = now() - interval '1 second'
WHERE id = (SELECT id FROM events WHERE event = 'order_placed:901');
SELECT commerce.extend_events(ARRAY(SELECT id FROM events WHERE event LIKE '%:901'), interval '1 hour') AS extended;
SELECT commerce.extend_events(ARRAY[]::bigint[], interval '0');

-- The backlog: how many undelivered and since when; exact up to 10,000
SELECT pending, oldest_pending_at = (SELECT min(created_at) FROM commerce.outbox WHERE acked_at IS NULL) AS oldest,
       pending_exact FROM commerce.outbox_lag();
SELECT commerce.ack_events(ARRAY(SELECT id FROM events));
SELECT * FROM commerce.outbox_lag();
-- beyond 10,000, every id from the next undelivered event to the last
-- counts: exact while delivery goes in id order, an upper bound otherwise
INSERT INTO commerce.outbox (event_type, aggregate_id, payload)
	SELECT 'order_placed', 100000 + g, '{}' FROM generate_series(1, 10050) g;
SELECT pending, pending_exact FROM commerce.outbox_lag();
SELECT commerce.ack_events(ARRAY(SELECT id FROM commerce.outbox WHERE acked_at IS NULL ORDER BY id DESC LIMIT 10));
SELECT commerce.ack_events(ARRAY(SELECT id FROM commerce.outbox WHERE acked_at IS NULL ORDER BY id LIMIT 10 OFFSET 10020));
SELECT pending, pending_exact, (SELECT count(*) FROM commerce.outbox WHERE acked_at IS NULL) AS really
FROM commerce.outbox_lag();
SELECT commerce.ack_events(ARRAY(SELECT id FROM commerce.outbox WHERE acked_at IS NULL ORDER BY id LIMIT 100));
SELECT pending, pending_exact FROM commerce.outbox_lag();
SELECT commerce.ack_events(ARRAY(SELECT id FROM commerce.outbox WHERE acked_at IS NULL)) AS delivered;
SELECT * FROM commerce.outbox_lag();
DROP VIEW events;
