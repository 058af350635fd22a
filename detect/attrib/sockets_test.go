package attrib

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseSocketTables(t *testing.T) {
	tests := []struct {
		file string
		kind SocketKind
		want []Socket
	}{
		{file: "proc_net_raw", kind: KindRaw, want: []Socket{
			{Kind: KindRaw, Inode: 30373, Protocol: 6},
			{Kind: KindRaw, Inode: 30377, Protocol: 17},
		}},
		{file: "proc_net_raw6", kind: KindRaw6, want: []Socket{
			{Kind: KindRaw6, Inode: 30374, Protocol: 58},
		}},
		{file: "proc_net_packet", kind: KindPacket, want: []Socket{
			{Kind: KindPacket, Inode: 30375, Protocol: 3},
			{Kind: KindPacket, Inode: 30376, Protocol: 0x0800, Ifindex: 1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var got []Socket
			if tt.kind == KindPacket {
				got, err = ParsePacketSockets(f)
			} else {
				got, err = ParseRawSockets(f, tt.kind)
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseSocketTablesRejectsGarbage(t *testing.T) {
	const rawHeader = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n"
	const packetHeader = "sk               RefCnt Type Proto  Iface R Rmem   User   Inode\n"
	tests := []struct {
		name, in, wantErr string
		packet            bool
	}{
		{name: "short raw line", in: rawHeader + "  1: 00000000:0006 00000000:0000 07\n", wantErr: "line 2: 4 fields"},
		{name: "raw address without port", in: rawHeader + "  1: 00000000 00000000:0000 07 0:0 0:0 0 0 0 77 2 0 0\n", wantErr: "has no port"},
		{name: "raw inode not a number", in: rawHeader + "  1: 00000000:0006 00000000:0000 07 0:0 0:0 0 0 0 x 2 0 0\n", wantErr: `inode "x"`},
		{name: "packet proto not hex", in: packetHeader + "0 3 3 zz 0 1 0 0 5\n", wantErr: `proto "zz"`, packet: true},
		{name: "short packet line", in: packetHeader + "0 3 3\n", wantErr: "line 2: 3 fields", packet: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.packet {
				_, err = ParsePacketSockets(strings.NewReader(tt.in))
			} else {
				_, err = ParseRawSockets(strings.NewReader(tt.in), KindRaw)
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// fakeProc builds a proc tree: the socket tables from testdata and processes
// whose fd symlinks point at sockets, as the kernel shows them.
func fakeProc(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	mustDo := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	mustDo(os.MkdirAll(filepath.Join(root, "net"), 0o755))
	for _, n := range []string{"raw", "raw6", "packet"} {
		b, err := os.ReadFile(filepath.Join("testdata", "proc_net_"+n))
		mustDo(err)
		mustDo(os.WriteFile(filepath.Join(root, "net", n), b, 0o644))
	}
	procs := []struct {
		pid     string
		exe     string
		cmdline string
		fds     map[string]string
	}{
		{pid: "4242", exe: "/usr/local/bin/synflood (deleted)", cmdline: "synflood\x00--rate\x0050000\x00",
			fds: map[string]string{"0": "/dev/null", "3": "socket:[30373]", "4": "socket:[30374]", "5": "socket:[30373]"}},
		{pid: "77", exe: "/usr/sbin/dhclient", cmdline: "dhclient\x00eth0\x00",
			fds: map[string]string{"6": "socket:[30376]"}},
		{pid: "100", exe: "/usr/sbin/sshd", cmdline: "sshd\x00", fds: map[string]string{"3": "socket:[99999]", "4": "pipe:[30375]"}},
	}
	for _, p := range procs {
		dir := filepath.Join(root, p.pid)
		mustDo(os.MkdirAll(filepath.Join(dir, "fd"), 0o755))
		mustDo(os.Symlink(p.exe, filepath.Join(dir, "exe")))
		mustDo(os.WriteFile(filepath.Join(dir, "cmdline"), []byte(p.cmdline), 0o644))
		for fd, target := range p.fds {
			mustDo(os.Symlink(target, filepath.Join(dir, "fd", fd)))
		}
	}
	return root
}

func TestSocketHoldersFixture(t *testing.T) {
	got, err := SocketHolders(fakeProc(t))
	if err != nil {
		t.Fatal(err)
	}
	want := []Process{
		{PID: 77, Exe: "/usr/sbin/dhclient", Cmdline: []string{"dhclient", "eth0"},
			Sockets: []Socket{{Kind: KindPacket, Inode: 30376, Protocol: 0x0800, Ifindex: 1}}},
		{PID: 4242, Exe: "/usr/local/bin/synflood", ExeDeleted: true, Cmdline: []string{"synflood", "--rate", "50000"},
			Sockets: []Socket{{Kind: KindRaw, Inode: 30373, Protocol: 6}, {Kind: KindRaw6, Inode: 30374, Protocol: 58}}},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.PID != w.PID || g.Exe != w.Exe || g.ExeDeleted != w.ExeDeleted ||
			!slices.Equal(g.Cmdline, w.Cmdline) || !slices.Equal(g.Sockets, w.Sockets) {
			t.Errorf("process %d: got %+v, want %+v", i, g, w)
		}
	}
}

func TestSocketHoldersNoSockets(t *testing.T) {
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "net"), 0o755); err != nil {
		t.Fatal(err)
	}
	// No tables at all (a kernel without IPv6 or AF_PACKET) means no holders.
	got, err := SocketHolders(root)
	if err != nil || got != nil {
		t.Fatalf("SocketHolders = %v, %v; want nil, nil", got, err)
	}
}
