package trajectory

import "testing"

func TestCheck(t *testing.T) {
	ok := &Trajectory{Tokens: []int64{1, 2, 3, 4}, PromptLen: 2, Roles: make([]int64, 4),
		Policy: []bool{false, true, true, false}, LogProbs: []float64{0, -1, -2, 0}}
	if err := ok.Check(); err != nil {
		t.Fatal(err)
	}
	if ok.PolicyTokens() != 2 || ok.ResponseTokens() != 2 {
		t.Fatalf("counts %d %d", ok.PolicyTokens(), ok.ResponseTokens())
	}
	bad := *ok
	bad.Policy = []bool{true, true, true, false}
	if bad.Check() == nil {
		t.Fatal("a policy flag on a prompt prediction passed")
	}
	bad = *ok
	bad.Roles = bad.Roles[:3]
	if bad.Check() == nil {
		t.Fatal("misaligned roles passed")
	}
	bad = *ok
	bad.LogProbs = []float64{0, -1, -2, -3}
	if bad.Check() == nil {
		t.Fatal("a log-prob at the last position passed")
	}
}
