#!/usr/bin/env bash
# Installs a single-node Slurm with accounting (slurmctld, slurmd, slurmdbd on MariaDB, munge) for the Slurm tests
# (test/slurm.test.ts). Debian/Ubuntu, as root; does nothing when everything is already installed.
set -euo pipefail
needed=(sbatch slurmctld slurmd slurmdbd munged mariadbd)
missing=0
for tool in "${needed[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || missing=1
done
[ "$missing" = 0 ] && exit 0
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends slurm-wlm slurmdbd munge mariadb-server >/dev/null
