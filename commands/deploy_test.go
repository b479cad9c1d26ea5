package commands

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var deployCatalog = Catalog{
	Services: []Service{
		{Name: "api", DefaultRef: "main", Envs: []string{"dev", "staging", "prod"}},
		{Name: "web", DefaultRef: "trunk", Envs: []string{"staging", "prod"}},
		{Name: "tool"},
	},
	Environments: []string{"dev", "staging", "prod"},
}

func TestParseDeployCommands(t *testing.T) {
	t.Parallel()
	tab := testTable(t)
	tests := []struct {
		name    string
		text    string
		want    Request
		wantErr string
	}{
		{name: "short form", text: "api feature/login to staging", want: Request{Kind: "deploy", Action: "deploy", Service: "api", Ref: "feature/login", Env: "staging"}},
		{name: "short form default ref", text: "web to prod", want: Request{Kind: "deploy", Action: "deploy", Service: "web", Ref: "trunk", Env: "prod"}},
		{name: "long form", text: "deploy API main to Staging", want: Request{Kind: "deploy", Action: "deploy", Service: "api", Ref: "main", Env: "staging"}},
		{name: "no env", text: "api feature/login", wantErr: "Deploy api where? Add `to <env>`; it is deployed to dev, staging, prod. To only build it, use `build api feature/login`."},
		{name: "env the service lacks", text: "web main to dev", wantErr: "web is not deployed to dev; it is deployed to staging, prod."},
		{name: "service with no envs", text: "tool to dev", wantErr: "it has no environments configured"},
		{name: "unknown env", text: "api main to prdo", wantErr: "Did you mean `prod`?"},
		{name: "words after env", text: "api main to prod now", wantErr: "I read `deploy` as"},
		{name: "two refs", text: "api a b to prod", wantErr: "I read `deploy` as"},
		{name: "bad ref", text: "api a..b to prod", wantErr: "cannot contain .."},
		{name: "ref named to", text: "api to", wantErr: "I read `deploy` as"},
		{name: "promote named", text: "promote api staging to prod", want: Request{Kind: "promote", Action: "promote", Service: "api", From: "staging", Env: "prod"}},
		{name: "promote from previous", text: "promote api to prod", want: Request{Kind: "promote", Action: "promote", Service: "api", From: "staging", Env: "prod"}},
		{name: "promote skips envs the service lacks", text: "promote web to prod", want: Request{Kind: "promote", Action: "promote", Service: "web", From: "staging", Env: "prod"}},
		{name: "promote backwards", text: "promote api prod to dev", wantErr: "Promotion goes forward"},
		{name: "promote to first", text: "promote api to dev", wantErr: "nothing to promote from"},
		{name: "promote without to", text: "promote api staging prod", wantErr: "then `to <env>`"},
		{name: "rollback", text: "rollback api prod", want: Request{Kind: "rollback", Action: "rollback", Service: "api", Env: "prod"}},
		{name: "rollback without env", text: "rollback api", wantErr: "takes a service and an environment"},
		{name: "history", text: "history api", want: Request{Kind: "history", Service: "api"}},
		{name: "history env", text: "history api prod", want: Request{Kind: "history", Service: "api", Env: "prod"}},
		{name: "lock", text: "lock prod", want: Request{Kind: "lock", Action: "lock", Env: "prod", For: DefaultLockFor}},
		{name: "lock reason and time", text: "lock prod release freeze for 4h", want: Request{Kind: "lock", Action: "lock", Env: "prod", Reason: "release freeze", For: 4 * time.Hour}},
		{name: "lock days", text: "lock staging for 2d", want: Request{Kind: "lock", Action: "lock", Env: "staging", For: 48 * time.Hour}},
		// "for" then a non-duration is more likely a typo than a reason.
		{name: "lock reason ending in for", text: "lock prod waiting for QA", wantErr: `"QA" is not a duration`},
		{name: "lock too long", text: "lock prod for 30d", wantErr: "between a minute and a week"},
		{name: "lock unknown env", text: "lock prdo", wantErr: "Did you mean `prod`?"},
		{name: "unlock", text: "unlock prod", want: Request{Kind: "unlock", Action: "lock", Env: "prod"}},
		{name: "unlock nothing", text: "unlock", wantErr: "takes one environment"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := tab.Parse(tc.text, deployCatalog)
			if tc.wantErr != "" {
				var ue *UsageError
				if !errors.As(err, &ue) || !strings.Contains(ue.Error(), tc.wantErr) {
					t.Fatalf("Parse(%q) = %+v, %v; want an error containing %q", tc.text, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Parse(%q) = %+v, %v; want %+v", tc.text, got, err, tc.want)
			}
		})
	}
}

func TestEnvironmentPermissions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		p    Permission
		want string
		any  bool
	}{
		{Permission{Action: "lock", Env: "prod"}, "lock:prod", false},
		{Permission{Action: "deploy", Env: "prod", Service: "api"}, "deploy:prod:api", false},
		{Permission{Action: "recheck"}, "recheck", true},
	} {
		if tc.p.String() != tc.want || tc.p.AnyService() != tc.any {
			t.Errorf("%+v: %q any=%v, want %q any=%v", tc.p, tc.p.String(), tc.p.AnyService(), tc.want, tc.any)
		}
	}
}
