// Package e2e holds the end-to-end tests of egressguard: the real agent
// binary in the namespace lab of internal/lab, real floods and benign
// traffic, and the kernel (tc, nftables) as the oracle. They need root and
// skip otherwise, and skip with -short.
package e2e
