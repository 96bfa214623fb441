SELECT bench.floor_wrapped(nextval('bench.uid'));
