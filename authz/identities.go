package authz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Directory finds a user's groups by e-mail: the Okta API.
type Directory interface {
	UserGroups(ctx context.Context, email string) (subject string, groups []string, err error)
}

// Emails finds a Slack user's e-mail address (Slack's users.info).
type Emails interface {
	UserEmail(ctx context.Context, slackUser string) (string, error)
}

// ErrNotInDirectory is what a Directory returns (wrapped) for an e-mail
// address it does not know. The user then falls back to the next source.
var ErrNotInDirectory = errors.New("not in the directory")

// IdentitiesConfig says where identities come from. Its zero value knows
// only the static groups.
type IdentitiesConfig struct {
	// SignIn: identities linked by /deploy login (OIDC) are used.
	SignIn bool
	// Directory and Emails, when both set, look users up in Okta by the
	// e-mail address Slack has for them. Emails alone checks that a user
	// signs in as themselves (see Link).
	Directory Directory
	Emails    Emails
	// CacheTTL is how long a directory lookup is used before it is made
	// again. Default 10m.
	CacheTTL time.Duration
	// LookupTimeout bounds one directory lookup. A lookup that outlives the
	// request that asked for it goes on and fills the cache, so the user's
	// next try is answered at once. Default 10s.
	LookupTimeout time.Duration
	// Static maps a group to the Slack user IDs in it: the config file's
	// groups, the third source.
	Static map[string][]string
}

// Identities answers who a Slack user is: a signed-in (OIDC) identity if
// there is a current one, else the Okta directory's answer for their Slack
// e-mail, else the config file's groups.
type Identities struct {
	cfg    IdentitiesConfig
	rdb    redis.UniversalClient
	tag    string
	static map[string][]string
	log    *slog.Logger
	now    func() time.Time

	mu       sync.Mutex
	inflight map[string]*lookupCall
}

// NewIdentities returns the identity sources, keeping linked and cached
// identities under the key prefix.
func NewIdentities(cfg IdentitiesConfig, rdb redis.UniversalClient, prefix string, log *slog.Logger) *Identities {
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = 10 * time.Minute
	}
	if cfg.LookupTimeout <= 0 {
		cfg.LookupTimeout = 10 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ids := &Identities{cfg: cfg, rdb: rdb, tag: "{" + prefix + "}", static: map[string][]string{}, log: log, now: time.Now,
		inflight: map[string]*lookupCall{}}
	for group, users := range cfg.Static {
		for _, u := range users {
			ids.static[u] = append(ids.static[u], group)
		}
	}
	for u := range ids.static {
		slices.Sort(ids.static[u])
	}
	return ids
}

func (ids *Identities) key(source, user string) string {
	return ids.tag + ":identity:" + source + ":" + user
}

// ErrNotYours: someone signed in with an account whose e-mail is not the
// Slack user's. Opening another person's sign-in link must not give them
// your groups.
var ErrNotYours = errors.New("the account signed in with is not the Slack user's")

// Link stores an identity a user signed in with, until it expires. When
// Emails is set, the signed-in e-mail must be the one Slack has for the
// user: the sign-in link is bound to the Slack user who asked for it, and
// this binds it to the person who signed in too.
func (ids *Identities) Link(ctx context.Context, id Identity) error {
	id.Source = SourceOIDC
	if ids.cfg.Emails != nil {
		email, err := ids.cfg.Emails.UserEmail(ctx, id.SlackUser)
		if err != nil {
			return fmt.Errorf("authz: link %s: %w", id.SlackUser, err)
		}
		if !strings.EqualFold(strings.TrimSpace(email), strings.TrimSpace(id.Email)) {
			ids.log.Warn("sign-in refused: the account's e-mail is not the Slack user's", "user", id.SlackUser)
			return fmt.Errorf("authz: link %s: %w", id.SlackUser, ErrNotYours)
		}
	}
	return ids.store(ctx, id)
}

// Unlink forgets a user's signed-in identity and cached directory answer.
func (ids *Identities) Unlink(ctx context.Context, user string) error {
	return ids.rdb.Del(ctx, ids.key(SourceOIDC, user), ids.key(SourceOkta, user)).Err()
}

