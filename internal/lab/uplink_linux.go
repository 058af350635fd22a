package lab

// DeleteUplink deletes the node's uplink (and with it wan0 and every qdisc
// on it), as a driver reload or an operator's `ip link del` would.
func (l *Lab) DeleteUplink() error {
	return run("ip", "-n", l.Node, "link", "del", Uplink)
}

// RecreateUplink creates the uplink again under the same name (a new
// ifindex), with its addresses and default routes.
func (l *Lab) RecreateUplink() error {
	return runAll(l.uplinkSteps(l.queues))
}
