#!/bin/sh
# Benign large upload to 443 for the lab: iperf3 (apt package iperf3) from the
# "node" namespace to a server in the "internet" namespace on a lab address.
#   upload.sh NODE_NS INET_NS [SECONDS]
# Only 198.18.0.0/15 addresses are used; both namespaces must exist (scripts/lab.sh).
set -eu
node=$1 inet=$2 secs=${3:-10}
ip netns exec "$inet" iperf3 -s -1 -p 443 -B 198.18.0.1 -D
sleep 0.3
ip netns exec "$node" iperf3 -c 198.18.0.1 -p 443 -t "$secs"
