"""disk-full: pg_wal fills up under load.  pg_wal lives on a small tmpfs of
its own; another writer fills that filesystem, and a bulk statement needs a
new WAL segment.  PostgreSQL cannot write WAL: it stops (PANIC), and crash
recovery cannot finish while there is no space.  Writes must fail cleanly
with 503, nothing acknowledged may be lost, and service returns once space
is freed and the server is started again (what the operator does)."""
import asyncio
import os
import shutil
import subprocess

import harness
import system

DESCRIPTION = "pg_wal's filesystem full under load: 503s, nothing acknowledged lost, back with space"

WALFS_MB = 96


def mount_wal_filesystem():
    """Moves pg_wal onto a tmpfs of WALFS_MB (the cluster stopped meanwhile)."""
    walfs = os.path.join(harness.PG_DIR, "walfs")
    harness.pg_stop()
    os.makedirs(walfs, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={WALFS_MB}m,mode=0700", "tmpfs", walfs], check=True)
    shutil.chown(walfs, "postgres", "postgres")
    wal = os.path.join(system.DATA, "pg_wal")
    subprocess.run(["cp", "-a", wal, walfs], check=True)
    shutil.rmtree(wal)
    os.symlink(os.path.join(walfs, "pg_wal"), wal)
    harness.pg_start()
    return walfs


def unmount_wal_filesystem(walfs):
    """Puts pg_wal back on the data directory's disk (cluster stopped)."""
    wal = os.path.join(system.DATA, "pg_wal")
    harness.pg_stop()
    os.unlink(wal)
    subprocess.run(["cp", "-a", os.path.join(walfs, "pg_wal"), system.DATA], check=True)
    subprocess.run(["umount", walfs], check=True)
    harness.pg_start()


def fill(walfs, leave_mb):
    """Another writer takes the filesystem's space but leave_mb."""
    st = os.statvfs(walfs)
    free = st.f_bavail * st.f_frsize
    size = max(0, free - leave_mb * 1024 * 1024)
    path = os.path.join(walfs, "ballast")
    with open(path, "wb") as f:
        f.write(b"\0" * size)
    return path


def postgres_running():
    try:
        return os.path.exists(f"/proc/{system.postmaster_pid()}")
    except (OSError, ValueError):
        return False


def run(ctx):
    ctx.fresh_shop()
    walfs = mount_wal_filesystem()
    try:
        ctx.start_daemon()
        marks = {}

        async def fault(load):
            await asyncio.sleep(1.5)
            ballast = fill(walfs, leave_mb=4)
            marks["filled"] = load.now()
            # a bulk statement that needs more WAL than is left
            bulk = await asyncio.create_subprocess_exec(
                "psql", "-XAtq", "-c", "CREATE TABLE public.bulk AS SELECT g, repeat('x', 200) AS pad"
                " FROM generate_series(1, 1000000) g", env=harness.pg_env(),
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
            marks["bulk_error"] = (await bulk.communicate())[1].decode().strip()[:200]
            # until the server gives up (PANIC, then a failed recovery)
            for _ in range(100):
                if not postgres_running():
                    break
                await asyncio.sleep(0.1)
            marks["down"] = load.now()
            marks["server_stopped"] = not postgres_running()
            await asyncio.sleep(2.0)
            os.unlink(ballast)
            marks["freed"] = load.now()
            if not postgres_running():
                await ctx.blocking(system.start_postgres)
            marks["restarted"] = load.now()

        load = ctx.run(ctx.load(rate=200, seconds=8, prefix="disk"), fault)
        back = load.first_success_after(marks["restarted"])
        log = open(os.path.join(harness.PG_DIR, "server.log")).read()
        checks = [
            ("PostgreSQL reported the full disk", "No space left on device" in log,
             "server.log names ENOSPC" if "No space left on device" in log else "no ENOSPC in server.log"),
            ("service is back once space is freed", back is not None,
             f"{back - marks['restarted']:.2f} s after the restart" if back else "never"),
        ]
        rounds = [ctx.round(load, checks, server_stopped=marks["server_stopped"],
                            seconds_full_to_down=round(marks["down"] - marks["filled"], 2),
                            seconds_to_recover=round(back - marks["freed"], 2) if back else None)]
        harness.psql("DROP TABLE IF EXISTS public.bulk")
    finally:
        ctx.stop_daemon()
        if not postgres_running():
            system.start_postgres()
        unmount_wal_filesystem(walfs)
    return rounds
