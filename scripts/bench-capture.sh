#!/bin/sh
# Capture benchmarks (root: they build egc- network namespaces and remove them).
# 1. capture+decode CPU per replayed frame, synwatch vs a naive recvfrom+gopacket.NewPacket baseline;
# 2. the whole pipeline while scripts/synflood runs at full speed, three times (CPU share, VmHWM, error).
set -eu
cd "$(dirname "$0")/.."
go test -run '^$' -bench BenchmarkCapture -benchtime 300000x ./detect/synwatch |
	awk '/capture-cpu-ns/ {name = $1; sub(/-[0-9]+$/, "", name) # the -GOMAXPROCS suffix varies by machine
	                       for (i = 1; i <= NF; i++) if ($(i+1) == "capture-cpu-ns/frame") v[name] = $i; print}
	     END {if (v["BenchmarkCapture/naive"] && v["BenchmarkCapture/synwatch"]) printf "naive/synwatch CPU per frame: %.1fx\n", v["BenchmarkCapture/naive"] / v["BenchmarkCapture/synwatch"]
	          else {print "bench-capture: no naive and synwatch results to compare" > "/dev/stderr"; exit 1}}'
go test -count 3 -run TestFloodBench -v ./detect/synwatch -args -flood-bench=5s | grep 'capture CPU'