func (ids *Identities) store(ctx context.Context, id Identity) error {
	ttl := id.Expires.Sub(ids.now())
	if ttl <= 0 {
		return fmt.Errorf("authz: identity of %s has already expired", id.SlackUser)
	}
	raw, err := json.Marshal(id)
	if err != nil {
		return err
	}
	if err := ids.rdb.Set(ctx, ids.key(id.Source, id.SlackUser), raw, ttl).Err(); err != nil {
		return fmt.Errorf("authz: save identity of %s: %w", id.SlackUser, err)
	}
	return nil
}

func (ids *Identities) load(ctx context.Context, source, user string) (Identity, bool, error) {
	raw, err := ids.rdb.Get(ctx, ids.key(source, user)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Identity{}, false, nil
	}
	if err != nil {
		return Identity{}, false, fmt.Errorf("authz: read identity of %s: %w", user, err)
	}
	var id Identity
	if err := json.Unmarshal(raw, &id); err != nil || !ids.now().Before(id.Expires) {
		return Identity{}, false, nil
	}
	return id, true, nil
}

// Identify returns who user is. A user no source knows gets an identity
// with no groups, which the policy denies everything but read-only
// commands.
func (ids *Identities) Identify(ctx context.Context, user string) (Identity, error) {
	if ids.cfg.SignIn {
		if id, ok, err := ids.load(ctx, SourceOIDC, user); err != nil || ok {
			return id, err
		}
	}
	if ids.cfg.Directory != nil && ids.cfg.Emails != nil {
		id, ok, err := ids.fromDirectory(ctx, user)
		if err != nil || ok {
			return id, err
		}
	}
	return Identity{SlackUser: user, Groups: ids.static[user], Source: SourceStatic}, nil
}

// fromDirectory answers from the cache, or looks the user up. A lookup
// runs on its own deadline, at most one per user at a time, so a slow Okta
// delays only the first request and the next finds the cache filled.
func (ids *Identities) fromDirectory(ctx context.Context, user string) (Identity, bool, error) {
	if id, ok, err := ids.load(ctx, SourceOkta, user); err != nil || ok {
		return id, ok && id.Subject != "", err
	}
	ids.mu.Lock()
	c, running := ids.inflight[user]
	if !running {
		c = &lookupCall{done: make(chan struct{})}
		ids.inflight[user] = c
		go func() {
			c.err = ids.lookup(user)
			ids.mu.Lock()
			delete(ids.inflight, user)
			ids.mu.Unlock()
			close(c.done)
		}()
	}
	ids.mu.Unlock()
	select {
	case <-c.done:
	case <-ctx.Done():
		return Identity{}, false, fmt.Errorf("authz: still looking %s up in the directory: %w", user, ctx.Err())
	}
	if c.err != nil {
		return Identity{}, false, c.err
	}
	id, ok, err := ids.load(ctx, SourceOkta, user)
	return id, ok && id.Subject != "", err
}

// lookupCall is one directory lookup that requests for the same user
// share.
type lookupCall struct {
	done chan struct{}
	err  error
}

// lookup asks Slack for the user's e-mail and the directory for their
// groups, and caches the answer. A user the directory does not know is
// cached too (with no subject), so they are not looked up on every
// request.
func (ids *Identities) lookup(user string) error {
	ctx, cancel := context.WithTimeout(context.Background(), ids.cfg.LookupTimeout)
	defer cancel()
	email, err := ids.cfg.Emails.UserEmail(ctx, user)
	if err != nil {
		return fmt.Errorf("authz: e-mail of %s: %w", user, err)
	}
	id := Identity{SlackUser: user, Email: email, Source: SourceOkta, Expires: ids.now().Add(ids.cfg.CacheTTL)}
	sub, groups, err := ids.cfg.Directory.UserGroups(ctx, email)
	switch {
	case errors.Is(err, ErrNotInDirectory):
		ids.log.Info("user not in the directory; using the config file's groups", "user", user)
	case err != nil:
		return fmt.Errorf("authz: groups of %s: %w", user, err)
	default:
		id.Subject, id.Groups = sub, groups
	}
	return ids.store(ctx, id)
}
