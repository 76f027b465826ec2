#!/usr/bin/env bash
# Installs the Debian packages the tests need and starts the services they talk to, when
# missing. Idempotent; used by .ci/run and by contributors (needs root or sudo for apt).
set -euo pipefail
# chromium: the console's browser tests (playwright-core drives /usr/bin/chromium);
# fonts-noto-cjk: Chinese text in those pages and their screenshots.
packages=(socat openssl influxdb mosquitto mosquitto-clients postgresql chromium fonts-noto-cjk)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if [ ${#missing[@]} -gt 0 ]; then
  echo "ensure-services: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! listening 1883; then
  echo "ensure-services: starting mosquitto on 127.0.0.1:1883"
  $SUDO mosquitto -d -c /etc/mosquitto/mosquitto.conf
fi
if ! listening 5432; then
  echo "ensure-services: starting PostgreSQL on 127.0.0.1:5432"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start
fi
for _ in $(seq 1 50); do
  listening 1883 && listening 5432 && break
  sleep 0.2
done
listening 1883 || { echo "ensure-services: mosquitto is not listening on 1883" >&2; exit 1; }
listening 5432 || { echo "ensure-services: PostgreSQL is not listening on 5432" >&2; exit 1; }
# influxd is started per test suite by @coldtrace/testkit on spare ports; only the binary is needed.
command -v influxd >/dev/null
command -v socat >/dev/null
[ -x /usr/bin/chromium ] || { echo "ensure-services: /usr/bin/chromium missing after install" >&2; exit 1; }
echo "ensure-services: ok"
