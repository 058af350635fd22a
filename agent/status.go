package agent

import (
	"context"
	"net/http"

	"github.com/egressguard/egressguard/agent/control"
	"github.com/egressguard/egressguard/internal/httpjson"
)

// Status is the agent's full status: the state file and kernel joined with
// each watched interface's latest verdict and evidence.
func (a *Agent) Status(ctx context.Context) (control.Status, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	st, err := a.ctl.Status(ctx, a.cfg.Mode)
	if err != nil {
		return control.Status{}, err
	}
	st.Agent = true
	for _, name := range a.deps.Interfaces {
		v, ok := a.last[name]
		if !ok {
			st.Interfaces = append(st.Interfaces, control.InterfaceStatus{Name: name, Verdict: "clean", Blind: a.blindReason(name),
				Watched: a.deps.Watched[name].Reason, Bridge: a.deps.Watched[name].Bridge})
			continue
		}
		e := v.Verdict.Evidence
		is := control.InterfaceStatus{
			Name: name, TxBps: e.TxBps, TxPps: e.TxPps, SynOutPps: e.SynOutPps, SynAckInPps: e.SynAckInPps,
			Verdict: string(v.Verdict.State), Reasons: v.Verdict.Reasons, Evidence: &e,
			Blind: a.blindReason(name), Watched: a.deps.Watched[name].Reason, Bridge: a.deps.Watched[name].Bridge,
			Signature: v.Verdict.Signature, Keys: v.Verdict.Keys,
		}
		if v.Attribution != nil {
			is.Attribution = v.Attribution
		}
		st.Interfaces = append(st.Interfaces, is)
	}
	return st, nil
}

// serveStatus answers the status; attribution (who sends a flood: source
// MACs and bridge ports, local processes' pid, exe and command line) is
// included only when mayAttribute allows the request, and withheld, with
// attribution_withheld set, otherwise.
func (a *Agent) serveStatus(mayAttribute func(*http.Request) bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		st, err := a.Status(r.Context())
		if err != nil {
			httpjson.WriteError(w, http.StatusInternalServerError, err.Error())
			return
		}
		if !mayAttribute(r) {
			for i := range st.Interfaces {
				if st.Interfaces[i].Attribution != nil {
					st.Interfaces[i].Attribution = nil
					st.AttributionWithheld = true
				}
			}
		}
		httpjson.Write(w, http.StatusOK, st)
	}
}
