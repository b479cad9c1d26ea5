package marathon

import (
	"encoding/json"
)

// App is an app as GET /v2/apps/{id} shows it: the parts of its definition
// a deployment looks at, and its live state (task counts, tasks with their
// health, the deployments that hold it). Fields this client does not model
// are kept by Definition, not here.
type App struct {
	ID string `json:"id"`
	// Version is the time of the app's last change, e.g.
	// "2025-03-10T14:02:41.967Z"; it names the version for AppVersion and
	// Rollback.
	Version   string     `json:"version"`
	Instances int        `json:"instances"`
	Cmd       string     `json:"cmd"`
	Container *Container `json:"container"`
	// Env holds the environment variables with plain string values.
	// Marathon also allows {"secret": "name"} values; those are in
	// EnvSecrets instead.
	Env map[string]string `json:"-"`
	// EnvSecrets maps the names of secret-backed variables to the name of
	// the secret, so they can be shown without their values.
	EnvSecrets      map[string]string `json:"-"`
	Labels          map[string]string `json:"labels"`
	TasksStaged     int               `json:"tasksStaged"`
	TasksRunning    int               `json:"tasksRunning"`
	TasksHealthy    int               `json:"tasksHealthy"`
	TasksUnhealthy  int               `json:"tasksUnhealthy"`
	Deployments     []DeploymentRef   `json:"deployments"`
	Tasks           []Task            `json:"tasks"`
	HealthChecks    []HealthCheck     `json:"healthChecks"`
	VersionInfo     VersionInfo       `json:"versionInfo"`
	UpgradeStrategy *UpgradeStrategy  `json:"upgradeStrategy"`
}

// UnmarshalJSON reads an app, sorting env values into Env and EnvSecrets so
// that a secret reference does not fail the whole app.
func (a *App) UnmarshalJSON(raw []byte) error {
	type plain App
	var w struct {
		plain
		Env map[string]json.RawMessage `json:"env"`
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		return err
	}
	*a = App(w.plain)
	a.Env, a.EnvSecrets = nil, nil
	for k, v := range w.Env {
		if string(v) == "null" {
			continue
		}
		var s string
		if json.Unmarshal(v, &s) == nil {
			if a.Env == nil {
				a.Env = map[string]string{}
			}
			a.Env[k] = s
			continue
		}
		var ref struct {
			Secret string `json:"secret"`
		}
		if json.Unmarshal(v, &ref) == nil && ref.Secret != "" {
			if a.EnvSecrets == nil {
				a.EnvSecrets = map[string]string{}
			}
			a.EnvSecrets[k] = ref.Secret
		}
	}
	return nil
}

// Image is the app's Docker image (container.docker.image, used by both the
// Docker and the Mesos containerizer), or "" when the app has none.
func (a App) Image() string {
	if a.Container == nil || a.Container.Docker == nil {
		return ""
	}
	return a.Container.Docker.Image
}

// TaskHealthy says whether t counts as serving for this app: all its health
// checks pass when the app has health checks, running otherwise (Marathon's
// tasksHealthy only counts tasks that have health results).
func (a App) TaskHealthy(t Task) bool {
	if len(a.HealthChecks) == 0 {
		return t.State == "TASK_RUNNING"
	}
	return t.State == "TASK_RUNNING" && t.Healthy()
}

// Container is the part of an app's container this client reads. Update
// changes the image in the app's full container JSON, so fields not modelled
// here (volumes, port mappings, parameters) survive.
type Container struct {
	// Type is "DOCKER" or "MESOS".
	Type   string  `json:"type"`
	Docker *Docker `json:"docker"`
}

// Docker is a container's image settings.
type Docker struct {
	Image          string `json:"image"`
	ForcePullImage bool   `json:"forcePullImage"`
}

