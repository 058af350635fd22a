package config

import (
	"errors"
	"net/netip"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/egressguard/egressguard/shaper"
)

// Rate is a rate in bits per second, written in tc's notation ("1mbit").
type Rate uint64

// Duration is a positive time.Duration written as "30m".
type Duration time.Duration

// Count is a whole number of things (intervals, sources, actions), written
// as an integer: 2.5 is an error, not 2.
type Count int

// Port is a TCP/UDP port, 1 to 65535.
type Port uint16

// Prefix is an IP prefix written as a CIDR or a bare address.
type Prefix netip.Prefix

// valueError is a scalar that did not parse; Load turns its position into the
// dotted name of the field.
type valueError struct {
	line, column int
	err          error
}

func (e *valueError) Error() string { return e.err.Error() }

func scalar[T any](n *yaml.Node, parse func(string) (T, error)) (T, error) {
	var zero T
	switch n.Kind {
	case yaml.ScalarNode:
	case yaml.SequenceNode:
		return zero, &valueError{n.Line, n.Column, errors.New("want a single value, got a list")}
	default:
		return zero, &valueError{n.Line, n.Column, errors.New("want a single value, got a mapping")}
	}
	v, err := parse(n.Value)
	if err != nil {
		return zero, &valueError{n.Line, n.Column, err}
	}
	return v, nil
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (r *Rate) UnmarshalYAML(n *yaml.Node) error {
	v, err := scalar(n, ParseRate)
	*r = Rate(v)
	return err
}

// MarshalYAML implements yaml.Marshaler.
func (r Rate) MarshalYAML() (any, error) { return shaper.FormatRate(uint64(r)), nil }

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := scalar(n, ParseDuration)
	*d = Duration(v)
	return err
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// UnmarshalYAML implements yaml.Unmarshaler.
func (c *Count) UnmarshalYAML(n *yaml.Node) error {
	v, err := scalar(n, ParseCount)
	*c = Count(v)
	return err
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (p *Port) UnmarshalYAML(n *yaml.Node) error {
	v, err := scalar(n, ParsePort)
	*p = Port(v)
	return err
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (p *Prefix) UnmarshalYAML(n *yaml.Node) error {
	v, err := scalar(n, ParsePrefix)
	*p = Prefix(v)
	return err
}

// MarshalYAML implements yaml.Marshaler.
func (p Prefix) MarshalYAML() (any, error) { return netip.Prefix(p).String(), nil }

// Ports converts a list of Port to plain port numbers.
func Ports(ps []Port) []uint16 {
	out := make([]uint16, len(ps))
	for i, p := range ps {
		out[i] = uint16(p)
	}
	return out
}

// Prefixes converts a list of Prefix to netip prefixes.
func Prefixes(ps []Prefix) []netip.Prefix {
	out := make([]netip.Prefix, len(ps))
	for i, p := range ps {
		out[i] = netip.Prefix(p)
	}
	return out
}
