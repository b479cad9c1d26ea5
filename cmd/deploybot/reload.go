package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"

	"github.com/seed-5eb4e92e/deploybot/commands"
)

// errRestartNeeded: the new config changes more than a reload applies.
var errRestartNeeded = errors.New("restart needed")

// reload re-reads the config file and applies what can change while jobs
// run: the services and environments. The responder takes the new
// command table and catalog, the workers new runners; jobs already
// running finish with the old ones. A config with problems, or one that
// changes anything else, is not applied.
func (a *app) reload(path string, getenv func(string) string) error {
	l, err := loadConfig(path, getenv)
	if err != nil {
		return err
	}
	l.check()
	if len(l.problems) > 0 {
		return fmt.Errorf("%s: %d problem(s), the first: %s", path, len(l.problems), l.problems[0])
	}
	if changed := outsideCatalog(a.cfg, l.cfg); len(changed) > 0 {
		return fmt.Errorf("%w: %v changed; only services and environments reload", errRestartNeeded, changed)
	}
	c := &l.cfg
	if a.responder != nil {
		table, err := commands.NewTable(c.SlashCommand, available(c))
		if err != nil {
			return err
		}
		a.responder.SetCommands(table, catalog(c))
	}
	if a.pool != nil {
		runners, err := a.runners(c, a.acc, a.wiring)
		if err != nil {
			return err
		}
		a.pool.SetRunners(runners)
	}
	a.cfg = *c
	a.log.Info("config reloaded", "services", len(c.Services), "environments", len(c.Environments))
	return nil
}

// outsideCatalog names the top-level settings other than services and
// environments that differ between old and new.
func outsideCatalog(old, new fileConfig) []string {
	old.Services, new.Services = nil, nil
	old.Environments, new.Environments = nil, nil
	var changed []string
	ov, nv := reflect.ValueOf(old), reflect.ValueOf(new)
	for i := range ov.NumField() {
		if !reflect.DeepEqual(ov.Field(i).Interface(), nv.Field(i).Interface()) {
			changed = append(changed, ov.Type().Field(i).Tag.Get("yaml"))
		}
	}
	return changed
}

// reloadOnSignal reloads the config each time hup fires, until ctx ends.
func (a *app) reloadOnSignal(ctx context.Context, hup <-chan os.Signal, path string, getenv func(string) string) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if err := a.reload(path, getenv); err != nil {
				a.log.Error("config not reloaded; the running one stays", "err", err)
			}
		}
	}
}
