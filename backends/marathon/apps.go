package marathon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"time"
)

// appEmbeds asks for the task list, counts and deployment ids explicitly:
// Marathon adds them by default today, but its docs say "Please define all
// embeds explicitly" because the default is deprecated.
var appEmbeds = url.Values{"embed": {"app.tasks", "app.counts", "app.deployments"}}

// App returns app id with its tasks (and their health), task counts and the
// deployments that hold it. An unknown app gives an error matching
// ErrNotFound.
func (c *Client) App(ctx context.Context, id string) (App, error) {
	if err := CheckAppID(id); err != nil {
		return App{}, err
	}
	r, err := c.call(ctx, http.MethodGet, appPath(id), appEmbeds, nil, http.StatusOK)
	if err != nil {
		return App{}, fmt.Errorf("marathon: app %s: %w", id, err)
	}
	app, err := decodeApp(r.body)
	if err != nil {
		return App{}, fmt.Errorf("marathon: app %s: %w", id, err)
	}
	return app, nil
}

// decodeApp reads GET /v2/apps/{id}'s {"app": {...}}.
func decodeApp(raw []byte) (App, error) {
	var w struct {
		App *App `json:"app"`
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		return App{}, fmt.Errorf("decode: %w", err)
	}
	if w.App == nil || w.App.ID == "" {
		return App{}, errors.New("decode: answer has no app")
	}
	return *w.App, nil
}

// AppVersion returns the definition app id had at version (no tasks or
// counts: those exist only for the current version).
func (c *Client) AppVersion(ctx context.Context, id, version string) (App, error) {
	if err := CheckAppID(id); err != nil {
		return App{}, err
	}
	if err := checkVersion(version); err != nil {
		return App{}, err
	}
	r, err := c.call(ctx, http.MethodGet, appPath(id)+"/versions/"+version, nil, nil, http.StatusOK)
	if err != nil {
		return App{}, fmt.Errorf("marathon: app %s version %s: %w", id, version, err)
	}
	var app App
	if err := json.Unmarshal(r.body, &app); err != nil || app.ID == "" {
		return App{}, fmt.Errorf("marathon: app %s version %s: decode: not an app (%v)", id, version, err)
	}
	return app, nil
}

// Versions lists the versions Marathon keeps of app id (by default the last
// 50, --zk_max_versions), newest first. Marathon lists them in the order its
// store happens to hold them, so they are sorted here.
func (c *Client) Versions(ctx context.Context, id string) ([]string, error) {
	if err := CheckAppID(id); err != nil {
		return nil, err
	}
	r, err := c.call(ctx, http.MethodGet, appPath(id)+"/versions", nil, nil, http.StatusOK)
	if err != nil {
		return nil, fmt.Errorf("marathon: versions of %s: %w", id, err)
	}
	var w struct {
		Versions []string `json:"versions"`
	}
	if err := json.Unmarshal(r.body, &w); err != nil {
		return nil, fmt.Errorf("marathon: versions of %s: decode: %w", id, err)
	}
	sortNewestFirst(w.Versions)
	return w.Versions, nil
}

// sortNewestFirst orders timestamps newest first; ones that do not parse go
// last, in their original order.
func sortNewestFirst(vs []string) {
	at := func(v string) (time.Time, bool) {
		t, err := time.Parse(time.RFC3339Nano, v)
		return t, err == nil
	}
	sort.SliceStable(vs, func(i, j int) bool {
		ti, oki := at(vs[i])
		tj, okj := at(vs[j])
		if oki != okj {
			return oki
		}
		return oki && ti.After(tj)
	})
}

// statusFields are what GET /v2/apps/{id} adds to a definition (RAML AppInfo)
// plus the version stamps Marathon sets itself; Definition drops them so the
// result can be posted as a new app.
var statusFields = []string{
	"tasksStaged", "tasksRunning", "tasksHealthy", "tasksUnhealthy", "deployments",
	"readinessCheckResults", "tasks", "lastTaskFailure", "tasksStats", "taskStats",
	"version", "versionInfo",
}

