package main

import (
	"errors"
	"fmt"

	"github.com/seed-5eb4e92e/deploybot/bot"
	"github.com/seed-5eb4e92e/deploybot/commands"
)

func (a *app) wireResponder(l *loaded, acc *access, m *bot.Metrics) error {
	c := &l.cfg
	signing, err := secret(c.Slack.SigningSecret, c.Slack.SigningSecretFile)
	if err != nil {
		return fmt.Errorf("slack signing secret: %w", err)
	}
	appToken, err := secret(c.Slack.AppToken, c.Slack.AppTokenFile)
	if err != nil {
		return fmt.Errorf("slack app token: %w", err)
	}
	if signing == "" && appToken == "" {
		return errors.New("no Slack signing secret: set SLACK_SIGNING_SECRET or slack.signing_secret_file (or SLACK_APP_TOKEN for Socket Mode)")
	}
	if appToken != "" {
		a.socket = &bot.SocketConfig{AppToken: appToken, APIURL: c.Slack.APIURL}
	}
	table, err := commands.NewTable(c.SlashCommand, available(c))
	if err != nil {
		return err
	}
	hooks, err := hookAuth(c.Hooks)
	if err != nil {
		return err
	}
	a.responder, err = bot.New(bot.Config{
		SigningSecret: signing,
		SocketMode:    appToken != "",
		AckTimeout:    c.Responder.AckTimeout.D(),
		DedupeWindow:  c.Responder.DedupeWindow.D(),
		RetryWindow:   c.Queue.RecordTTL.D(),
		MaxBody:       c.Responder.MaxBody,
		Hooks:         hooks,
		Protected:     protected(c),
	}, table, catalog(c), a.responderDeps(c, acc, m), a.log)
	return err
}

func (a *app) responderDeps(c *fileConfig, acc *access, m *bot.Metrics) bot.Deps {
	d := bot.Deps{Queue: a.q, Notices: a.q, Auth: acc.askAuth, FollowUp: a.slack, Health: a.health, Metrics: m, Home: a.slack,
		Policy: acc.policy, Audit: acc.audit}
	if acc.flow != nil {
		d.SignIn, d.OIDC = acc.flow, acc.flow
	}
	if len(c.Protected) > 0 {
		d.Views, d.Approvals, d.Poster = a.slack, a.q, a.slack
	}
	if len(pipelines(c)) > 0 && c.Marathon.URL != "" {
		d.Envs = a.q
	}
	return d
}
