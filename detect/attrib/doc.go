// Package attrib answers "who" for a flood verdict: for bridged VM traffic,
// a source address's MAC (from the capture or the neighbour table) and the
// bridge port it entered on (from the bridge FDB, over netlink); for host
// traffic, the processes holding raw or packet sockets (from /proc/net/raw,
// /proc/net/raw6, /proc/net/packet and the processes' file descriptors).
//
// The lookups are pure functions over tables (Tables.Resolve, the socket
// parsers) so that they are tested on fixtures; NetResolver and
// SocketHolders read the tables from the kernel.
package attrib
