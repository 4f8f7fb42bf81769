#!/usr/bin/env bash
# `pip install` for image builds: trusts the CA bundle given as the build secret `pip_ca`
# (make images PIP_CA=/path/ca.pem), for networks whose proxy intercepts TLS.
set -Eeuo pipefail
if [ -s /run/secrets/pip_ca ]; then export PIP_CERT=/run/secrets/pip_ca; fi
exec pip install --no-input "$@"
