package marathon

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Helpers that edit an app definition from Definition before Create, for a
// blue/green deployment. They change only what they name and keep every
// other field byte for byte.

// CopyAs returns definition def under a new id, with labels merged into its
// labels and instances set: the copy a blue/green deployment creates next to
// the live app.
func CopyAs(def json.RawMessage, id string, labels map[string]string, instances int) (json.RawMessage, error) {
	if err := CheckAppID(id); err != nil {
		return nil, err
	}
	if instances < 0 {
		return nil, fmt.Errorf("marathon: copy as %s: negative instances", id)
	}
	m, err := object(def)
	if err != nil {
		return nil, fmt.Errorf("marathon: copy as %s: %w", id, err)
	}
	if err := checkLabels(labels); err != nil {
		return nil, err
	}
	if m["labels"], err = mergeStrings(m["labels"], labels); err != nil {
		return nil, fmt.Errorf("marathon: copy as %s: labels: %w", id, err)
	}
	m["id"], _ = json.Marshal(id)
	m["instances"], _ = json.Marshal(instances)
	return json.Marshal(m)
}

// WithImage returns definition def with container.docker.image set to
// image, the rest of the container as it was.
func WithImage(def json.RawMessage, image string) (json.RawMessage, error) {
	if err := (AppUpdate{Image: image}).check(); err != nil || image == "" {
		return nil, fmt.Errorf("marathon: bad image %q", image)
	}
	m, err := object(def)
	if err != nil {
		return nil, fmt.Errorf("marathon: set image: %w", err)
	}
	if m["container"], err = withImage(m["container"], image); err != nil {
		return nil, fmt.Errorf("marathon: set image: %w", err)
	}
	return json.Marshal(m)
}

// ForNextColour moves definition def (a copy of the live colour) to the
// other service port, as zdd.py does: Marathon wants service ports unique
// across apps, so the colours take turns between the port clients use
// (LabelServicePort0) and LabelDeploymentAltPort, and marathon-lb routes the
// former to whichever colour is live. The first service port is the first
// of container.portMappings, container.docker.portMappings (before Marathon
// 1.5) or portDefinitions. It fails when the alternate port label is
// missing.
func ForNextColour(def json.RawMessage) (json.RawMessage, error) {
	m, err := object(def)
	if err != nil {
		return nil, fmt.Errorf("marathon: next colour: %w", err)
	}
	var labels map[string]string
	if err := json.Unmarshal(m["labels"], &labels); err != nil || labels[LabelDeploymentAltPort] == "" {
		return nil, fmt.Errorf("marathon: next colour: the app has no %s label", LabelDeploymentAltPort)
	}
	alt, err := strconv.Atoi(labels[LabelDeploymentAltPort])
	if err != nil || alt <= 0 || alt > 65535 {
		return nil, fmt.Errorf("marathon: next colour: bad %s %q", LabelDeploymentAltPort, labels[LabelDeploymentAltPort])
	}
	port, set, err := servicePort(m)
	if err != nil {
		return nil, fmt.Errorf("marathon: next colour: %w", err)
	}
	public := port
	if p, err := strconv.Atoi(labels[LabelServicePort0]); err == nil && p > 0 {
		public = p
	}
	next := alt
	if port == alt {
		next = public
	}
	if err := set(next); err != nil {
		return nil, fmt.Errorf("marathon: next colour: %w", err)
	}
	if m["labels"], err = mergeStrings(m["labels"], map[string]string{LabelServicePort0: strconv.Itoa(public)}); err != nil {
		return nil, fmt.Errorf("marathon: next colour: labels: %w", err)
	}
	return json.Marshal(m)
}

// servicePort finds the app's first service port and a setter for it.
func servicePort(m map[string]json.RawMessage) (int, func(int) error, error) {
	container, _ := object(m["container"])
	docker, _ := object(container["docker"])
	places := []struct {
		parent map[string]json.RawMessage
		list   string
		field  string
		write  func()
	}{
		{container, "portMappings", "servicePort", func() { m["container"], _ = json.Marshal(container) }},
		{docker, "portMappings", "servicePort", func() {
			container["docker"], _ = json.Marshal(docker)
			m["container"], _ = json.Marshal(container)
		}},
		{m, "portDefinitions", "port", func() {}},
	}
	for _, p := range places {
		var list []map[string]json.RawMessage
		if p.parent == nil || json.Unmarshal(p.parent[p.list], &list) != nil || len(list) == 0 {
			continue
		}
		var port int
		if err := json.Unmarshal(list[0][p.field], &port); err != nil {
			return 0, nil, fmt.Errorf("%s[0].%s is not a port", p.list, p.field)
		}
		set := func(v int) error {
			list[0][p.field], _ = json.Marshal(v)
			var err error
			p.parent[p.list], err = json.Marshal(list)
			p.write()
			return err
		}
		return port, set, nil
	}
	return 0, nil, errors.New("the app has no service port")
}

// object decodes a JSON object into its members.
func object(raw json.RawMessage) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, errors.New("definition is not a JSON object")
	}
	return m, nil
}
