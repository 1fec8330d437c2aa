package httpretrieve

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzRetrieveHandler posts arbitrary bodies to the handler: every answer is
// 200 with a {"result": [...]} of one list per query, or 400 with
// {"error": "..."}; never a panic, never another status.
func FuzzRetrieveHandler(f *testing.F) {
	for _, seed := range []string{
		`{"queries": ["apple pie"], "topk": 3, "return_scores": true}`,
		`{"queries": ["plum", ""], "return_scores": false}`,
		`{"queries": [], "topk": null}`,
		`{"queries": ["a"], "topk": 0}`,
		`{"queries": "x"}`, `[]`, `{`, ``,
	} {
		f.Add(seed)
	}
	h := NewHandler(smallIndex(f), ServerOptions{Logger: quietLogger(), MaxBodyBytes: 4096, MaxTopK: 20})
	f.Fuzz(func(t *testing.T, body string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/retrieve", strings.NewReader(body)))
		switch rec.Code {
		case http.StatusOK:
			var req struct{ Queries []string }
			json.Unmarshal([]byte(body), &req)
			var resp struct{ Result []json.RawMessage }
			if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || len(resp.Result) != len(req.Queries) {
				t.Fatalf("200 for %q with body %s", body, rec.Body.Bytes())
			}
		case http.StatusBadRequest:
			var e struct{ Error string }
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
				t.Fatalf("400 for %q without a JSON error: %s", body, rec.Body.Bytes())
			}
		default:
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body.Bytes())
		}
	})
}
