#!/usr/bin/env python3
"""Writes a provisioning tree for N phones: a master, a site.cfg and one ~5 KB per-phone
configuration each (the benchmark's workload). Usage: make-fleet.py N DIR"""
import os
import sys

count, root = int(sys.argv[1]), sys.argv[2]
os.makedirs(root, exist_ok=True)
with open(os.path.join(root, "000000000000.cfg"), "w") as f:
    f.write('<?xml version="1.0" standalone="yes"?>\n<APPLICATION APP_FILE_PATH="" '
            'CONFIG_FILES="[PHONE_MAC_ADDRESS]-key.cfg, [PHONE_MAC_ADDRESS]-sip.cfg, site.cfg"/>\n')
with open(os.path.join(root, "site.cfg"), "w") as f:
    f.write('<polycomConfig><tcpIpApp tcpIpApp.sntp.address="pool.ntp.org"/></polycomConfig>\n')
# ~5 KB of realistic per-phone settings around the secret.
filler = "".join(
    f'  <feature feature.{i}.enabled="1" feature.{i}.label="Feature number {i} for this phone"/>\n'
    for i in range(60))
for n in range(count):
    mac = "0004f2%06x" % (n + 1)
    with open(os.path.join(root, f"{mac}-sip.cfg"), "w") as f:
        f.write(f'<?xml version="1.0" encoding="UTF-8"?>\n<polycomConfig>\n'
                f'  <reg reg.1.address="{n + 1000}" reg.1.auth.userId="{n + 1000}" '
                f'reg.1.auth.password="bench-Passw0rd-{n:08d}"/>\n{filler}</polycomConfig>\n')
