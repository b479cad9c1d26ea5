package marathon

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Limits this client adds to Marathon's own id rules. Marathon sets no
// length limit, but it turns ids into Mesos-DNS names (one label per
// segment part) and task ids, and DNS labels stop at 63 characters.
const (
	maxAppIDLen = 255
	maxLabelLen = 63
)

// idLabelRE is one dot-separated part of a path segment, from Marathon's
// PathId.ID_PATH_SEGMENT_PATTERN: lowercase letters, digits and '-', not
// starting or ending with '-'.
var idLabelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// reservedLastSegments are the words Marathon refuses as an id's last
// segment: they are sub-resources of /v2/apps/{id}.
var reservedLastSegments = map[string]bool{"restart": true, "tasks": true, "versions": true}

// CheckAppID accepts an app id Marathon would create and that is safe to put
// in a URL path as is: absolute ("/group/app"), segments of dot-separated
// lowercase names (letters, digits, '-', not starting or ending with '-'),
// no "." or ".." segments (Marathon resolves them, so "/a/../b" would name
// another app), no reserved last segment ("restart", "tasks", "versions"),
// at most 255 characters with parts of at most 63.
func CheckAppID(id string) error {
	if id == "" {
		return errors.New("marathon: empty app id")
	}
	if len(id) > maxAppIDLen {
		return fmt.Errorf("marathon: app id longer than %d characters", maxAppIDLen)
	}
	if !strings.HasPrefix(id, "/") {
		return fmt.Errorf("marathon: app id %q must start with /", id)
	}
	segs := strings.Split(id[1:], "/")
	for _, seg := range segs {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("marathon: app id %q has an empty, . or .. segment", id)
		}
		for _, label := range strings.Split(seg, ".") {
			if len(label) > maxLabelLen {
				return fmt.Errorf("marathon: bad app id %q: %q is longer than %d characters", id, label, maxLabelLen)
			}
			if !idLabelRE.MatchString(label) {
				return fmt.Errorf("marathon: bad app id %q: segments are lowercase letters, digits, '-' and '.', not starting or ending with '-' or '.'", id)
			}
		}
	}
	if reservedLastSegments[segs[len(segs)-1]] {
		return fmt.Errorf("marathon: app id %q must not end with %q", id, segs[len(segs)-1])
	}
	return nil
}

// versionRE is the form Marathon writes versions in (ISO-8601 in UTC with
// milliseconds) and the looser ISO offset form it parses.
var versionRE = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})$`)

// checkVersion accepts an app version timestamp, which goes into URLs and
// rollback bodies.
func checkVersion(v string) error {
	if !versionRE.MatchString(v) {
		return fmt.Errorf("marathon: bad version %q (want e.g. 2025-03-10T14:02:41.967Z)", v)
	}
	if _, err := time.Parse(time.RFC3339Nano, v); err != nil {
		return fmt.Errorf("marathon: bad version %q: %v", v, err)
	}
	return nil
}

// deploymentIDRE is a deployment id: Marathon uses random UUIDs.
var deploymentIDRE = regexp.MustCompile(`^[0-9a-fA-F-]{1,64}$`)

func checkDeploymentID(id string) error {
	if !deploymentIDRE.MatchString(id) {
		return fmt.Errorf("marathon: bad deployment id %q", id)
	}
	return nil
}