// HealthCheck is one of an app's health checks, enough to explain why tasks
// are not healthy yet (grace period, failures before a kill).
type HealthCheck struct {
	Protocol               string `json:"protocol"`
	Path                   string `json:"path"`
	PortIndex              int    `json:"portIndex"`
	GracePeriodSeconds     int    `json:"gracePeriodSeconds"`
	IntervalSeconds        int    `json:"intervalSeconds"`
	TimeoutSeconds         int    `json:"timeoutSeconds"`
	MaxConsecutiveFailures int    `json:"maxConsecutiveFailures"`
}

// VersionInfo tells configuration changes from scaling: LastConfigChangeAt
// moves only when the definition changed, LastScalingAt on every change.
type VersionInfo struct {
	LastScalingAt      string `json:"lastScalingAt"`
	LastConfigChangeAt string `json:"lastConfigChangeAt"`
}

// UpgradeStrategy says how many instances a rolling deployment keeps healthy
// (MinimumHealthCapacity) and may add (MaximumOverCapacity), as fractions of
// Instances.
type UpgradeStrategy struct {
	MinimumHealthCapacity float64 `json:"minimumHealthCapacity"`
	MaximumOverCapacity   float64 `json:"maximumOverCapacity"`
}

// Task is one running (or starting) task of an app. Its ID has Marathon's
// form "<group_app>.instance-<uuid>._app.<incarnation>".
type Task struct {
	ID    string `json:"id"`
	AppID string `json:"appId"`
	Host  string `json:"host"`
	// State is the Mesos task state, e.g. "TASK_STAGING", "TASK_RUNNING".
	State string `json:"state"`
	// Version is the app version the task was started with.
	Version            string              `json:"version"`
	StagedAt           string              `json:"stagedAt"`
	StartedAt          string              `json:"startedAt"`
	HealthCheckResults []HealthCheckResult `json:"healthCheckResults"`
	Ports              []int               `json:"ports"`
}

// Healthy reports whether the task has health results and all of them pass,
// which is what Marathon counts in tasksHealthy. A task of an app without
// health checks has no results; use App.TaskHealthy for those.
func (t Task) Healthy() bool {
	if len(t.HealthCheckResults) == 0 {
		return false
	}
	for _, h := range t.HealthCheckResults {
		if !h.Alive {
			return false
		}
	}
	return true
}

// HealthCheckResult is the state of one health check of one task.
type HealthCheckResult struct {
	Alive               bool   `json:"alive"`
	ConsecutiveFailures int    `json:"consecutiveFailures"`
	FirstSuccess        string `json:"firstSuccess"`
	LastSuccess         string `json:"lastSuccess"`
	LastFailure         string `json:"lastFailure"`
	// LastFailureCause is the check's error, e.g. "ConnectException:
	// Connection refused"; it comes from the app, so show it with care.
	LastFailureCause string `json:"lastFailureCause"`
	InstanceID       string `json:"instanceId"`
}

// DeploymentRef names a deployment, as an app's "deployments" list and a
// 409's "deployments" do.
type DeploymentRef struct {
	ID string `json:"id"`
}

// DeploymentResult is what a change returns: the deployment that carries
// it out and the version it creates. A forced CancelDeployment starts no
// deployment and returns the zero value.
type DeploymentResult struct {
	DeploymentID string `json:"deploymentId"`
	Version      string `json:"version"`
}

// Deployment is a deployment in progress, from GET /v2/deployments. Marathon
// lists only unfinished deployments: one that is gone has finished (or was
// cancelled or replaced).
type Deployment struct {
	ID           string   `json:"id"`
	Version      string   `json:"version"`
	AffectedApps []string `json:"affectedApps"`
	// CurrentStep counts from 1 up to TotalSteps.
	CurrentStep    int      `json:"currentStep"`
	TotalSteps     int      `json:"totalSteps"`
	CurrentActions []Action `json:"currentActions"`
}

// Action is what a deployment step does to an app: "StartApplication",
// "ScaleApplication", "RestartApplication" (a new version, rolling) or
// "StopApplication".
type Action struct {
	Action string `json:"action"`
	App    string `json:"app"`
}
