package main

import (
	"slices"
	"strings"
	"testing"
)

func TestRedisURLs(t *testing.T) {
	t.Parallel()
	t.Run("one server", func(t *testing.T) {
		t.Parallel()
		o, err := parseRedisURL("redis://deploybot:pw@10.0.0.5:6379/3")
		if err != nil || o.single == nil || o.single.Addr != "10.0.0.5:6379" || o.single.DB != 3 || o.single.Username != "deploybot" ||
			o.single.TLSConfig != nil || !o.single.ContextTimeoutEnabled {
			t.Fatalf("%+v, %v", o.single, err)
		}
		o, err = parseRedisURL("rediss://redis.internal:6380/0")
		if err != nil || o.single.TLSConfig == nil || o.single.TLSConfig.ServerName != "redis.internal" {
			t.Fatalf("rediss: %+v, %v", o.single, err)
		}
	})
	t.Run("sentinel", func(t *testing.T) {
		t.Parallel()
		o, err := parseRedisURL("rediss-sentinel://sentuser:sentpw@s1:26379/2?master_name=deploybot&addr=s2:26379&addr=s3:26379&username=app&password=apppw")
		if err != nil || o.failover == nil {
			t.Fatalf("%+v, %v", o, err)
		}
		f := o.failover
		if f.MasterName != "deploybot" || !slices.Equal(f.SentinelAddrs, []string{"s1:26379", "s2:26379", "s3:26379"}) || f.DB != 2 ||
			f.SentinelUsername != "sentuser" || f.SentinelPassword != "sentpw" || f.Username != "app" || f.Password != "apppw" ||
			f.TLSConfig == nil || !f.ContextTimeoutEnabled {
			t.Fatalf("failover options %+v", f)
		}
		if _, err := parseRedisURL("redis-sentinel://s1:26379/0"); err == nil || !strings.Contains(err.Error(), "master_name") {
			t.Fatalf("a Sentinel URL without master_name: %v", err)
		}
	})
	t.Run("cluster", func(t *testing.T) {
		t.Parallel()
		o, err := parseRedisURL("rediss-cluster://app:pw@c1:7000?addr=c2:7000&addr=c3:7000")
		if err != nil || o.cluster == nil {
			t.Fatalf("%+v, %v", o, err)
		}
		c := o.cluster
		if !slices.Equal(c.Addrs, []string{"c1:7000", "c2:7000", "c3:7000"}) || c.Username != "app" || c.Password != "pw" || c.TLSConfig == nil || !c.ContextTimeoutEnabled {
			t.Fatalf("cluster options %+v", c)
		}
	})
	for _, bad := range []string{
		"http://redis:6379", "redis-replica://r:6379", "redis://:s3cret@r:6379/notadb", "redis-sentinel://:s3cret@s:26379/0?master_name=m&bogus=1",
		"redis-cluster://:s3cret@c:7000?nosuch=1",
	} {
		_, err := parseRedisURL(bad)
		if err == nil {
			t.Errorf("parseRedisURL(%q) accepted it", bad)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("parseRedisURL(%q) = %v: the password shows", bad, err)
		}
	}
}
