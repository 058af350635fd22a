package alerts

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// TokenGroup is the system group the packages create to let a local
// Alertmanager read the webhook token (mode 0640, owner root).
const TokenGroup = "egressguard-webhook"

// ErrNoToken is wrapped by ReadTokenFile when the token file is missing or
// holds only whitespace: the webhook is disabled and refuses every request.
var ErrNoToken = errors.New("no webhook token")

// ErrTokenMode is wrapped by ReadTokenFile when anyone but the owner may
// write the token file, or anyone outside its group may read it.
var ErrTokenMode = errors.New("unsafe webhook token file mode")

// ErrTokenOwner is wrapped by ReadTokenFile when the token file belongs to
// a user other than root or the agent's own: that user could rewrite it (or
// chmod it) and then order throttles through the webhook.
var ErrTokenOwner = errors.New("unsafe webhook token file owner")

// unsafeTokenBits are the permission bits a token file must not have: group
// or world write (anyone could set the token), world read (any local user
// could order throttles). Group read is the documented way to share it with
// the Alertmanager (group egressguard-webhook).
const unsafeTokenBits fs.FileMode = 0o022 | 0o004

// maxTokenBytes bounds what ReadTokenFile reads.
const maxTokenBytes = 4096

// ReadTokenFile returns the bearer token in path (webhook.token_file),
// whitespace trimmed. The error wraps ErrNoToken when the file is missing or
// empty, ErrTokenMode, naming the file and its mode, when the mode lets
// others write it or everyone read it, and ErrTokenOwner when it belongs to
// neither root nor the agent's own user. Symbolic links are followed (a
// Kubernetes Secret volume is made of them); the mode checked is the target's.
func ReadTokenFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("webhook.token_file %s: missing: %w", path, ErrNoToken)
	}
	if err != nil {
		return nil, fmt.Errorf("webhook.token_file %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("webhook.token_file %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("webhook.token_file %s: %s is not a regular file", path, st.Mode())
	}
	if perm := st.Mode().Perm(); perm&unsafeTokenBits != 0 {
		return nil, fmt.Errorf("webhook.token_file %s: mode %04o: %s; want 0600, or 0640 with group %s: %w",
			path, perm, tokenModeProblem(perm), TokenGroup, ErrTokenMode)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && sys.Uid != 0 && int(sys.Uid) != os.Geteuid() {
		return nil, fmt.Errorf("webhook.token_file %s: owner uid %d may rewrite it; want owner root: %w",
			path, sys.Uid, ErrTokenOwner)
	}
	// A token is a line; the cap keeps a wrong path (a huge file) harmless.
	b, err := io.ReadAll(io.LimitReader(f, maxTokenBytes+1))
	if err != nil {
		return nil, fmt.Errorf("webhook.token_file %s: %w", path, err)
	}
	if len(b) > maxTokenBytes {
		return nil, fmt.Errorf("webhook.token_file %s: longer than %d bytes, want one token line", path, maxTokenBytes)
	}
	tok := bytes.TrimSpace(b)
	if len(tok) == 0 {
		return nil, fmt.Errorf("webhook.token_file %s: empty: %w", path, ErrNoToken)
	}
	return tok, nil
}

func tokenModeProblem(perm fs.FileMode) string {
	switch {
	case perm&0o002 != 0:
		return "anyone may write it"
	case perm&0o020 != 0:
		return "its group may write it"
	default:
		return "anyone may read it"
	}
}
