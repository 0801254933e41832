#!/bin/sh
# web-slow.sh: a bad web variant for the rollout tests (customize+, after images/web/nginx.sh).
# The page grows by 48 KB and is sent at 40 KB/s: every request takes a little over a second. That is
# above the rollout policy's latency bound (0.5 s) and under the load generator's 2 s timeout (so the
# requests are slow, not errors); a single probe still answers well within the acceptance probe's 60 s.
set -eu
umask 022
page=/var/www/golden/index.html
[ -s "$page" ] || { echo "web-slow.sh: no $page (run after images/web/nginx.sh)" >&2; exit 1; }
{
    echo '<!--'
    head -c 36000 /dev/zero | base64 -w 100
    echo '-->'
} >> "$page"
cat > /etc/nginx/conf.d/golden-slow.conf <<'CONF'
limit_rate 40k;
CONF
nginx -t 2>&1
echo "web-slow.sh: $(wc -c < "$page") bytes sent at 40 KB/s"
