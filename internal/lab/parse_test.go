package lab

import (
	"testing"
	"time"
)

func TestParseClasses(t *testing.T) {
	out := `class htb e9:10 parent e9:1 leaf e910: prio 0 rate 1Mbit ceil 1Mbit burst 1600b cburst 1600b 
 Sent 125000 bytes 1953 pkt (dropped 4096, overlimits 99 requeues 0) 
 backlog 0b 0p requeues 0
class htb e9:1 root rate 100Gbit ceil 100Gbit burst 0b cburst 0b 
 Sent 7 bytes 1 pkt (dropped 0, overlimits 0 requeues 0) 
`
	got := ParseClasses(out)
	want := map[string]ClassStat{
		"e9:10": {Kind: "htb", ID: "e9:10", Parent: "e9:1", Bytes: 125000, Packets: 1953, Drops: 4096, Overlimits: 99},
		"e9:1":  {Kind: "htb", ID: "e9:1", Bytes: 7, Packets: 1},
	}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("%s = %+v, want %+v", id, got[id], w)
		}
	}
}

func TestLayouts(t *testing.T) {
	tests := []struct {
		name string
		got  Layout
		want Layout
	}{
		{
			name: "plan",
			got: PlanLayout(`# warning: pfifo leaves
tc qdisc replace dev up0 root handle e9: htb default 20
tc class add dev up0 parent e9: classid e9:1 htb rate 100gbit
tc class add dev up0 parent e9:1 classid e9:10 htb rate 1mbit
tc qdisc add dev up0 parent e9:10 handle e910: pfifo limit 10
tc filter add dev up0 parent e9: protocol ip prio 1 u32 match ip dport 22 0xffff flowid e9:20
`),
			want: Layout{Root: "htb e9:", Qdiscs: 2, Classes: 2, Filters: 1},
		},
		{
			name: "kernel",
			got: ParseLayout(`qdisc htb e9: root refcnt 2 r2q 10 default 0x20 direct_packets_stat 0
qdisc pfifo e910: parent e9:10 limit 10p
`, `class htb e9:1 root rate 100Gbit
class htb e9:10 parent e9:1 leaf e910: prio 0
`, `filter parent e9: protocol ip pref 1 u32 chain 0 
filter parent e9: protocol ip pref 1 u32 chain 0 fh 800: ht divisor 1 
filter parent e9: protocol ip pref 1 u32 chain 0 fh 800::800 order 2048 key ht 800 bkt 0 flowid e9:20 not_in_hw 
  match 00000016/0000ffff at 20
`),
			want: Layout{Root: "htb e9:", Qdiscs: 2, Classes: 2, Filters: 1},
		},
		{
			name: "default root",
			got:  ParseLayout("qdisc noqueue 0: root refcnt 2 \n", "", ""),
			want: Layout{Root: "noqueue 0:", Qdiscs: 1},
		},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.name, tt.got, tt.want)
		}
	}
}

func TestParseIperf(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		received float64
		wantErr  bool
	}{
		{"tcp", `{"start":{"timestamp":{"timesecs":1700000000}},"intervals":[{"sum":{"start":0,"end":1,"bits_per_second":9e8}}],
			"end":{"sum_sent":{"bits_per_second":9.5e8},"sum_received":{"bits_per_second":9.4e8}}}`, 9.4e8, false},
		{"udp", `{"start":{"timestamp":{"timesecs":1}},"end":{"sum":{"bits_per_second":1e6,"lost_percent":10}}}`, 0.9e6, false},
		{"error", `{"error":"unable to connect to server"}`, 0, true},
		{"garbage", `iperf3: oops`, 0, true},
	}
	for _, tt := range tests {
		r, err := ParseIperf([]byte(tt.in))
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: err %v", tt.name, err)
			continue
		}
		if err == nil && r.ReceivedBps != tt.received {
			t.Errorf("%s: received %v, want %v", tt.name, r.ReceivedBps, tt.received)
		}
	}
	r, _ := ParseIperf([]byte(tests[0].in))
	if len(r.Intervals) != 1 || r.Intervals[0].End != time.Second || !r.Start.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("intervals %+v start %v", r.Intervals, r.Start)
	}
}
