// Package anonns creates anonymous network namespaces for kernel feature
// probes: entered by no thread and named nowhere, so the kernel frees one
// when its last handle closes, even if the process dies midway, and nothing
// is ever left behind.
package anonns
