#!/bin/sh
# kernel-log.sh: export the host's kernel errors for rollout analysis. Every 15 s a timer counts the
# kernel messages of priority err or worse since boot (`journalctl -k -b -p err`) into the node
# exporter's textfile collector as golden_kernel_log_errors_total (pipeline/rollout/metrics.py).
set -eu
umask 022
install -d -m 0755 /usr/local/lib/golden
cat > /usr/local/lib/golden/kernel-log-metric <<'SCRIPT'
#!/bin/sh
set -eu
dir=/var/lib/prometheus/node-exporter
count=$(journalctl -k -b -p err -q --no-pager -o cat | wc -l)
tmp="$dir/.golden_kernel_log.prom.$$"
printf '# HELP golden_kernel_log_errors_total Kernel messages of priority err or worse since boot.\n# TYPE golden_kernel_log_errors_total counter\ngolden_kernel_log_errors_total %s\n' "$count" > "$tmp"
mv "$tmp" "$dir/golden_kernel_log.prom"
SCRIPT
chmod 0755 /usr/local/lib/golden/kernel-log-metric
cat > /etc/systemd/system/golden-kernel-log.service <<'UNIT'
[Unit]
Description=Count kernel errors since boot for the node exporter (golden rollout analysis)
After=prometheus-node-exporter.service

[Service]
Type=oneshot
ExecStart=/usr/local/lib/golden/kernel-log-metric
UNIT
cat > /etc/systemd/system/golden-kernel-log.timer <<'UNIT'
[Unit]
Description=Count kernel errors since boot every 15 seconds

[Timer]
OnBootSec=5s
OnUnitActiveSec=15s
AccuracySec=1s

[Install]
WantedBy=timers.target
UNIT
chmod 0644 /etc/systemd/system/golden-kernel-log.service /etc/systemd/system/golden-kernel-log.timer
install -d -m 0755 /var/lib/prometheus/node-exporter
systemctl enable golden-kernel-log.timer
echo "kernel-log.sh: golden_kernel_log_errors_total every 15 s"
