package alerts

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/egressguard/egressguard/agent/policy"
	"github.com/egressguard/egressguard/internal/httpjson"
)

// DefaultMaxBody is the webhook body limit when HandlerConfig.MaxBody is 0.
const DefaultMaxBody = 1 << 20

// Sink carries out requests; the agent implements it. It must be safe for
// concurrent use and idempotent by Request.Fingerprint. An error wrapping
// policy.ErrRefused is a policy refusal (observe mode, paused, action budget,
// whitelist): the handler still answers 200 and counts the request as
// refused, because Alertmanager retries 5xx answers and retrying a refusal
// would only repeat it. Any other error is transient and makes the handler
// answer 500 so that Alertmanager retries.
type Sink interface {
	// Mitigate asks for the throttle a firing alert requests.
	Mitigate(ctx context.Context, r Request) error
	// Release drops what the alert asked for once it resolves.
	Release(ctx context.Context, r Request) error
}

// HandlerConfig configures NewHandler.
type HandlerConfig struct {
	// Token returns the bearer token callers must present; it is called on every
	// request so that a rotated token file takes effect. Surrounding whitespace is
	// ignored. An empty token refuses every request.
	Token func() []byte
	// Node is this agent's node name, matched against the alerts' node or instance label.
	Node string
	// Watched returns the interfaces the agent watches, used for alerts that name
	// none. Nil means none.
	Watched func() []string
	// MaxBody limits the request body in bytes; 0 means DefaultMaxBody.
	MaxBody int64
	// Sink carries out the requests.
	Sink Sink
	// Logger receives one line per request and per decision; nil discards.
	Logger *slog.Logger
}

// Handler is the Alertmanager webhook endpoint (POST /api/v1/alertmanager).
type Handler struct {
	cfg HandlerConfig
}

// Summary is the JSON body of a 200 (or, with failures, 500) answer.
type Summary struct {
	Alerts   int    `json:"alerts"`   // alerts in the payload
	Accepted int    `json:"accepted"` // requests the Sink carried out (or already had)
	Ignored  int    `json:"ignored"`  // alerts not for this agent, or repeated in the payload
	Refused  int    `json:"refused"`  // requests the Sink refused by policy
	Failed   int    `json:"failed"`   // requests that failed transiently
	Error    string `json:"error,omitempty"`
}

// NewHandler validates cfg and returns the webhook handler.
func NewHandler(cfg HandlerConfig) (*Handler, error) {
	switch {
	case cfg.Token == nil:
		return nil, errors.New("alerts: handler config Token: nil, want a token source")
	case cfg.Node == "":
		return nil, errors.New(`alerts: handler config Node "": want this node's name`)
	case cfg.Sink == nil:
		return nil, errors.New("alerts: handler config Sink: nil, want a sink")
	case cfg.MaxBody < 0:
		return nil, fmt.Errorf("alerts: handler config MaxBody %d: want 0 (default) or more", cfg.MaxBody)
	}
	if cfg.MaxBody == 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.Watched == nil {
		cfg.Watched = func() []string { return nil }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{cfg: cfg}, nil
}

// ServeHTTP answers 405 to anything but POST, 401 without the right bearer
// token, 413 to a body over the limit, 400 to a malformed payload, 500 when a
// request failed transiently, and 200 with a Summary otherwise: accepted,
// repeated, refused and not-for-this-node alerts alike.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	log := h.cfg.Logger.With("remote", r.RemoteAddr)
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.fail(w, log, http.StatusMethodNotAllowed, fmt.Sprintf("method %s: want POST", r.Method))
		return
	}
	if msg := h.authenticate(r); msg != "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="egressguard"`)
		h.fail(w, log, http.StatusUnauthorized, msg)
		return
	}
	if r.ContentLength > h.cfg.MaxBody {
		h.fail(w, log, http.StatusRequestEntityTooLarge, fmt.Sprintf("body of %d bytes: limit %d", r.ContentLength, h.cfg.MaxBody))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBody))
	if err != nil {
		if tooLarge := (*http.MaxBytesError)(nil); errors.As(err, &tooLarge) {
			h.fail(w, log, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over the limit of %d bytes", h.cfg.MaxBody))
			return
		}
		h.fail(w, log, http.StatusBadRequest, fmt.Sprintf("read body: %v", err))
		return
	}
	p, err := Decode(bytes.NewReader(body))
	if err != nil {
		h.fail(w, log, http.StatusBadRequest, err.Error())
		return
	}
	sum := h.apply(r.Context(), log.With("group_key", p.GroupKey), p)
	status := http.StatusOK
	if sum.Failed > 0 {
		status = http.StatusInternalServerError
	}
	log.Info("alertmanager webhook", "status", status, "alerts", sum.Alerts, "accepted", sum.Accepted,
		"ignored", sum.Ignored, "refused", sum.Refused, "failed", sum.Failed, "truncated_alerts", p.TruncatedAlerts)
	httpjson.Write(w, status, sum)
}

// authenticate returns why the request is not authenticated, or "".
func (h *Handler) authenticate(r *http.Request) string {
	return Authenticate(r, h.cfg.Token())
}

// Authenticate returns why r does not carry the bearer token want, or ""
// when it does. Surrounding whitespace of want is ignored; an empty want
// refuses every request. The agent uses it for the webhook and for the
// attribution in /api/v1/status.
func Authenticate(r *http.Request, want []byte) string {
	want = bytes.TrimSpace(want)
	if len(want) == 0 {
		return "no webhook token configured on this node"
	}
	scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "missing bearer token"
	}
	// Hashing first makes the comparison constant-time in the length too.
	gotSum, wantSum := sha256.Sum256([]byte(strings.TrimSpace(got))), sha256.Sum256(want)
	if subtle.ConstantTimeCompare(gotSum[:], wantSum[:]) != 1 {
		return "wrong bearer token"
	}
	return ""
}

// apply hands every request of p to the Sink and counts the outcomes.
func (h *Handler) apply(ctx context.Context, log *slog.Logger, p Payload) Summary {
	sum := Summary{Alerts: len(p.Alerts)}
	for _, m := range mapAlerts(p, h.cfg.Node, h.cfg.Watched()) {
		if m.skip != "" {
			sum.Ignored++
			log.Info("webhook alert ignored", "fingerprint", m.alert.Fingerprint, "alertname", m.alert.Labels["alertname"], "why", m.skip)
			continue
		}
		req := m.req
		var err error
		if req.Action == ActionThrottle {
			err = h.cfg.Sink.Mitigate(ctx, req)
		} else {
			err = h.cfg.Sink.Release(ctx, req)
		}
		attrs := []any{"fingerprint", req.Fingerprint, "alertname", req.Alertname, "action", req.Action, "interfaces", req.Interfaces}
		switch {
		case err == nil:
			sum.Accepted++
			log.Info("webhook request accepted", attrs...)
		case errors.Is(err, policy.ErrRefused):
			sum.Refused++
			log.Warn("webhook request refused", append(attrs, "err", err)...)
		default:
			sum.Failed++
			if sum.Error == "" {
				sum.Error = err.Error()
			}
			log.Error("webhook request failed", append(attrs, "err", err)...)
		}
	}
	return sum
}

func (h *Handler) fail(w http.ResponseWriter, log *slog.Logger, status int, msg string) {
	log.Warn("alertmanager webhook rejected", "status", status, "why", msg)
	httpjson.WriteError(w, status, msg)
}
