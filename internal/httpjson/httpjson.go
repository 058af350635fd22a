// Package httpjson writes the JSON answers of egressguard's HTTP endpoints:
// the agent's status and socket API and the Alertmanager webhook.
package httpjson

import (
	"encoding/json"
	"net/http"
)

// ErrorBody is the body of every error answer: {"error": "..."}.
type ErrorBody struct {
	Error string `json:"error"`
}

// Write answers with status code and v encoded as JSON (one line). An
// encoding or write error is dropped: the status line has gone out and the
// client may be gone, so there is no one left to tell.
func Write(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteError answers with status code and ErrorBody{msg}.
func WriteError(w http.ResponseWriter, code int, msg string) {
	Write(w, code, ErrorBody{msg})
}
