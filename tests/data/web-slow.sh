#!/bin/sh
# web-slow.sh: a bad web variant for the rollout tests (customize+, after images/web/nginx.sh).
# The page grows to ~200 KB and is sent at 64 KB/s: every request takes about 3 s (measured with
# Debian's nginx 1.22), while a single probe still answers well within the acceptance probe's 10 s timeout.
set -eu
umask 022
page=/var/www/golden/index.html
[ -s "$page" ] || { echo "web-slow.sh: no $page (run after images/web/nginx.sh)" >&2; exit 1; }
{
    echo '<!--'
    head -c 150000 /dev/zero | base64 -w 100
    echo '-->'
} >> "$page"
cat > /etc/nginx/conf.d/golden-slow.conf <<'CONF'
limit_rate 64k;
CONF
nginx -t 2>&1
echo "web-slow.sh: $(wc -c < "$page") bytes sent at 64 KB/s"
