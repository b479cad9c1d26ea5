package bot

import (
	"fmt"
	"net/http"
	"testing"
)

// BenchmarkSlashCommandAck measures the ack path end to end: a signed slash
// command in, signature check, parse, permission check, the job written to
// Redis (REDIS_URL, or in-process), the answer out. Every iteration is a
// different user so none is answered as a duplicate.
func BenchmarkSlashCommandAck(b *testing.B) {
	f := newFixture(b, nil, Config{})
	bodies := make([][]byte, b.N)
	for i := range bodies {
		bodies[i] = slashBody(b, "build api feature/login", fmt.Sprintf("UBENCH%d", i))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rec := f.do(b, "/slack/commands", bodies[i], nil)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
	}
}
