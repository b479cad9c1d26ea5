// Package deploy holds deploybot's pipelines: build a service with its
// Jenkins job, read the artifact it made, run one-off tasks (migrations) on
// Mesos, roll the artifact out on Marathon, verify its health and roll back
// when it fails; promote a verified artifact to the next environment.
// Every external call is recorded in the job's steps before the next one,
// so a job picked up again after a worker died continues what was started
// (follows the same build, the same Marathon deployment) instead of
// starting it again.
package deploy

import (
	"context"
	"time"
)

// Steps is a job's durable step state; Set returns only once the value is
// stored.
type Steps interface {
	Get(ctx context.Context, name string) (string, error)
	Set(ctx context.Context, name, value string) error
}

// Progress is what a step reports while it runs.
type Progress struct {
	// Stage is a few words: "waiting for an executor", "building".
	Stage string
	// Link and LinkText point at what runs, e.g. a build and "#42".
	Link     string
	LinkText string
	// Links are more places to look (a migration's sandbox, the Marathon
	// app); each replaces an earlier one of its Kind.
	Links []Link
	// Artifact is what is being deployed, once known.
	Artifact string
}

// Link is a labelled URL; Kind ("build", "task", "app") says which earlier
// link it replaces.
type Link struct {
	Kind, Text, URL string
}

// Wait is returned by a step that cannot go on yet (an environment is
// locked, another deploy is running) and wants its job run again After,
// without counting a failed attempt. Stage says what it waits for.
type Wait struct {
	Stage string
	After time.Duration
}

// Error says what the job waits for.
func (w *Wait) Error() string { return "waiting: " + w.Stage }

// Failure is an error whose Msg can be shown in Slack as it is; Err keeps
// the details for the logs.
type Failure struct {
	Msg string
	Err error
}

// Error is the message followed by the cause.
func (f *Failure) Error() string {
	if f.Err == nil {
		return f.Msg
	}
	return f.Msg + ": " + f.Err.Error()
}

// Unwrap returns the cause, so callers can still tell whether to retry.
func (f *Failure) Unwrap() error { return f.Err }
