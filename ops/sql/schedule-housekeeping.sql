-- Schedules pg_commerce's maintenance with pg_cron (docs/housekeeping.md):
--
--   pg_commerce-housekeeping@DB     every minute  CALL commerce.run_housekeeping()
--   pg_commerce-refresh-popular@DB  every minute  SELECT * FROM commerce.refresh_popular()
--   pg_commerce-cron-history        daily         these jobs' run history older than a week
--                                                 (pg_cron keeps a row per run: 2,880 a day)
--
-- so that the database does its own maintenance whether or not a relay or
-- any other program runs.  Idempotent: run again, it updates the jobs by
-- name instead of adding more.  Run it as a superuser in the database where
-- pg_cron keeps its jobs (cron.database_name: 'postgres' in
-- scripts/pg-cluster.sh), naming the shop's database when it is another one:
--
--   psql -d postgres -f ops/sql/schedule-housekeeping.sql              # shop in postgres
--   psql -d postgres -v shop=shop -f ops/sql/schedule-housekeeping.sql
--
-- pg_cron must be in shared_preload_libraries (scripts/pg-cluster.sh puts it
-- there, with cron.use_background_workers = on).  The jobs run as the role
-- that runs this script; cron.alter_job(job_id, username => ...) hands
-- them to a login role that is a member of commerce_operator.  Remove them
-- with SELECT cron.unschedule(jobname) for each name above.
\set ON_ERROR_STOP on
\if :{?shop}
\else
\set shop :DBNAME
\endif

DO $$
BEGIN
	IF pg_catalog.current_setting('cron.database_name', true) IS NULL THEN
		RAISE EXCEPTION 'pg_cron is not loaded'
			USING HINT = 'Add pg_cron to shared_preload_libraries and restart the server.';
	END IF;
	IF pg_catalog.current_setting('cron.database_name') <> pg_catalog.current_database() THEN
		RAISE EXCEPTION 'pg_cron keeps its jobs in database %, not %',
			pg_catalog.current_setting('cron.database_name'), pg_catalog.current_database()
			USING HINT = 'Run this script there, with -v shop=DATABASE for the shop''s database.';
	END IF;
END
$$;

-- a shop in this very database must have the extension already (in another
-- one, a missing extension shows as failed runs in cron.job_run_details)
SELECT :'shop' <> pg_catalog.current_database()
       OR EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'pg_commerce') AS shop_ready \gset
\if :shop_ready
\else
DO $$ BEGIN RAISE EXCEPTION 'pg_commerce is not installed in this database: CREATE EXTENSION pg_commerce first'; END $$;
\endif

CREATE EXTENSION IF NOT EXISTS pg_cron;

-- pg_cron's finest schedule is a minute: often enough for a retention of an
-- hour and a ranking that may be 5 minutes old (pg_commerce.popular_max_age)
SELECT cron.schedule_in_database('pg_commerce-housekeeping@' || :'shop', '* * * * *',
	'CALL commerce.run_housekeeping()', :'shop') AS housekeeping_job;
SELECT cron.schedule_in_database('pg_commerce-refresh-popular@' || :'shop', '* * * * *',
	'SELECT * FROM commerce.refresh_popular()', :'shop') AS refresh_popular_job;
SELECT cron.schedule('pg_commerce-cron-history', '17 3 * * *',
	$$DELETE FROM cron.job_run_details
	  WHERE end_time < now() - interval '7 days'
	    AND jobid IN (SELECT jobid FROM cron.job WHERE jobname LIKE 'pg\_commerce-%')$$) AS history_job;
