#!/bin/sh
# nginx.sh: the web image's page and nginx configuration. Runs after the hardening (customize), with
# the image's stamp already in place (stamp.sh): the page names the image and version it reads there.
# nginx listens on port 80 only, says no version, and serves nothing but this page.
set -eu
umask 022
stamp=/etc/golden/image.json
field() { sed -n "s/.*\"$1\": *\"\\([^\"]*\\)\".*/\\1/p" "$stamp"; }
version=$(field version)
image=$(field image)
if [ -z "$version" ] || [ -z "$image" ]; then
    echo "nginx.sh: no version or image in $stamp" >&2
    exit 1
fi

install -d -m 0755 /var/www/golden
cat > /var/www/golden/index.html <<HTML
<!doctype html>
<html><head><title>golden $image</title></head>
<body><h1>golden $image $version</h1></body></html>
HTML
chmod 0644 /var/www/golden/index.html

rm -f /etc/nginx/sites-enabled/default
cat > /etc/nginx/sites-available/golden <<'CONF'
server {
    listen 80 default_server;
    server_name _;
    root /var/www/golden;
    index index.html;
    location / {
        try_files $uri $uri/ =404;
    }
}
CONF
ln -sf ../sites-available/golden /etc/nginx/sites-enabled/golden
cat > /etc/nginx/conf.d/golden-hardening.conf <<'CONF'
server_tokens off;
CONF
# Rotation keeps the logs root's (CIS 6.1.4.1): Debian's stanza creates them for www-data, and nginx,
# reopening its logs at postrotate, hands them to its worker user. A copy and truncate creates nothing.
cat > /etc/logrotate.d/nginx <<'CONF'
/var/log/nginx/*.log {
	daily
	missingok
	rotate 14
	compress
	delaycompress
	notifempty
	copytruncate
}
CONF
chmod 0644 /etc/logrotate.d/nginx
nginx -t 2>&1
echo "nginx.sh: serving 'golden $image $version' on port 80"
