package marathon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// AppUpdate is a change to an app. Zero fields are left as they are; Env and
// Labels are merged into the app's (a key set to "" is set to "", not
// removed).
type AppUpdate struct {
	// Image replaces container.docker.image; the rest of the container
	// (port mappings, volumes, parameters) is kept.
	Image     string
	Env       map[string]string
	Labels    map[string]string
	Instances *int
}

// carriedFields are fields Marathon's partial update resets when a PUT
// leaves them out, instead of keeping them like the rest
// (AppConversion.appUpdateRamlReader takes them from the update alone), so
// every update carries the app's current values.
var carriedFields = []string{"resourceLimits", "executorResources"}

// Update changes app id as u says and returns the deployment that rolls the
// change out. Marathon's PUT /v2/apps/{id} is a partial update, but per
// top-level field: a "container" in the body replaces the whole container,
// and "env" or "labels" replace the whole map. So Update reads the app and
// sends complete container, env and label objects in which only the asked-for
// values differ (secret references in env included). It reads first for
// another reason too: a PUT to an unknown id creates an app, and Update must
// fail with ErrNotFound instead. A change between the read and the write by
// someone else would be overwritten for those fields.
func (c *Client) Update(ctx context.Context, id string, u AppUpdate) (DeploymentResult, error) {
	if err := CheckAppID(id); err != nil {
		return DeploymentResult{}, err
	}
	if err := u.check(); err != nil {
		return DeploymentResult{}, fmt.Errorf("marathon: update %s: %w", id, err)
	}
	def, err := c.definition(ctx, id)
	if err != nil {
		return DeploymentResult{}, err
	}
	body, err := u.patch(def)
	if err != nil {
		return DeploymentResult{}, fmt.Errorf("marathon: update %s: %w", id, err)
	}
	return c.put(ctx, "update", id, body)
}

// Scale sets app id's instance count.
func (c *Client) Scale(ctx context.Context, id string, instances int) (DeploymentResult, error) {
	return c.Update(ctx, id, AppUpdate{Instances: &instances})
}

// Rollback makes the definition app id had at version its current one, as a
// new version (PUT {"version": …}). An unknown version gives an error
// matching ErrNotFound.
func (c *Client) Rollback(ctx context.Context, id, version string) (DeploymentResult, error) {
	if err := CheckAppID(id); err != nil {
		return DeploymentResult{}, err
	}
	if err := checkVersion(version); err != nil {
		return DeploymentResult{}, err
	}
	body, _ := json.Marshal(map[string]string{"version": version})
	return c.put(ctx, "roll back", id, body)
}

func (c *Client) put(ctx context.Context, what, id string, body []byte) (DeploymentResult, error) {
	q := c.writeQuery()
	// partialUpdate=true is Marathon's default; it is sent because the docs
	// announce the default will change.
	q.Set("partialUpdate", "true")
	// 201 would mean the app vanished after it was read and the PUT made a
	// new one; the deployment result is the same shape.
	r, err := c.call(ctx, http.MethodPut, appPath(id), q, body, http.StatusOK, http.StatusCreated)
	if err != nil {
		return DeploymentResult{}, fmt.Errorf("marathon: %s %s: %w", what, id, err)
	}
	res, err := decodeResult(r)
	if err != nil {
		return DeploymentResult{}, fmt.Errorf("marathon: %s %s: %w", what, id, err)
	}
	if r.status == http.StatusCreated {
		c.log.WarnContext(ctx, "marathon created the app the update was for", "app", id)
	}
	c.log.InfoContext(ctx, "marathon app changed", "app", id, "change", what, "deployment", res.DeploymentID, "version", res.Version, "force", c.cfg.Force)
	return res, nil
}

func (u AppUpdate) check() error {
	if u.Image == "" && u.Env == nil && u.Labels == nil && u.Instances == nil {
		return errors.New("nothing to change")
	}
	if u.Image != "" && (len(u.Image) > 1024 || strings.IndexFunc(u.Image, badImageRune) >= 0) {
		return fmt.Errorf("bad image %q", u.Image)
	}
	if u.Instances != nil && *u.Instances < 0 {
		return errors.New("negative instances")
	}
	for k := range u.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return fmt.Errorf("bad environment variable name %q", k)
		}
	}
	return checkLabels(u.Labels)
}

func badImageRune(r rune) bool { return r <= ' ' || r == 0x7f }

func checkLabels(labels map[string]string) error {
	for k := range labels {
		if k == "" {
			return errors.New("empty label name")
		}
	}
	return nil
}

// patch builds the PUT body from the app's current top-level fields.
func (u AppUpdate) patch(def map[string]json.RawMessage) ([]byte, error) {
	body := map[string]json.RawMessage{}
	if u.Image != "" {
		container, err := withImage(def["container"], u.Image)
		if err != nil {
			return nil, err
		}
		body["container"] = container
	}
	if u.Env != nil {
		env, err := mergeStrings(def["env"], u.Env)
		if err != nil {
			return nil, fmt.Errorf("env: %w", err)
		}
		body["env"] = env
	}
	if u.Labels != nil {
		labels, err := mergeStrings(def["labels"], u.Labels)
		if err != nil {
			return nil, fmt.Errorf("labels: %w", err)
		}
		body["labels"] = labels
	}
	if u.Instances != nil {
		body["instances"], _ = json.Marshal(*u.Instances)
	}
	for _, k := range carriedFields {
		if v, ok := def[k]; ok && string(v) != "null" {
			body[k] = v
		}
	}
	return json.Marshal(body)
}

// withImage returns the container JSON with docker.image replaced and every
// other field as it was.
func withImage(raw json.RawMessage, image string) (json.RawMessage, error) {
	var container map[string]json.RawMessage
	if err := json.Unmarshal(raw, &container); err != nil || container == nil {
		return nil, errors.New("the app has no container to set an image in")
	}
	var docker map[string]json.RawMessage
	if err := json.Unmarshal(container["docker"], &docker); err != nil || docker == nil {
		return nil, errors.New("the app's container has no docker image to replace")
	}
	docker["image"], _ = json.Marshal(image)
	var err error
	if container["docker"], err = json.Marshal(docker); err != nil {
		return nil, err
	}
	return json.Marshal(container)
}

// mergeStrings sets values into the JSON object raw (absent or null: empty)
// and keeps its other members exactly as they were.
func mergeStrings(raw json.RawMessage, values map[string]string) (json.RawMessage, error) {
	m := map[string]json.RawMessage{}
	if len(raw) > 0 && string(raw) != "null" {
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, errors.New("not a JSON object")
		}
	}
	for k, v := range values {
		m[k], _ = json.Marshal(v)
	}
	return json.Marshal(m)
}
