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
