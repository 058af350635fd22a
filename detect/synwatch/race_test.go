//go:build race

package synwatch

// raceDetector is true in a -race build. The race detector slows the
// user-space path several times over, so under a full-speed flood it falls
// behind the ring and the estimates no longer measure the capture's
// accuracy; make test runs it in its pass without -race.
const raceDetector = true
