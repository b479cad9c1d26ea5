// Package commands is the grammar of the /deploy slash command: it turns the
// text a user typed into a typed Request, and generates help from the same
// table, so the two never disagree. It does no I/O.
package commands

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Request is a parsed /deploy invocation. It is stored with queued jobs, so
// its JSON form is part of the queue's format.
type Request struct {
	// Kind is the name of the command that parsed it: "build", "status", …
	Kind string `json:"kind"`
	// Action is the permission verb the request needs; empty for read-only
	// commands that anyone in the workspace may run.
	Action  string `json:"action,omitempty"`
	Service string `json:"service,omitempty"`
	Ref     string `json:"ref,omitempty"`
	Env     string `json:"env,omitempty"`
	// From is the environment a promote takes its artifact from.
	From string `json:"from,omitempty"`
	// Change is a Gerrit change number.
	Change int `json:"change,omitempty"`
	// Topic is the command a help request asks about.
	Topic string `json:"topic,omitempty"`
	// Reason and For are a lock's reason and how long it holds.
	Reason string        `json:"reason,omitempty"`
	For    time.Duration `json:"for,omitempty"`
	// User is the Slack user a command is about (audit), and Count how
	// many entries it shows.
	User  string `json:"user,omitempty"`
	Count int    `json:"count,omitempty"`
	// Perms is a /deploy perms command.
	Perms *PermsRequest `json:"perms,omitempty"`
}

// Permission is what a request needs to be allowed. A request that does not
// name its service (a Gerrit change, until its project is looked up) asks
// for the action on some service; the worker checks the exact one.
func (r Request) Permission() Permission {
	if r.Action == "admin" {
		// admin is not limited to a service: /deploy audit api filters
		// by service but needs plain admin.
		return Permission{Action: r.Action}
	}
	return Permission{Action: r.Action, Service: r.Service, Env: r.Env}
}

// String describes the request the way messages show it: "build api@main".
func (r Request) String() string {
	var b strings.Builder
	b.WriteString(r.Kind)
	if r.Change > 0 {
		b.WriteString(fmt.Sprintf(" change %d", r.Change))
	}
	if r.Service != "" {
		b.WriteString(" " + r.Service)
		if r.Ref != "" {
			b.WriteString("@" + r.Ref)
		}
	}
	if r.From != "" {
		b.WriteString(" from " + r.From)
	}
	if r.Env != "" {
		b.WriteString(" to " + r.Env)
	}
	return b.String()
}

// Permission names an action on a service, optionally in an environment.
// Its string form is what policies match: "build:api", "deploy:staging:api".
type Permission struct {
	Action  string
	Service string
	Env     string
}

// AnyService reports whether the permission names no service (and no
// environment): it asks whether the action is allowed on some service.
func (p Permission) AnyService() bool { return p.Action != "" && p.Service == "" && p.Env == "" }

// ReadOnly reports whether the permission needs no grant.
func (p Permission) ReadOnly() bool { return p.Action == "" }

// String is the permission's policy form: "build:api",
// "deploy:staging:api", "lock:prod" for an action on an environment as a
// whole, or "admin" for one on nothing in particular.
func (p Permission) String() string {
	switch {
	case p.Env == "" && p.Service == "":
		return p.Action
	case p.Env == "":
		return p.Action + ":" + p.Service
	case p.Service == "":
		return p.Action + ":" + p.Env
	}
	return p.Action + ":" + p.Env + ":" + p.Service
}

// Service is what the grammar needs to know about a configured service.
type Service struct {
	Name string
	// DefaultRef is built when a command names no ref. Defaults to "main".
	DefaultRef string
	// Envs are the environments the service is deployed to, in the
	// catalog's order.
	Envs []string
}

// DeploysTo reports whether the service is deployed to env.
func (s Service) DeploysTo(env string) bool { return slices.Contains(s.Envs, env) }

// Catalog is the configuration the parser checks names against.
type Catalog struct {
	Services     []Service
	Environments []string
}

// Service returns the configured service called name.
func (c Catalog) Service(name string) (Service, bool) {
	for _, s := range c.Services {
		if s.Name == name {
			if s.DefaultRef == "" {
				s.DefaultRef = "main"
			}
			return s, true
		}
	}
	return Service{}, false
}

// Next is the environment after env in the catalog's order that svc is
// deployed to: where Promote goes.
func (c Catalog) Next(svc Service, env string) (string, bool) {
	i := slices.Index(c.Environments, env)
	if i < 0 {
		return "", false
	}
	for _, e := range c.Environments[i+1:] {
		if svc.DeploysTo(e) {
			return e, true
		}
	}
	return "", false
}

// Previous is the environment before env that svc is deployed to: where
// a promote to env takes its artifact from when none is named.
func (c Catalog) Previous(svc Service, env string) (string, bool) {
	i := slices.Index(c.Environments, env)
	for j := i - 1; j >= 0; j-- {
		if svc.DeploysTo(c.Environments[j]) {
			return c.Environments[j], true
		}
	}
	return "", false
}

// ServiceNames lists the configured services, sorted.
func (c Catalog) ServiceNames() []string {
	names := make([]string, 0, len(c.Services))
	for _, s := range c.Services {
		names = append(names, s.Name)
	}
	sort.Strings(names)
	return names
}

// UsageError is a parse error whose text is meant for the user who typed
// the command; it never contains anything but what they typed and the
// configured names.
type UsageError struct {
	// Msg says what is wrong, in one sentence.
	Msg string
	// Usage is the relevant usage line(s), if any.
	Usage string
}

// Error is the message followed by the usage, ready for Slack.
func (e *UsageError) Error() string {
	if e.Usage == "" {
		return e.Msg
	}
	return e.Msg + "\n" + e.Usage
}

func usageErrorf(usage, format string, args ...any) *UsageError {
	return &UsageError{Msg: fmt.Sprintf(format, args...), Usage: usage}
}
