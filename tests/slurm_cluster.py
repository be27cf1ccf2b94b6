"""A real single-node Slurm cluster on localhost for tests: munge, a private MariaDB,
slurmdbd (accounting, so that submitit sees job states), slurmctld and slurmd, all under one
folder, started and stopped by PID (see shared/notes/slurm-on-localhost.md)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

NEEDED = ("slurmctld", "slurmd", "slurmdbd", "munged", "mariadbd", "mariadb-install-db", "sacctmgr", "srun")


def missing() -> list[str]:
    paths = os.environ.get("PATH", "") + ":/usr/sbin:/usr/bin"
    return [b for b in NEEDED if shutil.which(b, path=paths) is None]


def _wait(check, what: str, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise RuntimeError(f"timed out waiting for {what}")


def _ok(cmd, env) -> bool:
    return subprocess.run(cmd, env=env, capture_output=True, timeout=30).returncode == 0


@contextmanager
def slurm_cluster(base: Path):
    base = Path(base)
    for sub in ("run", "state", "spool", "log", "mysql"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    host = socket.gethostname().split(".")[0]
    cpus = os.cpu_count() or 1
    env = {**os.environ, "SLURM_CONF": str(base / "slurm.conf"), "PATH": os.environ.get("PATH", "") + ":/usr/sbin"}
    procs: list[subprocess.Popen] = []

    def start(cmd, **kw):
        with open(base / "log" / f"{Path(cmd[0]).name}.out", "w") as log:  # the child keeps its own handle
            procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, **kw))
        return procs[-1]

    started_munge = False
    try:
        Path("/run/munge").mkdir(parents=True, exist_ok=True)
        shutil.chown("/run/munge", "munge", "munge")
        if not _ok(["munge", "-n"], env):
            subprocess.run(["runuser", "-u", "munge", "--", "munged"], check=True, env=env)
            started_munge = True
        _wait(lambda: _ok(["munge", "-n"], env), "munged")

        sock = base / "run" / "mysql.sock"
        subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={base / 'mysql'}", "--user=root",
                        "--auth-root-authentication-method=socket", "--skip-test-db"],
                       check=True, capture_output=True, env=env)
        start(["mariadbd", "--no-defaults", f"--datadir={base / 'mysql'}", "--user=root", "--bind-address=127.0.0.1",
               "--port=3307", f"--socket={sock}", f"--pid-file={base / 'run' / 'mysql.pid'}"])
        _wait(lambda: sock.exists() and _ok(["mariadb", f"--socket={sock}", "-e", "SELECT 1"], env), "MariaDB")
        subprocess.run(["mariadb", f"--socket={sock}", "-e",
                        "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'classwise';"
                        "GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1'; FLUSH PRIVILEGES;"],
                       check=True, env=env)

        (base / "slurmdbd.conf").write_text(
            "AuthType=auth/munge\nDbdHost=localhost\nDbdAddr=127.0.0.1\nDbdPort=6819\nSlurmUser=root\n"
            "StorageType=accounting_storage/mysql\nStorageHost=127.0.0.1\nStoragePort=3307\n"
            "StorageUser=slurm\nStoragePass=classwise\nStorageLoc=slurm_acct_db\n"
            f"LogFile={base / 'log' / 'slurmdbd.log'}\nPidFile={base / 'run' / 'slurmdbd.pid'}\n")
        os.chmod(base / "slurmdbd.conf", 0o600)
        (base / "slurm.conf").write_text(
            f"ClusterName=classwise\nSlurmctldHost={host}(127.0.0.1)\nSlurmUser=root\nSlurmdUser=root\n"
            "AuthType=auth/munge\n"
            f"StateSaveLocation={base / 'state'}\nSlurmdSpoolDir={base / 'spool'}\n"
            f"SlurmctldPidFile={base / 'run' / 'slurmctld.pid'}\nSlurmdPidFile={base / 'run' / 'slurmd.pid'}\n"
            f"SlurmctldLogFile={base / 'log' / 'slurmctld.log'}\nSlurmdLogFile={base / 'log' / 'slurmd.log'}\n"
            "SlurmctldPort=6817\nSlurmdPort=6818\n"
            "ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\nJobAcctGatherType=jobacct_gather/none\n"
            "AccountingStorageType=accounting_storage/slurmdbd\nAccountingStorageHost=127.0.0.1\n"
            "AccountingStoragePort=6819\nSelectType=select/cons_tres\nSelectTypeParameters=CR_Core\n"
            "MpiDefault=none\nSchedulerParameters=batch_sched_delay=0\nReturnToService=2\nMailProg=/bin/true\n"
            f"NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=20000 State=UNKNOWN\n"
            "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n")

        start(["slurmdbd", "-D"])  # reads slurmdbd.conf beside $SLURM_CONF
        _wait(lambda: _ok(["sacctmgr", "-n", "show", "cluster"], env), "slurmdbd")
        start(["slurmctld", "-D", "-i", "-f", str(base / "slurm.conf")])
        start(["slurmd", "-D", "-f", str(base / "slurm.conf")])
        _wait(lambda: _ok(["srun", "--immediate=5", "-t", "1", "true"], env), "a node that runs jobs", 90)
        yield env
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        pidfile = Path("/run/munge/munged.pid")
        if started_munge and pidfile.is_file():
            os.kill(int(pidfile.read_text().split()[0]), signal.SIGTERM)
