#!/usr/bin/env bash
# Debian packages the tests use (promtool, amtool, Chromium, a Java runtime for Spark's local
# mode) and a PostgreSQL on 127.0.0.1:5432
# with trust auth and a database `test`. Safe to run again: it only does what is missing.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

packages=()
command -v promtool >/dev/null || packages+=(prometheus)
command -v amtool >/dev/null || packages+=(prometheus-alertmanager)
command -v chromium >/dev/null || packages+=(chromium)
command -v pg_ctlcluster >/dev/null || packages+=(postgresql)
# PySpark 4 needs Java 17 or newer: Debian's default JRE is 17 on bookworm, 21 on trixie.
command -v java >/dev/null || packages+=(default-jre-headless)
if [ ${#packages[@]} -gt 0 ]; then
  echo "== apt-get install ${packages[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  version=$(ls /etc/postgresql | sort -V | tail -1)
  echo "== starting PostgreSQL $version"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
if ! psql -h 127.0.0.1 -U postgres -d test -qtAc 'select 1' >/dev/null 2>&1; then
  echo "== configuring PostgreSQL: trust on loopback, database test"
  version=$(ls /etc/postgresql | sort -V | tail -1)
  hba=/etc/postgresql/$version/main/pg_hba.conf
  as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload
  sleep 1
  psql -h 127.0.0.1 -U postgres -d postgres -qtAc "select 1 from pg_database where datname='test'" \
    | grep -q 1 || psql -h 127.0.0.1 -U postgres -d postgres -qc 'create database test'
fi
pg_isready -h 127.0.0.1 -p 5432
