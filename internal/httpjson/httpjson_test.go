package httpjson

import (
	"net/http/httptest"
	"testing"
)

func TestWriteError(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteError(rec, 413, "body over the limit")
	if rec.Code != 413 || rec.Header().Get("Content-Type") != "application/json" || rec.Body.String() != "{\"error\":\"body over the limit\"}\n" {
		t.Errorf("got %d %q %q", rec.Code, rec.Header().Get("Content-Type"), rec.Body.String())
	}
}
