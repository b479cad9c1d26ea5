package main

import (
	"crypto/tls"
	"fmt"
	"net/url"
	"strings"

	"github.com/redis/go-redis/v9"
)

// redisClient connects to the Redis that REDIS_URL names. The scheme says
// which kind:
//
//	redis://[user:password@]host:port/db              one server (rediss:// for TLS)
//	redis-sentinel://[user:password@]host:port/db?master_name=NAME&addr=host2:port
//	                                                  Sentinel; userinfo is the Sentinels', the query's
//	                                                  username= and password= are the master's (rediss-sentinel:// for TLS)
//	redis-cluster://[user:password@]host:port?addr=host2:port
//	                                                  Cluster (rediss-cluster:// for TLS)
//
// Other settings go in the query as go-redis reads them (dial_timeout=3s,
// …). Every key deploybot writes carries one hash tag, so all of them, the
// keys of one job included, live in one Cluster slot.
func redisClient(raw string) (redis.UniversalClient, error) {
	o, err := parseRedisURL(raw)
	switch {
	case err != nil:
		return nil, err
	case o.failover != nil:
		return redis.NewFailoverClient(o.failover), nil
	case o.cluster != nil:
		return redis.NewClusterClient(o.cluster), nil
	}
	return redis.NewClient(o.single), nil
}

// redisOptions is what a Redis URL says: one of its fields is set.
type redisOptions struct {
	single   *redis.Options
	failover *redis.FailoverOptions
	cluster  *redis.ClusterOptions
}

const redisSchemes = "want redis, rediss, redis-sentinel, rediss-sentinel, redis-cluster or rediss-cluster"

func parseRedisURL(raw string) (redisOptions, error) {
	var o redisOptions
	u, err := url.Parse(raw)
	if err != nil {
		return o, fmt.Errorf("redis url: not a URL")
	}
	base, kind, _ := strings.Cut(u.Scheme, "-")
	if base != "redis" && base != "rediss" {
		return o, fmt.Errorf("redis url: scheme %q: %s", u.Scheme, redisSchemes)
	}
	plain := *u
	plain.Scheme = base
	switch kind {
	case "":
		o.single, err = redis.ParseURL(plain.String())
		if err == nil {
			o.single.ContextTimeoutEnabled = true // a slow Redis must not hold the ack past its deadline
		}
	case "sentinel":
		o.failover, err = redis.ParseFailoverURL(plain.String())
		if err == nil && o.failover.MasterName == "" {
			return o, fmt.Errorf("redis url: a Sentinel URL needs master_name=… in its query")
		}
		if err == nil {
			o.failover.ContextTimeoutEnabled = true
		}
	case "cluster":
		o.cluster, err = redis.ParseClusterURL(plain.String())
		if err == nil && base == "rediss" && o.cluster.TLSConfig == nil {
			o.cluster.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		if err == nil {
			o.cluster.ContextTimeoutEnabled = true
		}
	default:
		return o, fmt.Errorf("redis url: scheme %q: %s", u.Scheme, redisSchemes)
	}
	if err != nil {
		return redisOptions{}, fmt.Errorf("redis url: %s", redactedURL(err.Error(), raw))
	}
	return o, nil
}

// redactedURL is msg with the URL raw, and any password in it, masked.
func redactedURL(msg, raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return strings.ReplaceAll(msg, raw, "(the URL)")
	}
	if p, ok := u.User.Password(); ok && p != "" {
		msg = strings.ReplaceAll(msg, p, "xxxxx")
	}
	for _, k := range []string{"password", "sentinel_password"} {
		if p := u.Query().Get(k); p != "" {
			msg = strings.ReplaceAll(msg, p, "xxxxx")
		}
	}
	return msg
}
