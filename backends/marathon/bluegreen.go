package marathon

// Labels of a blue/green (zero-downtime) deployment, as marathon-lb's zdd.py
// writes them and marathon-lb reads them. Keeping the same names lets
// marathon-lb route one service port to whichever colour is live, and lets
// zdd.py and deploybot take over each other's deployments.
const (
	// LabelDeploymentGroup names the pair of apps (blue and green) that
	// serve one service; marathon-lb uses it as the backend's name.
	LabelDeploymentGroup = "HAPROXY_DEPLOYMENT_GROUP"
	// LabelDeploymentAltPort is the second service port, for the colour
	// that is not live: Marathon wants service ports unique across apps.
	LabelDeploymentAltPort = "HAPROXY_DEPLOYMENT_ALT_PORT"
	// LabelDeploymentColour is "blue" or "green".
	LabelDeploymentColour = "HAPROXY_DEPLOYMENT_COLOUR"
	// LabelDeploymentStartedAt orders the deployments of a group: zdd.py
	// takes the app with the greatest value as the latest. See
	// StartedAtLayout.
	LabelDeploymentStartedAt = "HAPROXY_DEPLOYMENT_STARTED_AT"
	// LabelDeploymentTargetInstances is the instance count the new colour
	// grows to.
	LabelDeploymentTargetInstances = "HAPROXY_DEPLOYMENT_TARGET_INSTANCES"
	// LabelDeploymentNewInstances is how many new instances a traffic-split
	// (canary) deployment keeps, "0" for a full switch.
	LabelDeploymentNewInstances = "HAPROXY_DEPLOYMENT_NEW_INSTANCES"
	// LabelServicePort0 is the service port clients use, the same for both
	// colours.
	LabelServicePort0 = "HAPROXY_0_PORT"
	// LabelAppID is the app's id before the colour was appended.
	LabelAppID = "HAPROXY_APP_ID"
	// LabelGroup is marathon-lb's load balancer group ("external",
	// "internal").
	LabelGroup = "HAPROXY_GROUP"
)

// Colours of a blue/green deployment; zdd.py appends "-" and the colour to
// the app id.
const (
	ColourBlue  = "blue"
	ColourGreen = "green"
)

// StartedAtLayout formats LabelDeploymentStartedAt the way zdd.py does
// (Python's datetime.isoformat(): no zone, microseconds), so that values
// written by either sort together as strings.
const StartedAtLayout = "2006-01-02T15:04:05.000000"
