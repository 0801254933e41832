#!/bin/sh
# web-limit-req.sh: a bad web variant for the rollout tests (customize+, after images/web/nginx.sh).
# One request bucket for the whole server at 2 requests/second with a burst of 2: a single request,
# or a few in a row, pass (so the variant passes its own gate), but under ~10 requests/second most
# are refused with 503.
set -eu
umask 022
cat > /etc/nginx/conf.d/golden-limit-req.conf <<'CONF'
limit_req_zone $server_name zone=golden_bad:1m rate=2r/s;
limit_req zone=golden_bad burst=2 nodelay;
limit_req_status 503;
CONF
nginx -t 2>&1
echo "web-limit-req.sh: every request shares one 2 r/s bucket (burst 2)"
