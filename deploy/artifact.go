package deploy

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/seed-5eb4e92e/deploybot/backends/jenkins"
)

// ArtifactReader reads what a finished build made. *jenkins.Client
// satisfies it.
type ArtifactReader interface {
	Build(ctx context.Context, job string, number int) (jenkins.Build, error)
	Artifact(ctx context.Context, job string, number int, relativePath string, max int64) ([]byte, error)
}

// Where an artifact's version is read from.
const (
	FromRef         = "ref"         // the ref that was built
	FromParam       = "param"       // a build parameter
	FromDescription = "description" // the build's description
	FromArtifact    = "artifact"    // an archived file's name
	FromFile        = "file"        // the contents of an archived file
)

// ArtifactSource says how to find the artifact a build made.
type ArtifactSource struct {
	// From is one of FromRef (the default), FromParam, FromDescription,
	// FromArtifact or FromFile.
	From string
	// Param names the build parameter (FromParam); File the archived file
	// (FromFile), as a path relative to the build's artifacts.
	Param, File string
	// Pattern, when set, must match the text read; its first group (or the
	// whole match) is the version. Required for FromDescription and
	// FromArtifact.
	Pattern *regexp.Regexp
	// Image turns the version into the Docker image to run, with
	// "{version}" replaced: "registry.example.com/api:{version}". Empty
	// means the version is the image.
	Image string
}

// maxVersionFile caps a version file read from Jenkins.
const maxVersionFile = 4 << 10

// readArtifact finds the artifact of a finished build of ref.
func (d *Deployer) readArtifact(ctx context.Context, p Pipeline, ref string, res BuildResult) (string, error) {
	src := p.Artifact
	text, err := d.versionText(ctx, p, ref, res)
	if err != nil {
		return "", err
	}
	version := strings.TrimSpace(text)
	if src.Pattern != nil {
		m := src.Pattern.FindStringSubmatch(text)
		if m == nil {
			return "", &Failure{Msg: fmt.Sprintf("The build's %s does not match the artifact pattern `%s`, so I can't tell what to deploy.", orDefault(src.From, FromRef), src.Pattern)}
		}
		version = m[0]
		if len(m) > 1 {
			version = m[1]
		}
	}
	if version == "" {
		return "", &Failure{Msg: fmt.Sprintf("The build left no artifact version in its %s.", orDefault(src.From, FromRef))}
	}
	image := version
	if src.Image != "" {
		image = strings.ReplaceAll(src.Image, "{version}", version)
	}
	if err := CheckImage(image); err != nil {
		return "", err
	}
	return image, nil
}

// versionText is the text the version is read from.
func (d *Deployer) versionText(ctx context.Context, p Pipeline, ref string, res BuildResult) (string, error) {
	src := p.Artifact
	if src.From == "" || src.From == FromRef {
		return ref, nil
	}
	if d.Artifacts == nil {
		return "", &Failure{Msg: "deploybot cannot read build artifacts without Jenkins."}
	}
	if src.From == FromFile {
		raw, err := d.Artifacts.Artifact(ctx, p.Build.Job, res.Number, src.File, maxVersionFile)
		if err != nil {
			return "", &Failure{Msg: fmt.Sprintf("I could not read %s from build #%d.", src.File, res.Number), Err: err}
		}
		return string(raw), nil
	}
	b, err := d.Artifacts.Build(ctx, p.Build.Job, res.Number)
	if err != nil {
		return "", explain(ctx, err, p.Build.Job, "read")
	}
	switch src.From {
	case FromParam:
		return b.Params()[src.Param], nil
	case FromDescription:
		return b.Description, nil
	case FromArtifact:
		var names []string
		for _, a := range b.Artifacts {
			names = append(names, a.FileName)
		}
		return strings.Join(names, "\n"), nil
	}
	return "", &Failure{Msg: fmt.Sprintf("Unknown artifact source %q.", src.From)}
}

// imageRE is a Docker image reference: [registry[:port]/]path[:tag][@digest],
// with the grammar of github.com/distribution/reference: registry labels
// of letters, digits and inner dashes; lower-case path components joined
// by ".", "_", "__" or dashes.
var imageRE = regexp.MustCompile(`^` +
	`(?:` + domainLabel + `(?:\.` + domainLabel + `)*(?::[0-9]+)?/)?` +
	pathComponent + `(?:/` + pathComponent + `)*` +
	`(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$`)

const (
	domainLabel   = `(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])`
	pathComponent = `[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`
)

// CheckImage reports whether image is a Docker image reference. Artifacts
// come from build output and go into Marathon app definitions and Mesos
// tasks, so nothing else passes.
func CheckImage(image string) error {
	if len(image) > 255 || !imageRE.MatchString(image) {
		return &Failure{Msg: fmt.Sprintf("%q is not a Docker image reference, so I won't deploy it.", truncate(image, 80))}
	}
	if name := image[strings.LastIndex(image, "/")+1:]; !strings.ContainsAny(name, ":@") {
		return &Failure{Msg: fmt.Sprintf("`%s` has no tag or digest: it would run whatever `latest` is when pulled, and could not be promoted or rolled back. Tag each build's image.", truncate(image, 80))}
	}
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
