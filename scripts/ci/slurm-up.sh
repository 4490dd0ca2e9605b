#!/usr/bin/env bash
# Starts a single-node Slurm cluster with accounting on this machine, for the Slurm tests (as root, no systemd):
# munged, MariaDB, slurmdbd, slurmctld and slurmd, configured under $PIPELINE_SLURM_DIR (default /tmp/pipeline-slurm).
# Every Slurm client must then see SLURM_CONF=$PIPELINE_SLURM_DIR/slurm.conf. Stop it with slurm-down.sh.
# Waits until the node is idle; exits non-zero with the daemons' log tails when it does not get there.
set -euo pipefail
dir="${PIPELINE_SLURM_DIR:-/tmp/pipeline-slurm}"
here="$(cd "$(dirname "$0")" && pwd)"
command -v sbatch >/dev/null || { echo "slurm-up: sbatch not found; run scripts/ci/install-slurm.sh" >&2; exit 1; }
"$here/slurm-down.sh" >/dev/null 2>&1 || true
rm -rf "$dir/state" "$dir/spool"
mkdir -p "$dir/state" "$dir/spool" "$dir/log" /run/munge /run/mysqld
chown munge:munge /run/munge
chown mysql:mysql /run/mysqld
export SLURM_CONF="$dir/slurm.conf"

# munged, as the munge user, with its default socket (where Slurm's auth/munge looks for it).
runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid --force

# MariaDB on its socket only; slurmdbd logs in as root through unix_socket authentication.
/usr/sbin/mariadbd --user=mysql --datadir=/var/lib/mysql --socket=/run/mysqld/mysqld.sock \
  --pid-file=/run/mysqld/mysqld.pid --skip-networking --log-error="$dir/log/mariadb.log" >/dev/null 2>&1 &
for _ in $(seq 1 100); do [ -S /run/mysqld/mysqld.sock ] && break; sleep 0.1; done

host="$(hostname -s)"
cpus="$(nproc)"
mem_mb="$(awk '/MemTotal/ { print int($2 / 1024) - 1024 }' /proc/meminfo)"
cat >"$dir/slurmdbd.conf" <<CONF
DbdHost=localhost
SlurmUser=root
PidFile=$dir/slurmdbd.pid
LogFile=$dir/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=root
StorageLoc=pipeline_slurm_acct
AuthType=auth/munge
CONF
chmod 600 "$dir/slurmdbd.conf"
cat >"$dir/slurm.conf" <<CONF
ClusterName=pipeline
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/none
JobAcctGatherFrequency=0
MinJobAge=30
KillWait=5
MessageTimeout=10
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF

/usr/sbin/slurmdbd
for _ in $(seq 1 100); do sacctmgr -i list cluster >/dev/null 2>&1 && break; sleep 0.1; done
sacctmgr -i add cluster pipeline >/dev/null 2>&1 || true
/usr/sbin/slurmctld
/usr/sbin/slurmd

for _ in $(seq 1 300); do
  if [ "$(sinfo -h -n "$host" -o %T 2>/dev/null)" = idle ]; then
    echo "slurm-up: node $host idle (SLURM_CONF=$SLURM_CONF)"
    exit 0
  fi
  sleep 0.1
done
echo "slurm-up: node $host did not become idle; sinfo says: $(sinfo -h -o '%T %E' 2>&1)" >&2
tail -n 5 "$dir"/log/*.log >&2
exit 1
