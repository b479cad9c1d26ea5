package mesos

import (
	"context"
	"fmt"
	"math"
	"strings"
)

// Offer filters (Filters.refuse_seconds): resources that do not fit come
// back soon, in case others were freed; once the task is launched nothing
// more is needed from this framework.
const (
	refuseShort = 5.0
	refuseLong  = 3600.0
)

// offers launches the task on the first offer it fits in and declines the
// others. While a launch waits for its first update, offers are held: if
// the launch is dropped, one of them is used.
func (r *run) offers(ctx context.Context, sub *subscription, offers []offer) error {
	if r.launched {
		if r.inFlight {
			r.held = append(r.held, offers...)
			return nil
		}
		return r.decline(ctx, sub, offers, refuseLong)
	}
	for i, o := range offers {
		short := r.need().shortOf(o)
		if short != "" {
			r.shortfall = fmt.Sprintf("%s (%s) has %s", o.Hostname, o.AgentID.Value, short)
			continue
		}
		rest := append(append([]offer(nil), offers[:i]...), offers[i+1:]...)
		if err := r.launch(ctx, sub, o); err != nil {
			return err
		}
		return r.decline(ctx, sub, rest, refuseShort)
	}
	return r.decline(ctx, sub, offers, refuseShort)
}

// rescind forgets a held offer the master withdrew.
func (r *run) rescind(offerID string) {
	kept := r.held[:0]
	for _, o := range r.held {
		if o.ID.Value != offerID {
			kept = append(kept, o)
		}
	}
	r.held = kept
}

// relaunch tries the held offers after a dropped launch, and asks for
// offers again if this subscription had them suppressed.
func (r *run) relaunch(ctx context.Context, sub *subscription) error {
	held := r.held
	r.held = nil
	if sub.suppressed {
		var cl call
		cl.Type = "REVIVE"
		cl.Revive = &struct {
			Roles []string `json:"roles,omitempty"`
		}{Roles: []string{r.c.cfg.Role}}
		if err := r.c.call(ctx, sub, cl); err != nil {
			return err
		}
		sub.suppressed = false
	}
	if len(held) == 0 {
		return nil
	}
	return r.offers(ctx, sub, held)
}

func (r *run) decline(ctx context.Context, sub *subscription, offers []offer, refuse float64) error {
	if len(offers) == 0 {
		return nil
	}
	var cl call
	cl.Type = "DECLINE"
	cl.Decline = &struct {
		OfferIDs []id     `json:"offer_ids"`
		Filters  *filters `json:"filters,omitempty"`
	}{OfferIDs: offerIDs(offers), Filters: &filters{RefuseSeconds: refuse}}
	return r.c.call(ctx, sub, cl)
}

func offerIDs(offers []offer) []id {
	ids := make([]id, len(offers))
	for i, o := range offers {
		ids[i] = o.ID
	}
	return ids
}

// launch accepts o with a LAUNCH_GROUP of the task. The run counts as
// launched before the call: if the answer is lost, the master may have
// acted on it, and a re-subscribed run must reconcile rather than launch
// the ID again (which the master would refuse as a duplicate).
func (r *run) launch(ctx context.Context, sub *subscription, o offer) error {
	r.launched, r.inFlight, r.agentID = true, true, o.AgentID.Value
	var cl call
	cl.Type = "ACCEPT"
	cl.Accept = &struct {
		OfferIDs   []id        `json:"offer_ids"`
		Operations []operation `json:"operations"`
		Filters    *filters    `json:"filters,omitempty"`
	}{OfferIDs: []id{o.ID}, Operations: []operation{r.operation(o, sub.frameworkID)}, Filters: &filters{RefuseSeconds: refuseShort}}
	if err := r.c.call(ctx, sub, cl); err != nil {
		return err
	}
	r.log.Info("mesos: launching", "agent", o.Hostname, "offer_id", o.ID.Value)
	return nil
}

