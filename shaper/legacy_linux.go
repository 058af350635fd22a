package shaper

import "fmt"

// Releases before the clsact layout replaced the interface's root qdisc
// with htb handle e9: and recorded the root they replaced in the state
// file (Previous.Kind, Handle, Options). ourLegacyRoot recognises that
// root; restore puts the recorded one back. Nothing here installs it.

// restore deletes the legacy root (if it is there) and makes the root qdisc
// what prev says: deleting our root makes the kernel attach the device
// default, which is kept when it is prev's kind, else prev is recreated
// from its raw options. An empty prev keeps the device default.
func (s *Shaper) restore(idx uint32, dev string, prev Previous) error {
	root, err := s.root(idx)
	if err != nil {
		return err
	}
	if ourLegacyRoot(root) {
		if err := s.write(fmt.Sprintf("delete legacy root qdisc %s on %s", RootHandle, dev), func() error {
			return s.deleteQdisc(idx, HandleRoot, RootHandle)
		}); err != nil {
			return err
		}
	}
	if prev.Kind == "" {
		return nil
	}
	restored := func(r rawQdisc) bool {
		return r.Kind == prev.Kind && (prev.Handle == 0 || r.Handle == Handle(prev.Handle))
	}
	if root, err = s.root(idx); err != nil || restored(root) {
		return err
	}
	want := rawQdisc{Parent: HandleRoot, Handle: Handle(prev.Handle), Kind: prev.Kind, Options: prev.Options}
	if err := s.write(fmt.Sprintf("restore root qdisc %s %s on %s", prev.Kind, want.Handle, dev), func() error {
		return s.putQdisc(idx, want)
	}); err != nil {
		return err
	}
	if root, err = s.root(idx); err != nil {
		return err
	}
	if !restored(root) {
		return fmt.Errorf("shaper: restore root qdisc on %s: kernel holds %s %s, want %s %s", dev, root.Kind, root.Handle, prev.Kind, want.Handle)
	}
	return nil
}
