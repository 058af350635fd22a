package doctor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"github.com/egressguard/egressguard/alerts"
)

// webhookTokenCheck checks webhook.token_file with the agent's own rule
// (alerts.ReadTokenFile): fail when the agent would refuse to start (others
// may write it, everyone may read it), warn when the webhook is disabled
// (no file, empty), ok otherwise with the mode and owner seen.
func webhookTokenCheck(path string) Check {
	c := Check{Name: "webhook token"}
	if path == "" {
		c.Status, c.Detail = StatusWarn, "webhook.token_file is empty: the webhook refuses every request"
		c.Hint = "set webhook.token_file to enable the Alertmanager webhook"
		return c
	}
	_, err := alerts.ReadTokenFile(path)
	switch {
	case err == nil:
		c.Status, c.Detail = StatusOK, "webhook enabled; "+fileOwnership(path)
	case errors.Is(err, fs.ErrPermission):
		c.Status, c.Detail = StatusWarn, "not checked: "+err.Error()
		c.Hint = "run `egressguard doctor` as root"
	case errors.Is(err, alerts.ErrNoToken):
		c.Status, c.Detail = StatusWarn, err.Error()+": the webhook refuses every request"
		c.Hint = fmt.Sprintf("write a token: umask 027; od -An -N32 -tx1 /dev/urandom | tr -d ' \\n' >%s; chgrp %s %s", path, alerts.TokenGroup, path)
	default:
		c.Status, c.Detail = StatusFail, err.Error()+": the agent refuses to start"
		c.Hint = fmt.Sprintf("chown root:%s %s; chmod 0640 %s (add the Alertmanager's user to that group)", alerts.TokenGroup, path, path)
	}
	return c
}

// fileOwnership describes path's mode, owner and group as numbers.
func fileOwnership(path string) string {
	st, err := os.Stat(path)
	if err != nil {
		return err.Error()
	}
	s := fmt.Sprintf("%s mode %04o", path, st.Mode().Perm())
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		s += fmt.Sprintf(", uid %d gid %d", sys.Uid, sys.Gid)
	}
	return s
}
