package attrib

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/procfs"
)

// SocketKind names the /proc/net table a socket was listed in.
type SocketKind string

// The socket tables attribution reads.
const (
	KindRaw    SocketKind = "raw"    // /proc/net/raw
	KindRaw6   SocketKind = "raw6"   // /proc/net/raw6
	KindPacket SocketKind = "packet" // /proc/net/packet
)

// Socket is one raw or packet socket.
type Socket struct {
	Kind  SocketKind `json:"kind"`
	Inode uint64     `json:"inode"`
	// Protocol is the IP protocol of a raw socket (6 = TCP) or the ethertype
	// of a packet socket (3 = ETH_P_ALL).
	Protocol uint16 `json:"protocol"`
	UID      uint32 `json:"uid"`
	// Ifindex is the interface a packet socket is bound to; 0 means all.
	Ifindex int `json:"ifindex,omitempty"`
}

// Process is a process holding raw or packet sockets.
type Process struct {
	PID int    `json:"pid"`
	Exe string `json:"exe"`
	// ExeDeleted is true when the executable was deleted (or replaced) on
	// disk after the process started.
	ExeDeleted bool     `json:"exe_deleted"`
	Cmdline    []string `json:"cmdline"`
	Sockets    []Socket `json:"sockets"`
}

// ParseRawSockets parses /proc/net/raw or /proc/net/raw6 (kind KindRaw or
// KindRaw6): the same layout as /proc/net/tcp, where the local "port" is the
// socket's protocol.
func ParseRawSockets(r io.Reader, kind SocketKind) ([]Socket, error) {
	var out []Socket
	err := eachLine(r, func(n int, f []string) error {
		// sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
		if len(f) < 10 {
			return fmt.Errorf("line %d: %d fields, want at least 10", n, len(f))
		}
		_, port, ok := strings.Cut(f[1], ":")
		if !ok {
			return fmt.Errorf("line %d: local address %q has no port", n, f[1])
		}
		proto, err := strconv.ParseUint(port, 16, 16)
		if err != nil {
			return fmt.Errorf("line %d: protocol %q: %w", n, port, err)
		}
		uid, err := strconv.ParseUint(f[7], 10, 32)
		if err != nil {
			return fmt.Errorf("line %d: uid %q: %w", n, f[7], err)
		}
		inode, err := strconv.ParseUint(f[9], 10, 64)
		if err != nil {
			return fmt.Errorf("line %d: inode %q: %w", n, f[9], err)
		}
		out = append(out, Socket{Kind: kind, Inode: inode, Protocol: uint16(proto), UID: uint32(uid)})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("attrib: parse %s sockets: %w", kind, err)
	}
	return out, nil
}

// ParsePacketSockets parses /proc/net/packet.
func ParsePacketSockets(r io.Reader) ([]Socket, error) {
	var out []Socket
	err := eachLine(r, func(n int, f []string) error {
		// sk RefCnt Type Proto Iface R Rmem User Inode
		if len(f) < 9 {
			return fmt.Errorf("line %d: %d fields, want at least 9", n, len(f))
		}
		proto, err := strconv.ParseUint(f[3], 16, 16)
		if err != nil {
			return fmt.Errorf("line %d: proto %q: %w", n, f[3], err)
		}
		ifindex, err := strconv.Atoi(f[4])
		if err != nil {
			return fmt.Errorf("line %d: iface %q: %w", n, f[4], err)
		}
		uid, err := strconv.ParseUint(f[7], 10, 32)
		if err != nil {
			return fmt.Errorf("line %d: user %q: %w", n, f[7], err)
		}
		inode, err := strconv.ParseUint(f[8], 10, 64)
		if err != nil {
			return fmt.Errorf("line %d: inode %q: %w", n, f[8], err)
		}
		out = append(out, Socket{Kind: KindPacket, Inode: inode, Protocol: uint16(proto), UID: uint32(uid), Ifindex: ifindex})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("attrib: parse packet sockets: %w", err)
	}
	return out, nil
}

// eachLine calls fn with the fields of every line after the header.
func eachLine(r io.Reader, fn func(n int, fields []string) error) error {
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		if n == 1 {
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if err := fn(n, f); err != nil {
			return err
		}
	}
	return sc.Err()
}

// SocketHolders lists the processes holding raw or packet sockets, read from
// the proc file system at procRoot ("/proc"). The socket tables are those of
// the network namespace of the reading process's main thread (/proc/net
// follows it); processes must be readable (root) for
// their file descriptors to be seen. Processes that exit during the walk are
// skipped. The result is sorted by pid and includes the caller itself if it
// holds such sockets (a capture does).
func SocketHolders(procRoot string) ([]Process, error) {
	byInode := make(map[uint64]Socket)
	for _, t := range []struct {
		file  string
		parse func(io.Reader) ([]Socket, error)
	}{
		{"raw", func(r io.Reader) ([]Socket, error) { return ParseRawSockets(r, KindRaw) }},
		{"raw6", func(r io.Reader) ([]Socket, error) { return ParseRawSockets(r, KindRaw6) }},
		{"packet", ParsePacketSockets},
	} {
		socks, err := parseFile(filepath.Join(procRoot, "net", t.file), t.parse)
		if err != nil {
			return nil, err
		}
		for _, s := range socks {
			byInode[s.Inode] = s
		}
	}
	if len(byInode) == 0 {
		return nil, nil
	}
	pfs, err := procfs.NewFS(procRoot)
	if err != nil {
		return nil, fmt.Errorf("attrib: open proc at %s: %w", procRoot, err)
	}
	procs, err := pfs.AllProcs()
	if err != nil {
		return nil, fmt.Errorf("attrib: list processes: %w", err)
	}
	var out []Process
	for _, p := range procs {
		targets, err := p.FileDescriptorTargets()
		if err != nil {
			continue // exited, or not ours to read
		}
		var held []Socket
		for _, tg := range targets {
			s, ok := socketInode(tg)
			if !ok {
				continue
			}
			if sock, ok := byInode[s]; ok {
				held = append(held, sock)
			}
		}
		if len(held) == 0 {
			continue
		}
		slices.SortFunc(held, func(a, b Socket) int { return cmp.Compare(a.Inode, b.Inode) })
		proc := Process{PID: p.PID, Sockets: slices.Compact(held)}
		if exe, err := p.Executable(); err == nil {
			proc.Exe, proc.ExeDeleted = strings.CutSuffix(exe, " (deleted)")
		}
		if cl, err := p.CmdLine(); err == nil {
			proc.Cmdline = cl
		}
		out = append(out, proc)
	}
	slices.SortFunc(out, func(a, b Process) int { return cmp.Compare(a.PID, b.PID) })
	return out, nil
}

// parseFile parses one socket table; a table the kernel lacks (no IPv6,
// no AF_PACKET) holds no sockets.
func parseFile(path string, parse func(io.Reader) ([]Socket, error)) ([]Socket, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("attrib: %w", err)
	}
	defer f.Close()
	return parse(f)
}

// socketInode returns N of a file descriptor target "socket:[N]".
func socketInode(target string) (uint64, bool) {
	s, ok := strings.CutPrefix(target, "socket:[")
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, "]")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}