// operation is the LAUNCH_GROUP of the task on the default executor, which
// is named after the task so that the sandbox link can be made from the
// task ID alone.
func (r *run) operation(o offer, frameworkID string) operation {
	spec := r.spec
	pool := usable(o.Resources)
	var op operation
	op.Type = "LAUNCH_GROUP"
	op.LaunchGroup.Executor = executorInfo{
		Type: "DEFAULT", ExecutorID: id{spec.ID}, FrameworkID: id{frameworkID},
		Name:      "deploybot " + spec.ID,
		Resources: pool.take(amounts{cpus: executorCPUs, mem: executorMemMB, disk: executorDiskMB}),
	}
	t := taskInfo{
		Name: spec.Name, TaskID: id{spec.ID}, AgentID: o.AgentID,
		Resources: pool.take(amounts{cpus: spec.CPUs, mem: spec.MemMB}),
		Command:   commandInfo{Shell: spec.Command != "", Value: spec.Command},
	}
	if len(spec.Env) > 0 {
		t.Command.Environment = &environment{}
		for _, k := range sortedKeys(spec.Env) {
			t.Command.Environment.Variables = append(t.Command.Environment.Variables, variable{Name: k, Type: "VALUE", Value: spec.Env[k]})
		}
	}
	t.Container.Type = "MESOS"
	t.Container.Mesos.Image.Type = "DOCKER"
	t.Container.Mesos.Image.Docker.Name = spec.Image
	if len(spec.Labels) > 0 {
		t.Labels = &labels{}
		for _, k := range sortedKeys(spec.Labels) {
			t.Labels.Labels = append(t.Labels.Labels, label{Key: k, Value: spec.Labels[k]})
		}
	}
	op.LaunchGroup.TaskGroup.Tasks = []taskInfo{t}
	return op
}

// amounts are scalar resources: cpus, mem and disk (MB).
type amounts struct{ cpus, mem, disk float64 }

// need is what the task and its executor take together.
func (r *run) need() amounts {
	return amounts{cpus: r.spec.CPUs + executorCPUs, mem: r.spec.MemMB + executorMemMB, disk: executorDiskMB}
}

// shortOf says which resources o lacks, or "" when the task fits.
func (a amounts) shortOf(o offer) string {
	have := usable(o.Resources).total()
	var short []string
	for _, x := range []struct {
		name       string
		have, need float64
	}{{"cpus", have.cpus, a.cpus}, {"mem", have.mem, a.mem}, {"disk", have.disk, a.disk}} {
		if fixed(x.have) < fixed(x.need) {
			short = append(short, fmt.Sprintf("%s %g of %g needed", x.name, x.have, x.need))
		}
	}
	return strings.Join(short, ", ")
}

// pool is the part of an offer a task may use: plain scalar cpus, mem and
// disk, not revocable, not persistent volumes or other special disks, not
// shared and not from a resource provider.
type pool []resource

func usable(rs []resource) pool {
	var p pool
	for _, r := range rs {
		switch {
		case r.Type != "SCALAR" || r.Scalar == nil:
		case r.Name != "cpus" && r.Name != "mem" && r.Name != "disk":
		case r.Revocable != nil || r.Disk != nil || r.Shared != nil || r.ProviderID != nil:
		default:
			cp := r
			cp.Scalar = &scalar{Value: r.Scalar.Value}
			p = append(p, cp)
		}
	}
	return p
}

func (p pool) total() amounts {
	var a amounts
	for _, r := range p {
		*a.field(r.Name) += r.Scalar.Value
	}
	return a
}

func (a *amounts) field(name string) *float64 {
	switch name {
	case "cpus":
		return &a.cpus
	case "mem":
		return &a.mem
	}
	return &a.disk
}

// take removes want from the pool and returns it as resources that keep
// the identity (role, reservation, allocation) of what they came from.
func (p pool) take(want amounts) []resource {
	var out []resource
	for i := range p {
		need := want.field(p[i].Name)
		n := math.Min(fixed(*need), fixed(p[i].Scalar.Value))
		if n <= 0 {
			continue
		}
		part := p[i]
		part.Scalar = &scalar{Value: n}
		out = append(out, part)
		p[i].Scalar.Value = fixed(p[i].Scalar.Value - n)
		*need = fixed(*need - n)
	}
	return out
}

// fixed rounds to the three decimals Mesos keeps for scalars
// (Value::Scalar is fixed-point with a precision of 0.001).
func fixed(v float64) float64 { return math.Round(v*1000) / 1000 }
