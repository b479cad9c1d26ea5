package marathon

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
)

// Deployments lists the deployments in progress. A deployment that is no
// longer listed has finished, or was cancelled or replaced by a forced one.
// A deployment whose new tasks never become healthy stays listed: Marathon
// keeps killing and restarting them until another deployment (a rollback, a
// cancel, a forced change) takes its place.
func (c *Client) Deployments(ctx context.Context) ([]Deployment, error) {
	r, err := c.call(ctx, http.MethodGet, "v2/deployments", nil, nil, http.StatusOK)
	if err != nil {
		return nil, fmt.Errorf("marathon: deployments: %w", err)
	}
	var ds []Deployment
	if err := json.Unmarshal(r.body, &ds); err != nil {
		return nil, fmt.Errorf("marathon: deployments: decode: %w", err)
	}
	return ds, nil
}

// CancelDeployment stops deployment id. Without force Marathon starts a new
// deployment that returns the affected apps to their definitions from before
// id (a rollback, which creates a new version) and this returns it. With
// force Marathon just stops id and leaves the apps as they are, possibly
// half old and half new; it answers 202 with no deployment, and this returns
// the zero DeploymentResult. An unknown or finished deployment gives an
// error matching ErrNotFound.
func (c *Client) CancelDeployment(ctx context.Context, id string, force bool) (DeploymentResult, error) {
	if err := checkDeploymentID(id); err != nil {
		return DeploymentResult{}, err
	}
	q := url.Values{"force": {fmt.Sprint(force)}}
	r, err := c.call(ctx, http.MethodDelete, "v2/deployments/"+id, q, nil, http.StatusOK, http.StatusAccepted)
	if err != nil {
		return DeploymentResult{}, fmt.Errorf("marathon: cancel deployment %s: %w", id, err)
	}
	if r.status == http.StatusAccepted {
		c.log.InfoContext(ctx, "marathon deployment stopped", "deployment", id)
		return DeploymentResult{}, nil
	}
	res, err := decodeResult(r)
	if err != nil {
		return DeploymentResult{}, fmt.Errorf("marathon: cancel deployment %s: %w", id, err)
	}
	c.log.InfoContext(ctx, "marathon deployment rolled back", "deployment", id, "rollback", res.DeploymentID)
	return res, nil
}
