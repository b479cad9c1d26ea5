package gerrittest

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

// accountRef is an AccountInfo's id.
type accountRef struct {
	ID int64 `json:"_account_id"`
}

// labelSummary is the part of a LabelInfo that renderLabels decides.
type labelSummary struct {
	Approved    *accountRef
	Rejected    *accountRef
	Recommended *accountRef
	Disliked    *accountRef
	Blocking    bool
	Value       *int
	All         []struct {
		ID    int64 `json:"_account_id"`
		Value *int
		Date  string
	}
}

// labelsOf reads a change's labels over HTTP with opts ("LABELS", …).
func labelsOf(t *testing.T, s *Server, project string, number int, opts ...string) map[string]labelSummary {
	t.Helper()
	path := "a/changes/" + encodeKey(project) + "~" + strconv.Itoa(number) + "?o=" + strings.Join(opts, "&o=")
	resp, body := get(t, "GET", s.URL+path, "", "", "")
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	var ci struct{ Labels map[string]labelSummary }
	if err := json.Unmarshal([]byte(strings.TrimPrefix(body, ")]}'")), &ci); err != nil {
		t.Fatal(err)
	}
	return ci.Labels
}

// id is the account's id, 0 for none.
func id(a *accountRef) int64 {
	if a == nil {
		return 0
	}
	return a.ID
}

// TestLabelSummaryFollowsLabelsJson checks the summary rules of
// LabelsJson.initLabels and setLabelScores on Code-Review (-2..+2), with
// votes cast in order.
func TestLabelSummaryFollowsLabelsJson(t *testing.T) {
	t.Parallel()
	rae := Account{ID: 1000099, Username: "rae"}
	ci := Account{ID: 1000098, Username: "ci"}
	tests := []struct {
		name  string
		votes [2]int // rae's, then ci's; 0 is no vote
		// want names who fills each field: 0 nobody, 1 rae, 2 ci.
		approved, rejected, recommended, disliked int
		value                                     int // 0 means unset
	}{
		{name: "max then min: only rejected", votes: [2]int{2, -2}, rejected: 2},
		{name: "min then max: only rejected", votes: [2]int{-2, 2}, rejected: 1},
		{name: "two max: the last approves", votes: [2]int{2, 2}, approved: 2},
		{name: "max hides a dislike", votes: [2]int{2, -1}, approved: 1},
		{name: "+1 sets value", votes: [2]int{1, 0}, recommended: 1, value: 1},
		{name: "-1 sets value", votes: [2]int{0, -1}, disliked: 2, value: -1},
		{name: "dislike after a recommendation", votes: [2]int{1, -1}, recommended: 1, disliked: 2, value: -1},
		{name: "dislike first wins", votes: [2]int{-1, 1}, disliked: 1, value: -1},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := Start(Options{})
			defer s.Close()
			who := []Account{{}, rae, ci}
			var votes []Vote
			for j, v := range tc.votes {
				if v != 0 {
					votes = append(votes, Vote{Label: "Code-Review", Value: v, By: who[j+1]})
				}
			}
			s.AddChange(Change{Project: "p", Number: i + 1, Votes: votes})
			cr := labelsOf(t, s, "p", i+1, "LABELS")["Code-Review"]
			got := [4]int64{id(cr.Approved), id(cr.Rejected), id(cr.Recommended), id(cr.Disliked)}
			want := [4]int64{who[tc.approved].ID, who[tc.rejected].ID, who[tc.recommended].ID, who[tc.disliked].ID}
			if got != want || cr.Blocking != (tc.rejected != 0) {
				t.Errorf("approved, rejected, recommended, disliked = %v, want %v; blocking %v", got, want, cr.Blocking)
			}
			if value := cr.Value; (value == nil) != (tc.value == 0) || value != nil && *value != tc.value {
				t.Errorf("value = %v, want %d (0: unset)", value, tc.value)
			}
		})
	}
}

// TestMergedLabelsListVotersWithZeros checks labelsForSubmittedChange's
// all[]: only voters, each with value 0 on the labels they did not vote on.
func TestMergedLabelsListVotersWithZeros(t *testing.T) {
	t.Parallel()
	s := Start(Options{})
	defer s.Close()
	rae, ann := Account{ID: 1000099, Username: "rae"}, Account{ID: 1000096, Username: "ann"}
	votes := []Vote{{Label: "Code-Review", Value: 2, By: rae}, {Label: "Code-Review", Value: 1, By: ann}, {Label: "Code-Review", Value: 0, By: ann}}
	for n, status := range map[int]string{1: "NEW", 2: "MERGED"} {
		s.AddChange(Change{Project: "p", Number: n, Status: status, Votes: votes})
		labels := labelsOf(t, s, "p", n, "LABELS")
		for name, l := range labels {
			var ids []int64
			for _, a := range l.All {
				ids = append(ids, a.ID)
				voted := name == "Code-Review" && a.ID == rae.ID
				switch {
				case voted && (a.Value == nil || *a.Value != 2 || a.Date == ""):
					t.Errorf("%s %s: rae's vote = %v", status, name, a.Value)
				case !voted && status == "MERGED" && (a.Value == nil || *a.Value != 0 || a.Date != ""):
					t.Errorf("%s %s: account %d has %v, want value 0 and no date", status, name, a.ID, a.Value)
				case !voted && status == "NEW" && a.Value != nil:
					t.Errorf("%s %s: account %d has value %d, want none", status, name, a.ID, *a.Value)
				}
			}
			// Ann reset her vote: a reviewer still, no longer a voter.
			wantAnn := status == "NEW"
			if len(ids) != 1+btoi(wantAnn) || ids[0] != rae.ID {
				t.Errorf("%s %s: all[] lists %v", status, name, ids)
			}
		}
		if cr := labels["Code-Review"]; id(cr.Approved) != rae.ID {
			t.Errorf("%s: Code-Review approved by %d", status, id(cr.Approved))
		}
	}
	merged := labelsOf(t, s, "p", 2, "DETAILED_LABELS")["Code-Review"]
	if merged.Approved != nil || len(merged.All) != 1 {
		t.Errorf("merged, DETAILED_LABELS only: %+v, want all[] without a summary", merged)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestDecodeKeyFollowsKeyUtil checks decodeKey against the rules of
// KeyUtil.decode: "%" not followed by two hex digits is kept, "%XX" is a
// byte, "+" is a space.
func TestDecodeKeyFollowsKeyUtil(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"platform%2Fapi": "platform/api", "platform%2fapi": "platform/api",
		"libs/c++": "libs/c  ", "libs%2Fc%2B%2B": "libs/c++", "a+b%20c": "a b c",
		"100%": "100%", "a%zzb": "a%zzb", "a%2": "a%2", "%%41": "%A", "%": "%",
	} {
		if got := decodeKey(in); got != want {
			t.Errorf("decodeKey(%q) = %q, want %q", in, got, want)
		}
	}
	for _, name := range []string{"platform/api", "libs/c++", "a b+c", "ü/x*y", "a~b"} {
		if got := decodeKey(encodeKey(name)); got != name {
			t.Errorf("decodeKey(encodeKey(%q)) = %q", name, got)
		}
	}
}
