#!/bin/sh
# Replay throughput against tcpdump's decode of the same generated capture, in
# the same run: packets/s of `egressguard replay` and of `tcpdump -nn -r FILE
# > /dev/null`, their ratio (goal ≥ 5) by wall clock and by CPU time, and
# both peak RSS.
#   PACKETS=5000000 scripts/bench-replay.sh     (the file is ~80 bytes a packet)
set -eu
cd "$(dirname "$0")/.."
packets=${PACKETS:-5000000}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
CGO_ENABLED=0 go build -o "$dir/" ./cmd/egressguard ./scripts/gencap
# -spread: tcpdump's address cache hashes on first octets; see internal/capgen.
"$dir/gencap" -spread -packets "$packets" -o "$dir/big.pcap"
echo "capture: $packets packets, $(du -m "$dir/big.pcap" | cut -f1) MB"
# Warm the page cache so neither run pays for the disk.
cat "$dir/big.pcap" > /dev/null
/usr/bin/time -f '%e %M %U %S' -o "$dir/replay.time" "$dir/egressguard" replay --config /dev/null --local 10.0.0.1/32 "$dir/big.pcap" > "$dir/replay.out"
/usr/bin/time -f '%e %M %U %S' -o "$dir/tcpdump.time" tcpdump -nn -r "$dir/big.pcap" > /dev/null 2>&1
tail -1 "$dir/replay.out"
read -r rs rk ru rsys < "$dir/replay.time"
read -r ts tk tu tsys < "$dir/tcpdump.time"
awk -v n="$packets" -v rs="$rs" -v rk="$rk" -v rc="$ru+$rsys" -v ts="$ts" -v tk="$tk" -v tc="$tu+$tsys" 'BEGIN {
	split(rc, a, "+"); rcpu = a[1] + a[2]; split(tc, b, "+"); tcpu = b[1] + b[2]
	printf "replay:  %.2f s wall, %.2f s CPU, %.0f packets/s, peak RSS %d MB\n", rs, rcpu, n / rs, rk / 1024
	printf "tcpdump: %.2f s wall, %.2f s CPU, %.0f packets/s, peak RSS %d MB\n", ts, tcpu, n / ts, tk / 1024
	printf "replay/tcpdump throughput: %.1fx by wall clock, %.1fx by CPU time\n", ts / rs, tcpu / rcpu
}'
