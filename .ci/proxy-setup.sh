#!/bin/sh
# Prepares the proxy test (tests/integration/proxy.rs): Debian's nginx and Caddy, which
# the test starts itself with the README's snippets. Their packaged services are not
# needed; where systemd runs, they are stopped so ports 80 and 443 stay free.
set -eu
if [ ! -x /usr/sbin/nginx ] || [ ! -x /usr/bin/caddy ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y nginx-light caddy
fi
if [ -d /run/systemd/system ]; then
    systemctl disable --now nginx caddy 2>/dev/null || true
fi
/usr/sbin/nginx -v
/usr/bin/caddy version