// Definition returns app id's definition as Marathon's JSON object, every
// field kept (volumes, secrets, constraints, networks… whatever this client
// does not model) except the live state and version stamps, so that it can
// be edited (see CopyAs) and posted with Create.
func (c *Client) Definition(ctx context.Context, id string) (json.RawMessage, error) {
	def, err := c.definition(ctx, id)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(def)
	if err != nil {
		return nil, fmt.Errorf("marathon: definition of %s: %w", id, err)
	}
	return raw, nil
}

// definition reads app id as top-level fields.
func (c *Client) definition(ctx context.Context, id string) (map[string]json.RawMessage, error) {
	if err := CheckAppID(id); err != nil {
		return nil, err
	}
	r, err := c.call(ctx, http.MethodGet, appPath(id), nil, nil, http.StatusOK)
	if err != nil {
		return nil, fmt.Errorf("marathon: definition of %s: %w", id, err)
	}
	var w struct {
		App map[string]json.RawMessage `json:"app"`
	}
	if err := json.Unmarshal(r.body, &w); err != nil || w.App == nil {
		return nil, fmt.Errorf("marathon: definition of %s: decode: not an app (%v)", id, err)
	}
	for _, k := range statusFields {
		delete(w.App, k)
	}
	return w.App, nil
}

// Create posts def as a new app (POST /v2/apps) and returns the deployment
// that starts it and the app's version. An app with that id gives an error
// matching ErrExists. Marathon answers 201 with the app in the body and the
// deployment in the Marathon-Deployment-Id header.
func (c *Client) Create(ctx context.Context, def json.RawMessage) (DeploymentResult, error) {
	var head struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(def, &head); err != nil {
		return DeploymentResult{}, fmt.Errorf("marathon: create: definition is not a JSON object: %w", err)
	}
	if err := CheckAppID(head.ID); err != nil {
		return DeploymentResult{}, err
	}
	r, err := c.call(ctx, http.MethodPost, "v2/apps", c.writeQuery(), def, http.StatusCreated)
	if err != nil {
		return DeploymentResult{}, fmt.Errorf("marathon: create %s: %w", head.ID, err)
	}
	var app App
	if err := json.Unmarshal(r.body, &app); err != nil {
		return DeploymentResult{}, fmt.Errorf("marathon: create %s: decode: %w", head.ID, err)
	}
	res := DeploymentResult{DeploymentID: r.header.Get(deploymentHeader), Version: app.Version}
	if res.DeploymentID == "" && len(app.Deployments) > 0 {
		res.DeploymentID = app.Deployments[0].ID // Marathon before 1.4 had no header
	}
	c.log.InfoContext(ctx, "marathon app created", "app", head.ID, "deployment", res.DeploymentID, "version", res.Version)
	return res, nil
}

// Delete removes app id: a deployment stops its tasks, and Marathon forgets
// its versions. Marathon's DELETE forces by default, silently cancelling a
// deployment that holds the app; this client sends force=false unless
// Config.Force, so such a delete fails with ErrLocked instead.
func (c *Client) Delete(ctx context.Context, id string) (DeploymentResult, error) {
	if err := CheckAppID(id); err != nil {
		return DeploymentResult{}, err
	}
	r, err := c.call(ctx, http.MethodDelete, appPath(id), c.writeQuery(), nil, http.StatusOK)
	if err != nil {
		return DeploymentResult{}, fmt.Errorf("marathon: delete %s: %w", id, err)
	}
	res, err := decodeResult(r)
	if err != nil {
		return DeploymentResult{}, fmt.Errorf("marathon: delete %s: %w", id, err)
	}
	c.log.InfoContext(ctx, "marathon app deleted", "app", id, "deployment", res.DeploymentID)
	return res, nil
}

// deploymentHeader carries the deployment id of every change (Marathon 1.4+).
const deploymentHeader = "Marathon-Deployment-Id"

// decodeResult reads a {"deploymentId","version"} answer.
func decodeResult(r reply) (DeploymentResult, error) {
	var res DeploymentResult
	if err := json.Unmarshal(r.body, &res); err != nil {
		return DeploymentResult{}, fmt.Errorf("decode: %w", err)
	}
	if res.DeploymentID == "" {
		res.DeploymentID = r.header.Get(deploymentHeader)
	}
	if res.DeploymentID == "" {
		return DeploymentResult{}, errors.New("decode: answer names no deployment")
	}
	return res, nil
}
