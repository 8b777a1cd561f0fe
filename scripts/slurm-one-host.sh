#!/usr/bin/env bash
# A real, one-host Slurm for the multi-process tests: `start DIR` writes a config under DIR,
# starts munged, slurmctld and slurmd (as root, no systemd, no cgroups) and waits until the
# node is idle; `stop DIR` stops exactly the daemons it started (by their pid files).
# Needs Debian's slurm-wlm and munge (`apt-get install -y slurm-wlm munge`).
set -euo pipefail

start() {
  local dir=$1
  mkdir -p "$dir"/{state,spool,log,run}
  dir=$(cd "$dir" && pwd)
  local host cpus
  host=$(hostname -s)
  cpus=$(nproc)
  # munge: a fresh key unless one exists (other Slurm users of this machine keep theirs).
  if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
  fi
  chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
  mkdir -p /run/munge && chown munge:munge /run/munge
  if ! pgrep -u munge munged >/dev/null; then
    runuser -u munge -- munged --force --pid-file=/run/munge/munged.pid 2>/dev/null ||
      munged --force 2>/dev/null
  fi
  cat > "$dir/slurm.conf" <<CONF
ClusterName=air
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
NodeName=$host CPUs=$cpus State=UNKNOWN
PartitionName=air Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE
CONF
  export SLURM_CONF=$dir/slurm.conf
  slurmctld -f "$SLURM_CONF"
  slurmd -f "$SLURM_CONF"
  for _ in $(seq 1 60); do
    if sinfo -h -o %t 2>/dev/null | grep -q idle; then
      echo "slurm up: SLURM_CONF=$SLURM_CONF ($host, $cpus CPUs)"
      return 0
    fi
    sleep 0.5
  done
  echo "slurm did not come up; logs in $dir/log" >&2
  tail -20 "$dir"/log/*.log >&2 || true
  return 1
}

stop() {
  local dir=$1
  for pid_file in "$dir/run/slurmd.pid" "$dir/run/slurmctld.pid"; do
    if [ -s "$pid_file" ]; then
      kill "$(cat "$pid_file")" 2>/dev/null || true
    fi
  done
}

case "${1:-}" in
  start) start "${2:?usage: slurm-one-host.sh start DIR}" ;;
  stop) stop "${2:?usage: slurm-one-host.sh stop DIR}" ;;
  *) echo "usage: slurm-one-host.sh start|stop DIR" >&2; exit 2 ;;
esac
