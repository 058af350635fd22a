package shaper

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestPreviousJSONRoundTrip(t *testing.T) {
	in := Previous{Kind: "tbf", Handle: 5 << 16, Options: []byte{1, 2, 3, 0xff}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out Previous
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip %s: got %+v, want %+v", b, out, in)
	}
}
