package synwatch

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Ring geometry: 8 blocks of 256 KiB hold ≥ 6k truncated frames (a frame is
// 48 bytes of tpacket3_hdr, 32 of sockaddr_ll and padding, ≤ Snaplen of data;
// a SYN without tags or extension headers takes 154); a
// block is handed to user space when full or after blockTimeoutMs.
const (
	ringBlockSize  = 1 << 18
	ringBlocks     = 8
	ringFrameSize  = 1 << 11
	blockTimeoutMs = 20
)

// Offsets into struct tpacket_block_desc (hdr.bh1 starts at 8) and struct
// tpacket3_hdr followed by its sockaddr_ll at TPACKET_ALIGN(48) = 48.
const (
	bdStatus     = 8
	bdNumPkts    = 12
	bdFirstPkt   = 16
	phNext       = 0
	phSec        = 4
	phNsec       = 8
	phSnaplen    = 12
	phLen        = 16
	phMac        = 24
	phSllIfindex = 48 + 4
	phSllPktype  = 48 + 10
)

// ring is a TPACKET_V3 receive ring on an AF_PACKET socket.
type ring struct {
	fd   int
	mem  []byte
	next int // next block to read
}

// openRing creates the socket with no protocol (so no frame arrives before
// the filter is attached), attaches filter, maps the ring and only then binds
// to ifindex (0: every interface of the namespace) for all protocols.
func openRing(ifindex int, filter []bpf.Instruction) (*ring, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("synwatch: socket AF_PACKET: %w", err)
	}
	r := &ring{fd: fd}
	if err := r.setup(ifindex, filter); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

func (r *ring) setup(ifindex int, filter []bpf.Instruction) error {
	if err := r.attach(filter); err != nil {
		return err
	}
	if err := unix.SetsockoptInt(r.fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
		return fmt.Errorf("synwatch: set TPACKET_V3: %w", err)
	}
	req := unix.TpacketReq3{
		Block_size:     ringBlockSize,
		Block_nr:       ringBlocks,
		Frame_size:     ringFrameSize,
		Frame_nr:       ringBlockSize / ringFrameSize * ringBlocks,
		Retire_blk_tov: blockTimeoutMs,
	}
	if err := unix.SetsockoptTpacketReq3(r.fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return fmt.Errorf("synwatch: set PACKET_RX_RING: %w", err)
	}
	mem, err := unix.Mmap(r.fd, 0, ringBlockSize*ringBlocks, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_LOCKED|unix.MAP_POPULATE)
	if err != nil {
		mem, err = unix.Mmap(r.fd, 0, ringBlockSize*ringBlocks, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	}
	if err != nil {
		return fmt.Errorf("synwatch: mmap ring: %w", err)
	}
	r.mem = mem
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}
	if err := unix.Bind(r.fd, sa); err != nil {
		return fmt.Errorf("synwatch: bind ifindex %d: %w", ifindex, err)
	}
	return nil
}

// attach replaces the socket's filter; the kernel swaps it atomically.
func (r *ring) attach(filter []bpf.Instruction) error {
	raw, err := bpf.Assemble(filter)
	if err != nil {
		return fmt.Errorf("synwatch: assemble filter: %w", err)
	}
	prog := unix.SockFprog{Len: uint16(len(raw)), Filter: (*unix.SockFilter)(unsafe.Pointer(&raw[0]))}
	if err := unix.SetsockoptSockFprog(r.fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog); err != nil {
		return fmt.Errorf("synwatch: attach filter: %w", err)
	}
	return nil
}

// frame is one captured packet as the ring holds it; data aliases the ring.
type frame struct {
	sec, nsec uint32
	wireLen   uint32
	ifindex   uint32
	outgoing  bool
	data      []byte
}

// readBlock calls fn for every frame of the next block if the kernel has
// handed it to user space, then returns the block; it reports whether there
// was one.
func (r *ring) readBlock(fn func(frame)) bool {
	b := r.mem[r.next*ringBlockSize : (r.next+1)*ringBlockSize]
	status := (*uint32)(unsafe.Pointer(&b[bdStatus]))
	if atomic.LoadUint32(status)&unix.TP_STATUS_USER == 0 {
		return false
	}
	n := binary.NativeEndian.Uint32(b[bdNumPkts:])
	off := binary.NativeEndian.Uint32(b[bdFirstPkt:])
	for range n {
		h := b[off:]
		mac := uint32(binary.NativeEndian.Uint16(h[phMac:]))
		snap := binary.NativeEndian.Uint32(h[phSnaplen:])
		fn(frame{
			sec:      binary.NativeEndian.Uint32(h[phSec:]),
			nsec:     binary.NativeEndian.Uint32(h[phNsec:]),
			wireLen:  binary.NativeEndian.Uint32(h[phLen:]),
			ifindex:  binary.NativeEndian.Uint32(h[phSllIfindex:]),
			outgoing: h[phSllPktype] == unix.PACKET_OUTGOING,
			data:     h[mac : mac+snap],
		})
		off += binary.NativeEndian.Uint32(h[phNext:])
	}
	atomic.StoreUint32(status, unix.TP_STATUS_KERNEL)
	r.next = (r.next + 1) % ringBlocks
	return true
}

// wait blocks until a block may be ready or timeoutMs passes.
func (r *ring) wait(timeoutMs int) error {
	fds := []unix.PollFd{{Fd: int32(r.fd), Events: unix.POLLIN | unix.POLLERR}}
	if _, err := unix.Poll(fds, timeoutMs); err != nil && err != unix.EINTR {
		return fmt.Errorf("synwatch: poll: %w", err)
	}
	return nil
}

// stats returns and resets the kernel's counts of frames that passed the
// filter (including dropped ones) and frames dropped for lack of ring room.
func (r *ring) stats() (passed, dropped uint64, err error) {
	st, err := unix.GetsockoptTpacketStatsV3(r.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err != nil {
		return 0, 0, fmt.Errorf("synwatch: PACKET_STATISTICS: %w", err)
	}
	return uint64(st.Packets), uint64(st.Drops), nil
}

func (r *ring) close() error {
	if r.mem != nil {
		_ = unix.Munmap(r.mem)
		r.mem = nil
	}
	return unix.Close(r.fd)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
