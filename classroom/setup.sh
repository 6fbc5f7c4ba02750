#!/usr/bin/env bash
# Set up a class on a fresh Debian or Ubuntu server, as root, from a checkout of the course:
#
#   sudo bash classroom/setup.sh --instructor alice [--port 80] [--cpu-limit 1] [--mem-limit 2G]
#
# 1. system packages: Python's venv, Node's npm (for the hub's proxy), bubblewrap (the grading
#    sandbox), git;
# 2. configurable-http-proxy from npm;
# 3. the environment every user runs, /opt/course/env: PyPI's CPU build of PyTorch, then the
#    course's package with JupyterLab, nbgrader, JupyterHub, the idle culler and SystemdSpawner
#    (`pip install ".[classroom]"`: a copy of course_utils, never solutions/), with nbgrader's
#    instructor tools hidden from learners;
# 4. `python -m course_utils classroom setup ...`: the course account and folder, the exchange
#    at /srv/nbgrader/exchange, /etc/jupyter/nbgrader_config.py, /etc/jupyterhub/ and the
#    jupyterhub systemd unit.
# Then add students with: sudo /opt/course/env/bin/python -m course_utils classroom roster roster.csv
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run this as root (sudo)" >&2; exit 2; }
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1
apt-get update -qq
apt-get install -y -qq python3 python3-venv python3-dev nodejs npm bubblewrap git >/dev/null
command -v configurable-http-proxy >/dev/null 2>&1 || npm install -g configurable-http-proxy
env=/opt/course/env
[ -x "$env/bin/python" ] || python3 -m venv "$env"
"$env/bin/pip" install --quiet torch --index-url https://download.pytorch.org/whl/cpu
"$env/bin/pip" install --quiet ".[classroom]"
chmod -R a+rX /opt/course
PATH="$env/bin:$PATH" binder/hide-instructor-tools sys_prefix
exec "$env/bin/python" -m course_utils classroom setup "$@"
