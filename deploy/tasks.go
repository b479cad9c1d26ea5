package deploy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/seed-5eb4e92e/deploybot/backends/mesos"
)

// Tasks runs one-off tasks to their end, and says which run now.
// *mesos.Client satisfies it.
type Tasks interface {
	RunTask(ctx context.Context, spec mesos.TaskSpec, report func(mesos.TaskStatus)) (mesos.TaskStatus, error)
	SandboxURL(s mesos.TaskStatus) string
	State(ctx context.Context) (mesos.State, error)
}

// preDeploy runs the pipeline's tasks in order, each once: the task ID is
// derived from the job, so a job run again follows (or reads the end of)
// the task it launched instead of launching another.
func (d *Deployer) preDeploy(ctx context.Context, p Pipeline, req Request, artifact string, steps Steps, report func(Progress)) error {
	for _, t := range p.PreDeploy {
		step := "task_" + t.Name
		if done, err := steps.Get(ctx, step); err != nil || done != "" {
			if err != nil {
				return err
			}
			continue
		}
		if d.Tasks == nil {
			return &Failure{Msg: fmt.Sprintf("%s needs Mesos to run %s before deploying, and deploybot has none configured.", req.Service, t.Name)}
		}
		st, err := d.runTask(ctx, t, req, artifact, report)
		if err != nil {
			return err
		}
		if err := steps.Set(ctx, step, st.State); err != nil {
			return err
		}
	}
	return nil
}

func (d *Deployer) runTask(ctx context.Context, t Task, req Request, artifact string, report func(Progress)) (mesos.TaskStatus, error) {
	spec := taskSpec(t, req, artifact)
	stage := "running " + t.Name
	report(Progress{Stage: stage})
	last := ""
	st, err := d.Tasks.RunTask(ctx, spec, func(s mesos.TaskStatus) {
		if s.State == last {
			return
		}
		last = s.State
		report(Progress{Stage: fmt.Sprintf("%s: %s", stage, strings.ToLower(strings.TrimPrefix(s.State, "TASK_"))), Links: d.taskLinks(t, s)})
	})
	if err != nil {
		var f *Failure
		if errors.As(err, &f) || errors.Is(err, context.Canceled) || transient(err) {
			return st, err
		}
		return st, &Failure{Msg: fmt.Sprintf("I could not run %s on Mesos.", t.Name), Err: err}
	}
	report(Progress{Links: d.taskLinks(t, st)})
	if !st.Succeeded() {
		return st, &Failure{Msg: fmt.Sprintf("%s failed (%s), so %s was not deployed to %s.", t.Name, taskOutcome(st), req.Service, req.Env)}
	}
	return st, nil
}

// taskSpec is the Mesos task of t for req: its ID is stable across runs of
// the job, DEPLOY_ENV and DEPLOY_ARTIFACT tell it what is deployed where,
// and its labels tell /deploy status whose task it is.
func taskSpec(t Task, req Request, artifact string) mesos.TaskSpec {
	env := maps.Clone(t.Env)
	if env == nil {
		env = map[string]string{}
	}
	env["DEPLOY_ENV"], env["DEPLOY_SERVICE"], env["DEPLOY_ARTIFACT"] = req.Env, req.Service, artifact
	image := t.Image
	if image == "" {
		image = artifact
	}
	return mesos.TaskSpec{
		ID:      strings.ToLower(fmt.Sprintf("deploybot-%s-%s-%s", req.JobID, req.Env, t.Name)),
		Name:    fmt.Sprintf("%s %s for %s in %s", t.Name, req.Service, req.User, req.Env),
		Image:   image,
		Command: t.Command,
		Env:     env,
		CPUs:    t.CPUs,
		MemMB:   t.MemMB,
		Labels: map[string]string{
			LabelJob: req.JobID, LabelUser: req.User,
			LabelService: req.Service, LabelEnv: req.Env, LabelTask: t.Name,
		},
	}
}

// taskOutcome says how a task ended: "exit status 3", or its state and
// Mesos's message.
func taskOutcome(s mesos.TaskStatus) string {
	if s.ExitCode != nil {
		return fmt.Sprintf("exit status %d", *s.ExitCode)
	}
	out := strings.ToLower(strings.TrimPrefix(s.State, "TASK_"))
	if s.Message != "" {
		out += ": " + truncate(s.Message, 160)
	}
	return out
}

func (d *Deployer) taskLinks(t Task, s mesos.TaskStatus) []Link {
	url := d.Tasks.SandboxURL(s)
	if url == "" {
		return nil
	}
	return []Link{{Kind: "task", Text: t.Name + " sandbox", URL: url}}
}
