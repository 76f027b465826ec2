#!/bin/sh
# Mosquitto's start in the docker-compose stack: hash the accounts the `setup` service made
# since the last start (passwd.new, `user:secret` lines, mode 0600) into the password file with
# `mosquitto_passwd -U`, then run Mosquitto. Plain secrets never stay on disk here, and never
# appear on a command line.
set -eu
dir="${MOSQUITTO_ACCOUNTS:-/mosquitto/accounts}"
if [ -s "$dir/passwd.new" ]; then
  mosquitto_passwd -U "$dir/passwd.new"
  touch "$dir/passwd"
  cat "$dir/passwd.new" >> "$dir/passwd"
  rm -f "$dir/passwd.new"
  echo "start.sh: new accounts hashed; the password file holds $(wc -l < "$dir/passwd")"
fi
[ -f "$dir/passwd" ] || { echo "start.sh: no password file; the setup service has not run" >&2; exit 1; }
# Mosquitto reads it after dropping to its own user; the ACL stays readable by all (0644).
chown mosquitto:mosquitto "$dir/passwd" 2>/dev/null || true
chmod 0600 "$dir/passwd"
exec mosquitto -c "${MOSQUITTO_CONF:-/mosquitto/config/mosquitto.conf}"
