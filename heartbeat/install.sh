#!/bin/sh
# Installs xenha-heartbeat on XenServer / XCP-ng hosts over ssh/scp (see docs/heartbeat.md).
#
#   heartbeat/install.sh [-u user] [-p port] [-n] <config-dir> <host-address>...
#
# <config-dir> holds, for each host, <host-address>.json (that host's /etc/xenha/heartbeat.json: the same
# pool, hosts, port, intervals and file for every host, its own "host") and one pool secret, heartbeat.secret.
# For each host: copies the daemon to /opt/xenha/, the unit to /etc/systemd/system/, the config and secret to
# /etc/xenha/ (secret mode 0600), checks the config with the host's own python3 (--check), then enables and
# (re)starts the unit. -n prints what it would do. POSIX sh; needs ssh and scp.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
user=root
port=22
dry=

usage() {
	echo "usage: $0 [-u user] [-p ssh-port] [-n] <config-dir> <host-address>..." >&2
	exit 2
}

while getopts u:p:nh opt; do
	case $opt in
	u) user=$OPTARG ;;
	p) port=$OPTARG ;;
	n) dry=echo ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# -ge 2 ] || usage
confdir=$1
shift

secret=$confdir/heartbeat.secret
[ -f "$secret" ] || { echo "$0: missing $secret (the pool secret, e.g. head -c 32 /dev/urandom | base64 > $secret)" >&2; exit 2; }
[ -s "$secret" ] || { echo "$0: $secret is empty" >&2; exit 2; }
for host in "$@"; do
	[ -f "$confdir/$host.json" ] || { echo "$0: missing $confdir/$host.json" >&2; exit 2; }
done

ssh_opts="-o BatchMode=yes -p $port"
scp_opts="-o BatchMode=yes -P $port"

for host in "$@"; do
	echo "== $host"
	target=$user@$host
	$dry ssh $ssh_opts "$target" 'mkdir -p /opt/xenha /etc/xenha && chmod 0700 /etc/xenha'
	$dry scp $scp_opts "$here/xenha-heartbeat.py" "$target:/opt/xenha/xenha-heartbeat.py"
	$dry scp $scp_opts "$here/xenha-heartbeat.service" "$target:/etc/systemd/system/xenha-heartbeat.service"
	$dry scp $scp_opts "$confdir/$host.json" "$target:/etc/xenha/heartbeat.json"
	# umask first: the secret is never readable by others, even for a moment.
	$dry ssh $ssh_opts "$target" 'umask 077 && cat > /etc/xenha/heartbeat.secret.new && mv /etc/xenha/heartbeat.secret.new /etc/xenha/heartbeat.secret' <"$secret"
	$dry ssh $ssh_opts "$target" 'chmod 0755 /opt/xenha/xenha-heartbeat.py &&
		chmod 0600 /etc/xenha/heartbeat.secret /etc/xenha/heartbeat.json &&
		python3 /opt/xenha/xenha-heartbeat.py --config /etc/xenha/heartbeat.json --check &&
		systemctl daemon-reload &&
		systemctl enable xenha-heartbeat.service &&
		systemctl restart xenha-heartbeat.service &&
		systemctl --no-pager status xenha-heartbeat.service | head -n 5'
done
