package jenkins

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Build is GET /job/…/N/api/json, for freestyle and Pipeline builds alike.
//
// The default depth (0) already carries everything here: Stapler's
// TreePruner.ByDepth writes a nested property when its visibility reaches
// the nesting level, and the actions' parameters (visibility 2), their names
// (3) and values (4), and the artifacts' fields (3) all qualify. So no tree=
// is needed, and none is sent, because it would drop fields other packages
// read.
type Build struct {
	Class    string `json:"_class"`
	Number   int    `json:"number"`
	URL      string `json:"url"`
	Building bool   `json:"building"`
	// Result is SUCCESS, UNSTABLE, FAILURE, NOT_BUILT or ABORTED; empty
	// while the build runs.
	Result            string `json:"result"`
	Duration          int64  `json:"duration"`
	EstimatedDuration int64  `json:"estimatedDuration"`
	Timestamp         int64  `json:"timestamp"`
	FullDisplayName   string `json:"fullDisplayName"`
	QueueID           int64  `json:"queueId"`
	// ChangeSet (freestyle builds) or ChangeSets (Pipeline builds) list the
	// commits the build was the first to include.
	ChangeSet  *ChangeSet  `json:"changeSet"`
	ChangeSets []ChangeSet `json:"changeSets"`
	// Culprits are who Jenkins thinks may have broken the build: everyone
	// with a change since the last success.
	Culprits []Culprit `json:"culprits"`
	// Description is what the job (currentBuild.description, a "set build
	// description" step) or a person wrote on the build, such as the image
	// it pushed; empty when unset. Jenkins sends it as stored, so it may
	// hold HTML meant for its markup formatter.
	Description string `json:"description"`
	// Artifacts are the files the build archived, depth first and sorted by
	// name in each directory. Read a small one with Client.Artifact.
	Artifacts []Artifact `json:"artifacts"`
	// Actions are the build's actions; of these only the parameters of
	// ParametersAction are decoded (see Params).
	Actions []Action `json:"actions"`
}

// ChangeSet is the commits of one checkout in a build.
type ChangeSet struct {
	Kind  string       `json:"kind"`
	Items []ChangeItem `json:"items"`
}

// ChangeItem is one commit.
type ChangeItem struct {
	CommitID    string `json:"commitId"`
	AuthorEmail string `json:"authorEmail"`
	Author      struct {
		FullName string `json:"fullName"`
	} `json:"author"`
	Msg string `json:"msg"`
}

// Culprit is a Jenkins user.
type Culprit struct {
	FullName    string `json:"fullName"`
	AbsoluteURL string `json:"absoluteUrl"`
}

// Artifact is a file a build archived (Run.Artifact).
type Artifact struct {
	// DisplayPath is the shortest suffix of RelativePath that tells the
	// build's artifacts apart ("linux/version.txt"). Jenkins leaves it
	// empty (null) when the build has more than 20 artifacts.
	DisplayPath string `json:"displayPath"`
	// FileName is the last element of RelativePath.
	FileName string `json:"fileName"`
	// RelativePath is the path under the build's archive, with "/"
	// separators and not escaped: "dist/api-1.4.2.tar.gz".
	RelativePath string `json:"relativePath"`
}

// Action is one entry of a build's actions. Most are of no interest here;
// Jenkins writes the ones without exported properties as {}.
type Action struct {
	Class string `json:"_class"`
	// Parameters are the build's parameter values, set for a
	// hudson.model.ParametersAction (or a subclass), and for an action
	// without a class as older Jenkins versions sent them.
	Parameters []Parameter `json:"parameters"`
}

// UnmarshalJSON reads parameters only from a ParametersAction: other
// actions may export a "parameters" of their own, in another shape, and
// one plugin's action must not make the whole build unreadable.
func (a *Action) UnmarshalJSON(data []byte) error {
	var raw struct {
		Class      string          `json:"_class"`
		Parameters json.RawMessage `json:"parameters"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	*a = Action{Class: raw.Class}
	if len(raw.Parameters) == 0 || raw.Class != "" && !strings.HasSuffix(raw.Class, "ParametersAction") {
		return nil
	}
	var params []Parameter
	if json.Unmarshal(raw.Parameters, &params) == nil {
		a.Parameters = params
	}
	return nil
}

// Parameter is one ParameterValue of a build. Value is kept as Jenkins
// sent it: a string for StringParameterValue and TextParameterValue (null
// when unset), a boolean for BooleanParameterValue, and absent for
// passwords, files and runs, whose values Jenkins does not export.
type Parameter struct {
	Class string          `json:"_class"`
	Name  string          `json:"name"`
	Value json.RawMessage `json:"value"`
}

// Text returns the value as the build's environment would see it: a
// string as it is, a boolean as "true" or "false", a number as written, and
// null as "". ok is false when there is no plain value.
func (p Parameter) Text() (text string, ok bool) {
	if len(p.Value) == 0 {
		return "", false
	}
	dec := json.NewDecoder(bytes.NewReader(p.Value))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return "", false
	}
	switch v := v.(type) {
	case string:
		return v, true
	case bool:
		return strconv.FormatBool(v), true
	case json.Number:
		return v.String(), true
	case nil:
		return "", true
	default:
		return "", false
	}
}

// Params returns the build's parameters with a plain value (see
// Parameter.Text), by name. Jenkins lists only parameters the job defined
// when the build started (SECURITY-170), each with the value it ran with,
// defaults included.
func (b Build) Params() map[string]string {
	out := map[string]string{}
	for _, a := range b.Actions {
		for _, p := range a.Parameters {
			if v, ok := p.Text(); ok && p.Name != "" {
				out[p.Name] = v
			}
		}
	}
	return out
}

// Changes returns the commits of all the build's checkouts.
func (b Build) Changes() []ChangeItem {
	var out []ChangeItem
	if b.ChangeSet != nil {
		out = append(out, b.ChangeSet.Items...)
	}
	for _, cs := range b.ChangeSets {
		out = append(out, cs.Items...)
	}
	return out
}

// Build reads build number of job.
func (c *Client) Build(ctx context.Context, job string, number int) (Build, error) {
	jp, err := buildPath(job, number)
	if err != nil {
		return Build{}, err
	}
	var b Build
	if err := c.getJSON(ctx, jp+"api/json", &b); err != nil {
		return Build{}, err
	}
	return b, nil
}

// buildPath is "job/…/N/".
func buildPath(job string, number int) (string, error) {
	jp, err := JobPath(job)
	if err != nil {
		return "", err
	}
	if number <= 0 {
		return "", fmt.Errorf("jenkins: bad build number %d", number)
	}
	return fmt.Sprintf("%s%d/", jp, number), nil
}
