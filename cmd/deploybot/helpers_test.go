package main

import (
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/seed-5eb4e92e/deploybot/authz"
)

func policyFromYAML(t *testing.T, src string) authz.Policy {
	t.Helper()
	var p authz.Policy
	if err := yaml.Unmarshal([]byte(src), &p); err != nil {
		t.Fatal(err)
	}
	return p
}
