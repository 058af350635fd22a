package features

import "errors"

// ErrNotSupported marks a feature this kernel does not have.
var ErrNotSupported = errors.New("not supported by this kernel")
